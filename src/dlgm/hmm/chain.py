"""Forward-backward and Viterbi for left-to-right chains (one transcript's phone states).

A chain state can only stay or move to the next one, so each time step costs O(B x L) instead
of the O(B x L^2) of a dense transition matrix; the results equal dlgm.hmm.inference run on the
chain's dense matrix (tested). ``stay``/``leave`` [B, L] are log transition probabilities
(``leave`` of the last state is the exit probability), ``states`` [B] the chain lengths;
``log_emit`` [B, T, L] has -inf on padding states.

Sums over the two predecessors are logaddexp, exact at any score scale. ``chain_forward`` is also
differentiable by autograd: there torch.logaddexp would give NaN gradients where both terms are
-inf (states not reachable yet, padding), so a where-guarded form is used when a gradient is needed.
"""
from __future__ import annotations

import torch

NEG_INF = float("-inf")


def _shift_right(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.pad(x[..., :-1], (1, 0), value=NEG_INF)


def _shift_left(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.pad(x[..., 1:], (0, 1), value=NEG_INF)


def _final(leave: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    last = torch.arange(leave.shape[1], device=leave.device).unsqueeze(0) == (states - 1).unsqueeze(1)
    return torch.where(last, leave, torch.full_like(leave, NEG_INF))


def _logaddexp_differentiable(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(e^a + e^b) whose gradient is 0, not NaN, where both are -inf."""
    m = torch.maximum(a, b).detach()
    m = torch.where(torch.isfinite(m), m, 0.0)
    total = (a - m).exp() + (b - m).exp()
    some = total > 0
    return torch.where(some, torch.where(some, total, 1.0).log() + m, NEG_INF)


def _alphas(log_emit, stay, leave, inside):
    """Log forward variables [B, T, L] (frozen past each length) of chains entered at state 0."""
    differentiable = torch.is_grad_enabled() and any(x.requires_grad for x in (log_emit, stay, leave))
    logaddexp = _logaddexp_differentiable if differentiable else torch.logaddexp
    first = torch.full_like(stay, NEG_INF)
    first[:, 0] = 0.0
    alpha = [first + log_emit[:, 0]]
    for t in range(1, log_emit.shape[1]):
        prev = alpha[-1]
        step = logaddexp(prev + stay, _shift_right(prev + leave)) + log_emit[:, t]
        alpha.append(torch.where(inside[:, t], step, prev))
    return torch.stack(alpha, dim=1)


def _inside(lengths, frames):
    return (torch.arange(frames, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(2)


def chain_forward(log_emit, stay, leave, states, lengths):
    """Log-likelihood [B] of each chain (every path from state 0 to the exit of its last state);
    differentiable by autograd in ``log_emit``, ``stay`` and ``leave``."""
    alpha = _alphas(log_emit, stay, leave, _inside(lengths, log_emit.shape[1]))
    return torch.logsumexp(alpha[:, -1] + _final(leave, states), dim=-1)


def chain_forward_backward(log_emit, stay, leave, states, lengths):
    """(loglik [B], gamma [B, T, L], expected stay counts [B, L], expected leave counts [B, L])."""
    batch, frames, width = log_emit.shape
    final = _final(leave, states)
    inside = _inside(lengths, frames)
    alpha = _alphas(log_emit, stay, leave, inside)
    loglik = torch.logsumexp(alpha[:, -1] + final, dim=-1)
    beta = torch.empty_like(log_emit)
    beta[:, -1] = final
    for t in range(frames - 2, -1, -1):
        nxt = log_emit[:, t + 1] + beta[:, t + 1]
        step = torch.logaddexp(stay + nxt, leave + _shift_left(nxt))
        beta[:, t] = torch.where(inside[:, t + 1], step, final)
    ll = loglik.view(-1, 1, 1)
    gamma = (alpha + beta - ll).exp() * inside
    nxt = log_emit[:, 1:] + beta[:, 1:]
    pair = inside[:, 1:]
    stay_n = ((alpha[:, :-1] + stay.unsqueeze(1) + nxt - ll).exp() * pair).sum(1)
    leave_n = ((alpha[:, :-1] + leave.unsqueeze(1) + _shift_left(nxt) - ll).exp() * pair).sum(1)
    last_frame = gamma[torch.arange(batch, device=gamma.device), lengths - 1]
    leave_n = leave_n + last_frame * torch.isfinite(final)
    return loglik, gamma, stay_n, leave_n


def chain_viterbi(log_emit, stay, leave, states, lengths):
    """Best chain-state path [B, T] (repeating the last state past each length) and its score [B]."""
    batch, frames, width = log_emit.shape
    final = _final(leave, states)
    device = log_emit.device
    moved = torch.zeros(batch, frames, width, dtype=torch.bool, device=device)
    delta = torch.full_like(stay, NEG_INF)
    delta[:, 0] = log_emit[:, 0, 0]
    for t in range(1, frames):
        keep, move = delta + stay, _shift_right(delta + leave)
        inside = (t < lengths).unsqueeze(1)
        moved[:, t] = (move > keep) & inside
        delta = torch.where(inside, torch.maximum(keep, move) + log_emit[:, t], delta)
    score, state = (delta + final).max(dim=-1)
    path = torch.empty(batch, frames, dtype=torch.long, device=device)
    for t in range(frames - 1, -1, -1):
        path[:, t] = state
        state = state - moved[:, t].gather(1, state.unsqueeze(1)).squeeze(1).long()
    return path, score
