"""The label units of the authors' DBM code: a softmax layer y (one-hot over the classes) joined to
the top hidden layer, E += -y.c - y^T U h_top (Salakhutdinov's released MATLAB code: the top
pretraining RBM of rbm_l2.m has y as extra visible units, dbm_mf.m trains the DBM with y clamped in
the positive phase and sampled in the persistent chains). The helpers for that one softmax layer
live here; ``DBM`` and ``RBM`` take it as an option that is off by default.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def one_hot(labels: torch.Tensor, n_classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Class indices [N] -> one-hot rows [N, n_classes] of ``dtype``."""
    return F.one_hot(labels.long(), n_classes).to(dtype)


def categorical(probs: torch.Tensor, generator: torch.Generator | None = None,
                out: torch.Tensor | None = None) -> torch.Tensor:
    """One-hot sample of each row's categorical distribution ``probs`` (rows sum to 1), drawn as the
    authors' code draws it: one uniform per row, the first class whose cumulative probability reaches
    it. ``out`` may be a preallocated buffer of the same shape, or ``probs`` itself."""
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device, dtype=probs.dtype)
    return categorical_from(probs, u, out)


def categorical_from(probs: torch.Tensor, u: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``categorical`` with the uniforms ``u`` [rows, 1] given (may write into ``probs`` via ``out``)."""
    index = (probs.cumsum(-1) < u).sum(-1, keepdim=True).clamp_(max=probs.shape[-1] - 1)  # rounding at the top
    out = torch.zeros_like(probs) if out is None else out.zero_()
    return out.scatter_(-1, index, 1.0)


def categorical_entropy(q: torch.Tensor) -> torch.Tensor:
    """Entropy of each row's categorical distribution (0 for a one-hot row)."""
    return -torch.special.xlogy(q, q).sum(-1)
