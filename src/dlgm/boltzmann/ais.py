"""Annealed importance sampling of log Z for RBMs and DBMs (Salakhutdinov & Murray 2008;
Salakhutdinov & Hinton 2009, Section 4), and of log Z(v) = log sum_h exp(-E(v, h)) per image.

An RBM is the one-hidden-layer case of ``DBM``. By default the chain runs over the even layers
(v, h2, ...) and the odd layers (h1, h3, ...) are summed out analytically: for a 2-layer DBM this is
SH09's choice (Section 4.2: AIS over v and h2 with h1 summed out; the authors' released
RBM/DBM AIS code anneals the same way). ``parameterisation="odd"`` anneals over h1 (and h3, ...)
with v and h2 summed out instead. The path is geometric from the base-rate model (visible biases
from the data marginals, every other parameter 0) to the model; see ``dlgm.boltzmann.anneal``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import torch

from dlgm.boltzmann.anneal import Annealer, anneal_forward, anneal_reverse, clamped_path, full_path, log_mean_exp
from dlgm.boltzmann.dbm import DBM, States
from dlgm.boltzmann.rbm import RBM

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
    (the authors' AIS code adds 5 pseudo-counts per 100-case batch, i.e. smoothing 0.05). That
    smoothing leaves p = 1 for a pixel that is on in every image (log-odds +inf, and AIS would
    return NaN), so p is also capped at 1 / (1 + smoothing), the mirror image of its floor."""
    if not smoothing >= 0 or not math.isfinite(smoothing):
        raise ValueError(f"base_rate smoothing must be >= 0 and finite, got {smoothing}")
    p = (data.double().mean(0) + smoothing) / (1.0 + smoothing)
    p = p.clamp(max=1.0 / (1.0 + smoothing))
    bias = torch.log(p) - torch.log1p(-p)
    if not torch.isfinite(bias).all():
        raise ValueError(f"base_rate smoothing {smoothing} leaves {int((~torch.isfinite(bias)).sum())} constant "
                         "pixels with log-odds +-inf: use smoothing > 0")
    return bias.to(data.dtype)


@dataclass
class AISResult:
    log_z: float  # log of the mean importance weight times Z_A
    log_z_low: float | None  # log(Z - 3 sd of the estimate); None when Z - 3 sd <= 0
    log_z_high: float
    log_z_base: float
    n_runs: int
    n_temperatures: int
    log_weights: torch.Tensor = field(repr=False)
    # mean state of each layer (v, h1, ...) over the runs at a few inverse temperatures
    activity: list[tuple[float, list[float]]] = field(default_factory=list, repr=False)
    seconds: float | None = None  # of annealing, when it checkpointed: its slices before a resume too

    @property
    def ess(self) -> float:
        """Effective sample size (sum w)^2 / sum w^2 of the importance weights."""
        return effective_sample_size(self.log_weights)

    def as_metrics(self, prefix: str = "log_z") -> dict[str, float | None]:
        return {prefix: self.log_z, f"{prefix}_low": self.log_z_low, f"{prefix}_high": self.log_z_high}


def effective_sample_size(log_weights: torch.Tensor) -> float:
    lw = log_weights.double()
    return float(torch.exp(2 * torch.logsumexp(lw, 0) - torch.logsumexp(2 * lw, 0)))


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


def _betas(betas: torch.Tensor | Sequence[float]) -> list[float]:
    out = torch.as_tensor(betas, dtype=torch.float64).tolist()  # once, before any loop: no syncs per step
    if len(out) < 2 or out[0] != 0.0 or abs(out[-1] - 1.0) > 1e-12 or any(b <= a for a, b in zip(out, out[1:])):
        raise ValueError("betas must rise strictly from 0 to 1")
    return out


@torch.no_grad()
def ais(
    dbm: DBM,
    base_bias: torch.Tensor,
    betas: torch.Tensor,
    n_runs: int = 100,
    generator: torch.Generator | None = None,
    parameterisation: str = "even",
    loops=None,
    stage: str = "ais",
) -> AISResult:
    """Estimate log Z of ``dbm`` (an RBM via ``rbm_as_dbm``) with ``n_runs`` parallel AIS runs.
    ``parameterisation``: "even" samples v, h2, ... and sums out h1, h3, ... (SH09's choice);
    "odd" samples h1, h3, ... and sums out v, h2, ... ``loops`` (``dlgm.training.RunLoops``):
    checkpoint the annealing as the resumable loop ``stage``."""
    path = full_path(dbm, base_bias, parameterisation)
    betas = _betas(betas)
    ann = Annealer(path, n_runs, generator)
    log_w, activity = anneal_forward(ann, betas, loops=loops, stage=stage)
    r = summarise(log_w, float(path.log_z0()), len(betas) - 1)
    r.activity = [(b, a.tolist()) for b, a in activity]
    r.seconds = ann.seconds
    return r


