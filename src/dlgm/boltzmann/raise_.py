"""RAISE: reverse annealed importance sampling of log p(v) (Burda, Grosse & Salakhutdinov 2015,
"Accurate and conservative estimates of MRF log-likelihood using reverse annealing", AISTATS).

The forward annealing chain of AIS, read as a generative model, defines p_ann(v): start from the
base-rate model, apply the transitions at beta_1 .. beta_K, keep the last v. RAISE estimates
p_ann(v) of a test image without bias by importance sampling whose proposal runs the chain
backwards from the image: the log of the mean weight is a stochastic lower bound on log p_ann(v),
and p_ann approaches p as the schedule grows, so RAISE errs low where AIS (with an underestimated
log Z) errs high. Weights (the transitions are reversible, so the reverse kernel is the forward one):
    log w = log Z_K(v) - log Z_0 - sum_k [log f_k(x_{k-1}) - log f_{k-1}(x_{k-1})],
x_{k-1} the state after the transition at beta_k, started from x_K = (v, h ~ p(h | v)).
- RBM (one hidden layer, summed out): the even state is v itself and Z_K(v) = exp(-F(v)) is exact.
- DBM: p(h2, ... | v) has no closed form. The chain is extended by a forward AIS over the hidden
  layers with v clamped (``dlgm.boltzmann.ais.log_partition_given_v``): its last state starts the
  reverse chain and its weight replaces Z_K(v), which keeps the estimator unbiased for p_ann(v) in
  the extended space (the same construction as the paper's, with an annealed initial step).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from dlgm.boltzmann.ais import _betas
from dlgm.boltzmann.anneal import Annealer, anneal_forward, anneal_reverse, clamped_path, full_path, log_mean_exp
from dlgm.boltzmann.dbm import DBM


@dataclass
class RaiseResult:
    log_prob: torch.Tensor  # RAISE estimate of log p(v) per image (float64)
    log_zv: torch.Tensor  # log Z(v) per image: exact for an RBM, the per-image AIS estimate for a DBM


@torch.no_grad()
def raise_log_prob(
    dbm: DBM,
    v: torch.Tensor,
    base_bias: torch.Tensor,
    betas: torch.Tensor,
    n_runs: int = 10,
    generator: torch.Generator | None = None,
    clamped_betas: torch.Tensor | None = None,
) -> RaiseResult:
    """RAISE estimate of log p(v) for each (binary) row of ``v``, ``n_runs`` reverse chains per
    image, all images batched. ``clamped_betas``: the schedule of the per-image AIS that samples
    the hidden layers of a DBM given v (default: ``betas``). Also returns log Z(v) per image:
    with an AIS log Z, mean(log Z(v)) - log Z is the AIS estimate of the same images' log p(v)."""
    betas = _betas(betas)
    dtype = dbm.weights[0].dtype
    n = v.shape[0]
    rows = v.to(dtype).repeat_interleave(n_runs, 0)
    path = full_path(dbm, base_bias, "even")  # the chain starts from the image: v must be a sampled layer
    ann = Annealer(path, rows.shape[0], generator)
    if dbm.n_states == 2:
        ann.x[0].copy_(rows)
        log_zv = dbm.even_log_prob_unnormalised([rows, None]).double()
    else:
        inner = Annealer(clamped_path(dbm, rows), rows.shape[0], generator)
        log_w, _ = anneal_forward(inner, _betas(betas if clamped_betas is None else clamped_betas), record_at=())
        log_zv = log_w + inner.path.log_z0()
        ann.x[0].copy_(rows)
        for l in path.sampled[1:]:
            ann.x[l].copy_(inner.x[l])
    ann.refresh()
    log_w = log_zv + anneal_reverse(ann, betas) - float(path.log_z0())
    return RaiseResult(log_mean_exp(log_w.view(n, n_runs), 1), log_mean_exp(log_zv.view(n, n_runs), 1))
