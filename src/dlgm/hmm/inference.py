"""Forward-backward and Viterbi in log space, batched over utterances and vectorised over states.

Shapes: ``log_emit`` [B, T, S] (frame log-likelihoods, anything past an utterance's length is
ignored), ``log_trans`` [S, S] or [B, S, S] (row = from, column = to), ``log_init`` and
``log_final`` [S] or [B, S], ``lengths`` [B]. The time recursion is one loop over frames; each step
is a handful of tensor operations on the whole batch. Sums over predecessors use the
"log-matmul-exp" identity logsumexp_i(a_i + log A_ij) = m + log(sum_i exp(a_i - m) A_ij), so the
heavy part of a step is one (batched) matrix product.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

NEG_INF = float("-inf")


@dataclass
class Posteriors:
    loglik: torch.Tensor  # [B]
    gamma: torch.Tensor  # [B, T, S] state posteriors (0 past each length)
    xi: torch.Tensor | None  # [B, S, S] expected transition counts, when asked for


def _batched(x: torch.Tensor, batch: int, dims: int) -> torch.Tensor:
    return x.expand(batch, *x.shape[-dims:]) if x.dim() == dims else x


def _log_matvec(a: torch.Tensor, mat: torch.Tensor) -> torch.Tensor:
    """log(exp(a) @ mat) for a [B, S] in log space and mat [S, S] or [B, S, S] in probability space.

    The row maximum is clamped to the dtype's lowest finite value so that an all -inf row (no
    reachable state) gives -inf rather than NaN without an extra isfinite/where per step.
    """
    m = a.amax(dim=-1, keepdim=True).clamp_min(torch.finfo(a.dtype).min)
    p = (a - m).exp_()
    if mat.dim() == 2:  # one matrix for the whole batch: a single GEMM
        return torch.mm(p, mat).log_().add_(m)
    return torch.bmm(p.unsqueeze(1), mat).squeeze(1).log_().add_(m)


def _prepare(log_emit, log_trans, log_init, log_final, lengths):
    batch, frames, states = log_emit.shape
    dtype = log_emit.dtype
    log_trans = log_trans.to(dtype)  # [S, S] stays shared (one GEMM per step), [B, S, S] is per utterance
    log_init = _batched(log_init.to(dtype), batch, 1)
    if log_final is None:
        log_final = torch.zeros(states, dtype=dtype, device=log_emit.device)
    log_final = _batched(log_final.to(dtype), batch, 1)
    if lengths is None:
        lengths = torch.full((batch,), frames, dtype=torch.long, device=log_emit.device)
    return log_trans, log_init, log_final, lengths.to(log_emit.device)


def forward(log_emit, log_trans, log_init, lengths=None, log_final=None):
    """Log forward variables alpha [B, T, S] (frozen past each length) and log-likelihood [B]."""
    log_trans, log_init, log_final, lengths = _prepare(log_emit, log_trans, log_init, log_final, lengths)
    trans = log_trans.exp()
    batch, frames, states = log_emit.shape
    shortest = int(lengths.min())  # one host sync per call: no length masking before this frame
    alpha = torch.empty_like(log_emit)
    alpha[:, 0] = log_init + log_emit[:, 0]
    for t in range(1, frames):
        step = _log_matvec(alpha[:, t - 1], trans).add_(log_emit[:, t])
        alpha[:, t] = step if t < shortest else torch.where((t < lengths).unsqueeze(1), step, alpha[:, t - 1])
    loglik = torch.logsumexp(alpha[:, -1] + log_final, dim=-1)
    return alpha, loglik


def forward_backward(log_emit, log_trans, log_init, lengths=None, log_final=None, transitions=False):
    """State posteriors, log-likelihood and (optionally) expected transition counts per utterance."""
    log_trans, log_init, log_final, lengths = _prepare(log_emit, log_trans, log_init, log_final, lengths)
    alpha, loglik = forward(log_emit, log_trans, log_init, lengths, log_final)
    trans_t = log_trans.exp().transpose(-1, -2).contiguous()
    batch, frames, states = log_emit.shape
    shortest = int(lengths.min())
    beta = torch.empty_like(log_emit)
    beta[:, -1] = log_final
    xi = log_emit.new_zeros(batch, states, states) if transitions else None
    for t in range(frames - 2, -1, -1):
        nxt = log_emit[:, t + 1] + beta[:, t + 1]  # [B, S]
        step = _log_matvec(nxt, trans_t)
        inside = (t + 1 < lengths).unsqueeze(1)
        beta[:, t] = step if t + 1 < shortest else torch.where(inside, step, log_final)
        if transitions:
            joint = alpha[:, t].unsqueeze(2) + log_trans + nxt.unsqueeze(1) - loglik.view(-1, 1, 1)
            xi += torch.where(inside.unsqueeze(2), joint.exp(), torch.zeros_like(joint))
    gamma = (alpha + beta - loglik.view(-1, 1, 1)).exp()
    valid = torch.arange(frames, device=log_emit.device).unsqueeze(0) < lengths.unsqueeze(1)
    gamma = gamma * valid.unsqueeze(2)
    return Posteriors(loglik=loglik, gamma=gamma, xi=xi)


def viterbi(log_emit, log_trans, log_init, lengths=None, log_final=None):
    """Best state path [B, T] (entries past each length repeat the last state) and its log score [B]."""
    log_trans, log_init, log_final, lengths = _prepare(log_emit, log_trans, log_init, log_final, lengths)
    batch, frames, states = log_emit.shape
    device = log_emit.device
    identity = torch.arange(states, device=device).expand(batch, states)
    backptr = torch.empty(batch, frames, states, dtype=torch.long, device=device)
    backptr[:, 0] = identity
    delta = log_init + log_emit[:, 0]
    for t in range(1, frames):
        best, arg = (delta.unsqueeze(2) + log_trans).max(dim=1)
        inside = (t < lengths).unsqueeze(1)
        delta = torch.where(inside, best + log_emit[:, t], delta)
        backptr[:, t] = torch.where(inside, arg, identity)
    score, last = (delta + log_final).max(dim=-1)
    path = torch.empty(batch, frames, dtype=torch.long, device=device)
    path[:, -1] = last
    for t in range(frames - 1, 0, -1):
        path[:, t - 1] = backptr[:, t].gather(1, path[:, t : t + 1]).squeeze(1)
    return path, score
