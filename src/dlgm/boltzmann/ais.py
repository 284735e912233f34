"""Annealed importance sampling of log Z for RBMs and DBMs (Salakhutdinov & Murray 2008;
Salakhutdinov & Hinton 2009, Section 4).

An RBM is the one-hidden-layer case of ``DBM``. The chain runs over the even layers (v, h2, ...);
the odd layers (h1, h3, ...) are summed out analytically, which for a 2-layer DBM is SH09's
"h1 summed out". Intermediate distributions follow the geometric path
    log p*_beta(x) = (1 - beta) bA.v + beta (sum_even b_l.x_l) + sum_odd sum_j softplus(beta * I_lj(x))
from the base-rate model (visible biases bA from the data marginals, every other parameter 0;
log Z_A = sum softplus(bA) + (number of hidden units) log 2) to the model at beta = 1. One step is a
few batched tensor operations over all runs; weights accumulate in float64.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F

from dlgm.boltzmann.dbm import DBM
from dlgm.boltzmann.rbm import RBM, bernoulli

# SM08, Section 4.2 (and the authors' released AIS code): 500 temperatures in [0, 0.5],
# 4,000 in [0.5, 0.9], 10,000 in [0.9, 1] (14,500 in all).
PAPER_SCHEDULE = ((0.5, 500), (0.9, 4000), (1.0, 10000))


def rbm_as_dbm(rbm: RBM) -> DBM:
    """The plain RBM (energy as in ``RBM.free_energy``) as a one-hidden-layer DBM."""
    dbm = DBM([rbm.n_visible, rbm.n_hidden], dtype=rbm.W.dtype).to(rbm.W.device)
    with torch.no_grad():
        dbm.weights[0].copy_(rbm.W)
        dbm.biases[0].copy_(rbm.b_vis)
        dbm.biases[1].copy_(rbm.b_hid)
    return dbm


def schedule(segments: Sequence[tuple[float, int]] = PAPER_SCHEDULE, scale: float = 1.0) -> torch.Tensor:
    """Inverse temperatures 0 = beta_0 < ... < beta_K = 1: segment (end, n) puts n equal steps
    between the previous end and ``end``; ``scale`` multiplies every n (at least 1 step each)."""
    betas, start = [torch.zeros(1, dtype=torch.float64)], 0.0
    for end, n in segments:
        n = max(1, round(n * scale))
        betas.append(torch.linspace(start, end, n + 1, dtype=torch.float64)[1:])
        start = end
    if abs(start - 1.0) > 1e-12:
        raise ValueError(f"AIS schedule must end at beta = 1, ends at {start}")
    return torch.cat(betas)


def base_rate_bias(data: torch.Tensor, smoothing: float = 0.05) -> torch.Tensor:
    """Visible log-odds of the base-rate model (SM08, Section 4.2): the training data's pixel
    marginals, smoothed as p = (mean + smoothing) / (1 + smoothing) so that no pixel has p = 0
    (the authors' AIS code adds 5 pseudo-counts per 100-case batch, i.e. smoothing 0.05)."""
    p = (data.double().mean(0) + smoothing) / (1.0 + smoothing)
    return (torch.log(p) - torch.log1p(-p)).to(data.dtype)


@dataclass
class AISResult:
    log_z: float  # log of the mean importance weight times Z_A
    log_z_low: float | None  # log(Z - 3 sd of the estimate); None when Z - 3 sd <= 0
    log_z_high: float
    log_z_base: float
    n_runs: int
    n_temperatures: int
    log_weights: torch.Tensor = field(repr=False)

    def as_metrics(self, prefix: str = "log_z") -> dict[str, float | None]:
        return {prefix: self.log_z, f"{prefix}_low": self.log_z_low, f"{prefix}_high": self.log_z_high}


def summarise(log_weights: torch.Tensor, log_z_base: float, n_temperatures: int) -> AISResult:
    """Z estimate mean(w) * Z_A and log(Z_hat +- 3 sd(mean)) from the runs' log-weights."""
    lw = log_weights.detach().double().cpu()
    top = float(lw.max())
    w = torch.exp(lw - top)
    m = float(w.mean())
    sd = float(w.std(unbiased=True)) / math.sqrt(len(w)) if len(w) > 1 else 0.0
    shift = log_z_base + top
    low = shift + math.log(m - 3 * sd) if m - 3 * sd > 0 else None
    return AISResult(shift + math.log(m), low, shift + math.log(m + 3 * sd), log_z_base, len(w), n_temperatures, lw)


@torch.no_grad()
def ais(
    dbm: DBM,
    base_bias: torch.Tensor,
    betas: torch.Tensor,
    n_runs: int = 100,
    generator: torch.Generator | None = None,
) -> AISResult:
    """Estimate log Z of ``dbm`` (an RBM via ``rbm_as_dbm``) with ``n_runs`` parallel AIS runs."""
    device, dtype = dbm.weights[0].device, dbm.weights[0].dtype
    base_bias = base_bias.to(device=device, dtype=dtype)
    L, even, odd = dbm.n_layers, range(0, dbm.n_layers + 1, 2), range(1, dbm.n_layers + 1, 2)
    log_z_base = float(F.softplus(base_bias.double()).sum()) + sum(dbm.sizes[1:]) * math.log(2.0)

    # exact sample from the base model: v from the base rates, other even layers uniform
    x = [bernoulli(torch.sigmoid(base_bias).expand(n_runs, -1).contiguous(), generator)]
    for l in range(1, L + 1):
        x.append(bernoulli(torch.full((n_runs, dbm.sizes[l]), 0.5, device=device, dtype=dtype), generator))
    log_w = torch.zeros(n_runs, dtype=torch.float64, device=device)
    betas = betas.to(dtype=torch.float64).tolist()  # once, before the loop: no syncs per step

    def linear_terms(x):  # (bA.v, sum_even b_l.x_l): the parts of log p*_beta linear in beta
        model = sum(x[l] @ dbm.biases[l] for l in even)
        return (x[0] @ base_bias).double(), model.double()

    for b_prev, b in zip(betas[:-1], betas[1:]):
        base_lin, model_lin = linear_terms(x)
        log_w += (b - b_prev) * (model_lin - base_lin)
        inputs = {l: dbm.layer_input(x, l) for l in odd}
        for l in odd:
            i64 = inputs[l].double()
            log_w += (F.softplus(b * i64) - F.softplus(b_prev * i64)).sum(-1)
        # one Gibbs transition that leaves p_beta invariant: odd layers, then even layers
        for l in odd:
            x[l] = bernoulli(torch.sigmoid(b * inputs[l]), generator)
        for l in even:
            total = dbm.layer_input(x, l) * b
            if l == 0:
                total = total + (1.0 - b) * base_bias
            x[l] = bernoulli(torch.sigmoid(total), generator)
    return summarise(log_w, log_z_base, len(betas) - 1)


def rbm_test_log_prob(rbm: RBM, v: torch.Tensor, log_z: float, batch: int = 10000) -> float:
    """Average log p(v) = -F(v) - log Z over the rows of ``v`` (one host sync)."""
    total = sum(-rbm.free_energy(v[i : i + batch]).double().sum() for i in range(0, v.shape[0], batch))
    return float(total) / v.shape[0] - log_z


def dbm_bound_log_prob(
    dbm: DBM, v: torch.Tensor, log_z: float, mean_field_iterations: int = 50, batch: int = 10000
) -> float:
    """Average mean-field variational lower bound on log p(v) over the rows of ``v`` (given log Z)."""
    total = 0.0
    for i in range(0, v.shape[0], batch):
        mu = dbm.mean_field(v[i : i + batch], mean_field_iterations)
        total = total + dbm.variational_bound(mu).double().sum()
    return float(total) / v.shape[0] - log_z