@dataclass
class ReverseAISResult:
    log_z: float  # log Z_0 - log of the mean reverse weight: errs high when the chains start at the model
    ess: float
    n_runs: int
    n_temperatures: int
    sweeps: int  # Gibbs sweeps at beta = 1 before the reverse run
    seconds: float | None = None  # as AISResult's


@torch.no_grad()
def model_samples(dbm: DBM, v: torch.Tensor, sweeps: int, generator: torch.Generator | None = None) -> States:
    """Approximate samples of the model: one chain per binary image ``v``, its hidden layers (and
    labels) drawn from the bottom-up guess of ``DBM.bottom_up``, after ``sweeps`` Gibbs sweeps."""
    mu = dbm.bottom_up(v.to(dbm.weights[0].dtype))
    x = [mu[0]] + [dbm.sample(l, p, generator) for l, p in enumerate(mu[1:], start=1)]
    return dbm.gibbs(x, sweeps, generator)


@torch.no_grad()
def reverse_ais(dbm: DBM, base_bias: torch.Tensor, betas: torch.Tensor, start: States,
                generator: torch.Generator | None = None, parameterisation: str = "even",
                sweeps: int = 0, loops=None, stage: str = "ais_reverse") -> ReverseAISResult:
    """The other half of bidirectional Monte Carlo (Grosse, Ghahramani & Adams 2015): anneal from
    the states ``start`` (one run per row) down to the base model. From exact samples of the model
    the mean reverse weight estimates Z_0 / Z without bias, so log Z_0 minus its log errs high: an
    upper estimate of log Z to set beside forward AIS, which errs low. From approximate samples
    (``model_samples``) it is an upper estimate only as far as those chains have reached the model.
    ``loops``: as ``ais``'s."""
    path = full_path(dbm, base_bias, parameterisation)
    betas = _betas(betas)
    ann = Annealer(path, start[0].shape[0], generator)
    ann.set_state(start)
    log_w = anneal_reverse(ann, betas, loops, stage).double().cpu()
    log_z = float(path.log_z0()) - float(log_mean_exp(log_w, 0))
    return ReverseAISResult(log_z, effective_sample_size(log_w), len(log_w), len(betas) - 1, sweeps, ann.seconds)


@torch.no_grad()
def log_partition_given_v(
    dbm: DBM, v: torch.Tensor, betas: torch.Tensor, n_runs: int = 100, generator: torch.Generator | None = None
) -> torch.Tensor:
    """AIS estimate of log Z(v) = log sum_h exp(-E(v, h)) for each row of ``v``, with ``n_runs``
    runs per image over the even hidden layers (the odd ones summed out): SH09's estimate of the
    true log p(v) = log Z(v) - log Z (Section 4.2, on 100 test images). For an RBM it is exact.
    Label units are summed out too (or sampled, when they are an even layer): p(v) of the image alone."""
    if dbm.n_states == 2:
        return dbm.even_log_prob_unnormalised([v.to(dbm.weights[0].dtype), None]).double()
    n = v.shape[0]
    rows = v.repeat_interleave(n_runs, 0)
    path = clamped_path(dbm, rows)
    ann = Annealer(path, rows.shape[0], generator)
    log_w, _ = anneal_forward(ann, _betas(betas), record_at=())
    return log_mean_exp((log_w + path.log_z0()).view(n, n_runs), 1)


def dbm_bound_log_probs(
    dbm: DBM, v: torch.Tensor, log_z: float, mean_field_iterations: int = 50, batch: int = 10000
) -> torch.Tensor:
    """The mean-field variational lower bound on log p(v) of each row of ``v`` (given log Z), float64."""
    bounds = [dbm.variational_bound(dbm.mean_field(v[i : i + batch], mean_field_iterations)).double()
              for i in range(0, v.shape[0], batch)]
    return torch.cat(bounds) - log_z


def dbm_bound_log_prob(
    dbm: DBM, v: torch.Tensor, log_z: float, mean_field_iterations: int = 50, batch: int = 10000
) -> float:
    """Average mean-field variational lower bound on log p(v) over the rows of ``v`` (given log Z)."""
    return float(dbm_bound_log_probs(dbm, v, log_z, mean_field_iterations, batch).mean())
