"""Exact quantities of tiny Boltzmann machines by enumerating every binary state.

The test oracle for CD, PCD, AIS and the classifiers: only for layers of up to ~20 units.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from dlgm.boltzmann.rbm import RBM

MAX_ENUMERATED_UNITS = 24


def all_binary_states(n: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """All 2**n binary vectors of length n as a [2**n, n] tensor (row i is i in binary, MSB first)."""
    if n > MAX_ENUMERATED_UNITS:
        raise ValueError(f"refusing to enumerate 2**{n} states (limit 2**{MAX_ENUMERATED_UNITS})")
    codes = torch.arange(2**n, device=device)
    bits = 2 ** torch.arange(n - 1, -1, -1, device=device)
    return ((codes[:, None] & bits) > 0).to(dtype)


def _hidden_free_energy(rbm: RBM, h: torch.Tensor) -> torch.Tensor:
    """-log sum_v exp(-E(v, h)) of the plain RBM."""
    return -(h @ rbm.b_hid) - F.softplus(torch.addmm(rbm.b_vis, h, rbm.W.t())).sum(-1)


def rbm_log_partition(rbm: RBM) -> torch.Tensor:
    """Exact log Z of the plain RBM: enumerate the smaller layer, sum the other out analytically."""
    dtype, device = rbm.W.dtype, rbm.W.device
    if rbm.n_visible <= rbm.n_hidden:
        v = all_binary_states(rbm.n_visible, device, dtype)
        return torch.logsumexp(-rbm.free_energy(v), 0)
    h = all_binary_states(rbm.n_hidden, device, dtype)
    return torch.logsumexp(-_hidden_free_energy(rbm, h), 0)


def rbm_log_likelihood(rbm: RBM, v: torch.Tensor) -> torch.Tensor:
    """Exact log p(v) for each row of ``v`` (differentiable w.r.t. the RBM's parameters)."""
    return -rbm.free_energy(v) - rbm_log_partition(rbm)


def rbm_visible_log_probs(rbm: RBM) -> tuple[torch.Tensor, torch.Tensor]:
    """(all visible states [2**n_vis, n_vis], their exact log-probabilities)."""
    v = all_binary_states(rbm.n_visible, rbm.W.device, rbm.W.dtype)
    return v, rbm_log_likelihood(rbm, v)


def rbm_log_likelihood_gradient(rbm: RBM, v: torch.Tensor) -> dict[str, torch.Tensor]:
    """Exact gradient of the mean log-likelihood of the rows of ``v`` w.r.t. W, b_vis, b_hid."""
    params = [rbm.W, rbm.b_vis, rbm.b_hid]
    with torch.enable_grad():
        objective = rbm_log_likelihood(rbm, v).mean()
        grads = torch.autograd.grad(objective, params)
    return dict(zip(("W", "b_vis", "b_hid"), grads))


def kl_divergence(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) for two distributions given as log-probabilities over the same states."""
    p = log_p.exp()
    return (p * (log_p - log_q)).where(p > 0, torch.zeros_like(p)).sum()
