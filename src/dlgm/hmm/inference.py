"""Forward-backward and Viterbi, batched over utterances and vectorised over states.

Shapes: ``log_emit`` [B, T, S] (frame log-likelihoods, anything past an utterance's length is
ignored), ``log_trans`` [S, S] or [B, S, S] (row = from, column = to), ``log_init`` and
``log_final`` [S] or [B, S], ``lengths`` [B]. The time recursion is one loop over frames; each step
is a handful of tensor operations on the whole batch.

Forward-backward runs the scaled recursion in probability space (hmmlearn's "scaling"): per frame
one (batched) matrix product with exp(log A - max), a product with the frame's shifted emission
probabilities and a renormalisation to sum 1; the log-likelihood is the sum of the logs of the
normalisers and shifts. That is exact while every product it forms stays a normal float: a step
is safe when (how far the smallest non-zero scaled forward variable lies below 1) + (spread of
the finite log transition probabilities) + (spread of the frame's finite emission scores) stays
under the dtype's range less a margin (``dlgm.scaling.underflow_budget``; 74 nats in float32, 695
in float64 for 100 states). Then a zero is structural (a -inf somewhere), never an underflow. One vectorised check
after the loop finds the utterances with an unsafe step (or a zero normaliser, or a non-finite
posterior: a backward message of an unreachable state can overflow); those are recomputed by the
plain log-space recursion (``_log_space``: one B x S x S log-sum-exp per frame, exact for any
scores, e.g. a left-to-right path 1,000 nats behind that is the only way to the end).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from dlgm.scaling import finite_spread, underflow_budget

NEG_INF = float("-inf")


@dataclass
class Posteriors:
    loglik: torch.Tensor  # [B]
    gamma: torch.Tensor  # [B, T, S] state posteriors (0 past each length)
    xi: torch.Tensor | None  # [B, S, S] expected transition counts, when asked for


def _batched(x: torch.Tensor, batch: int, dims: int) -> torch.Tensor:
    return x.expand(batch, *x.shape[-dims:]) if x.dim() == dims else x


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


def _shift(x: torch.Tensor, dims) -> torch.Tensor:
    """Max over ``dims`` (kept), 0 where it is not finite: subtracting it never makes inf - inf."""
    m = x.amax(dim=dims, keepdim=True)
    return torch.where(torch.isfinite(m), m, 0.0)


class _Scaled:
    """The scaled forward (and on demand backward) recursion for a whole batch, with its safety check.

    Works frame-major ([T, B, S]) so that every per-frame slice is contiguous and is written in place.
    """

    def __init__(self, log_emit, log_trans, log_init, log_final, lengths):
        batch, frames, states = log_emit.shape
        self.lengths = lengths
        self.shortest = int(lengths.min())  # one host sync per call: no length masking before this frame
        emit = log_emit.transpose(0, 1)  # [T, B, S] view
        high, low = torch.aminmax(emit, dim=-1)  # [T, B]: one pass for the shift and the check
        e_shift = torch.where(torch.isfinite(high), high, 0.0).unsqueeze(2)
        self.x = log_emit.new_empty(frames, batch, states)  # frame-major memory, not emit's strides
        torch.sub(emit, e_shift, out=self.x).exp_()
        t_shift = _shift(log_trans, (-2, -1))
        self.a = (log_trans - t_shift).exp()
        first = log_init + log_emit[:, 0]
        i_shift = _shift(first, -1)
        alphas = torch.empty_like(self.x, memory_format=torch.contiguous_format)
        norms = torch.empty(frames, batch, 1, dtype=log_emit.dtype, device=log_emit.device)
        al, nl, xl = alphas.unbind(0), norms.unbind(0), self.x.unbind(0)  # views, made once
        torch.sub(first, i_shift, out=al[0]).exp_()
        torch.sum(al[0], -1, keepdim=True, out=nl[0])
        al[0].div_(nl[0])
        batched = self.a.dim() == 3
        for t in range(1, frames):
            out = al[t]
            if batched:
                torch.bmm(al[t - 1].unsqueeze(1), self.a, out=out.unsqueeze(1))
            else:
                torch.mm(al[t - 1], self.a, out=out)
            out.mul_(xl[t])
            torch.sum(out, -1, keepdim=True, out=nl[t])
            out.div_(nl[t])
            if t >= self.shortest:
                inside = (t < lengths).unsqueeze(1)
                out.copy_(torch.where(inside, out, al[t - 1]))
                nl[t].copy_(torch.where(inside, nl[t], 1.0))
        self.alphas, self.norms = alphas, norms
        t_shift = t_shift.reshape(1, -1) if t_shift.dim() == 3 else t_shift
        inside = torch.arange(frames, device=log_emit.device).unsqueeze(1) < lengths.unsqueeze(0)  # [T, B]
        log_steps = norms.squeeze(2).log() + e_shift.squeeze(2) + t_shift
        log_steps[0] = norms[0, :, 0].log() + i_shift.squeeze(1)
        self.log_scale = torch.where(inside, log_steps, 0.0).cumsum(0)  # [T, B]: log of alpha / alpha_hat
        f_shift = _shift(log_final, -1)
        self.final = (log_final - f_shift).exp()
        last = (alphas[-1] * self.final).sum(-1)
        self.loglik = self.log_scale[-1] + last.log() + f_shift.squeeze(1)
        # The check: per frame, how far products can fall below 1 at the next step. Minima skip
        # structural zeros (-inf scores), computed the slow way only where a zero or -inf is present.
        smallest = alphas.amin(-1)  # [T, B]
        if not (smallest > 0).all():
            smallest = alphas.masked_fill(alphas <= 0, 1.0).amin(-1)
        low = low[1:]
        if torch.isinf(low).any():
            low = emit[1:].masked_fill(torch.isneginf(emit[1:]), float("inf")).amin(-1)
        spread_a = finite_spread(log_trans, (-2, -1))
        need = spread_a - smallest[:-1].log() + (e_shift[1:].squeeze(2) - low).nan_to_num(0.0, 0.0, 0.0)
        budget = underflow_budget(log_emit.dtype, states)
        unsafe = ((need > budget) & inside[1:]).any(0) | (finite_spread(first, -1) > budget)
        norms = norms.squeeze(2)
        unsafe |= (~(norms > 0) | torch.isinf(norms)).logical_and(inside).any(0)
        unsafe |= ~(last > 0) | torch.isinf(last) | (finite_spread(log_final, -1) - smallest[-1].log() > budget)
        self.unsafe, self.inside = unsafe, inside

    def log_alpha(self) -> torch.Tensor:
        return (self.alphas.log() + self.log_scale.unsqueeze(2)).transpose(0, 1)

    def posteriors(self, transitions: bool):
        """gamma [B, T, S] and (optionally) xi [B, S, S] by the scaled backward recursion."""
        frames = self.alphas.shape[0]
        final = self.final / (self.alphas[-1] * self.final).sum(-1, keepdim=True)
        x = self.x.div_(self.norms)  # X_t / c_t (consumed: X is not needed any more)
        a_t = self.a.transpose(-1, -2)
        if a_t.dim() == 2:
            a_t = a_t.contiguous()
        betas = torch.empty_like(self.alphas)
        bl, xl = betas.unbind(0), x.unbind(0)
        bl[-1].copy_(final)
        xl[-1].mul_(final)  # from here on x holds X_t beta_t / c_t, the backward message sent on
        for t in range(frames - 2, -1, -1):
            out = bl[t]
            if a_t.dim() == 2:
                torch.mm(xl[t + 1], a_t, out=out)
            else:
                torch.bmm(xl[t + 1].unsqueeze(1), a_t, out=out.unsqueeze(1))
            if t + 1 >= self.shortest:
                out.copy_(torch.where((t + 1 < self.lengths).unsqueeze(1), out, final))
            xl[t].mul_(out)
        inside = self.inside.unsqueeze(2)
        full = self.shortest == frames
        gamma = betas.mul_(self.alphas) if full else torch.where(inside, self.alphas * betas, 0.0)
        # a backward message can overflow for a state no path reaches (0 * inf = NaN here)
        self.unsafe |= ~torch.isfinite(gamma.sum((0, 2)))
        xi = None
        if transitions:
            w = x[1:] if full else torch.where(inside[1:], x[1:], 0.0)
            xi = torch.einsum("tbi,tbj->bij", self.alphas[:-1], w) * self.a
        return gamma.transpose(0, 1), xi


def _log_space(log_emit, log_trans, log_init, log_final, lengths, backward: bool, transitions: bool):
    """Log alpha [B, T, S], loglik [B] and (when asked) gamma and xi by the exact log-space recursion."""
    batch, frames, states = log_emit.shape
    inside = (torch.arange(frames, device=log_emit.device).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(2)
    trans = log_trans if log_trans.dim() == 3 else log_trans.unsqueeze(0)
    alpha = [log_init + log_emit[:, 0]]
    for t in range(1, frames):
        step = torch.logsumexp(alpha[-1].unsqueeze(2) + trans, dim=1) + log_emit[:, t]
        alpha.append(torch.where(inside[:, t], step, alpha[-1]))
    alpha = torch.stack(alpha, 1)
    loglik = torch.logsumexp(alpha[:, -1] + log_final, dim=-1)
    if not backward:
        return alpha, loglik, None, None
    beta = [log_final] * frames
    for t in range(frames - 2, -1, -1):
        step = torch.logsumexp(trans + (log_emit[:, t + 1] + beta[t + 1]).unsqueeze(1), dim=2)
        beta[t] = torch.where(inside[:, t + 1], step, log_final)
    beta = torch.stack(beta, 1)
    ll = loglik.view(-1, 1, 1)
    gamma = torch.where(inside, (alpha + beta - ll).exp(), 0.0)
    xi = None
    if transitions:
        joint = alpha[:, :-1].unsqueeze(3) + trans.unsqueeze(1) + (log_emit[:, 1:] + beta[:, 1:]).unsqueeze(2)
        xi = torch.where(inside[:, 1:].unsqueeze(3), (joint - ll.unsqueeze(1)).exp(), 0.0).sum(1)
    return alpha, loglik, gamma, xi


def _redo_exactly(rows, log_emit, log_trans, log_init, log_final, lengths, backward, transitions):
    """The log-space recursion for the utterances ``rows``, in float64 whatever the input dtype:
    log forward variables reach thousands of nats here, where float32 keeps only ~1e-3 of them."""
    pick = log_trans[rows] if log_trans.dim() == 3 else log_trans
    out = _log_space(log_emit[rows].double(), pick.double(), log_init[rows].double(), log_final[rows].double(),
                     lengths[rows], backward, transitions)
    return tuple(None if x is None else x.to(log_emit.dtype) for x in out)


@torch.no_grad()
def forward(log_emit, log_trans, log_init, lengths=None, log_final=None):
    """Log forward variables alpha [B, T, S] (frozen past each length) and log-likelihood [B].

    Not differentiable (the recursion works in place); hmm.chain.chain_forward is, for chains."""
    log_trans, log_init, log_final, lengths = _prepare(log_emit, log_trans, log_init, log_final, lengths)
    run = _Scaled(log_emit, log_trans, log_init, log_final, lengths)
    alpha = run.log_alpha()
    loglik = run.loglik
    if run.unsafe.any():
        rows = run.unsafe.nonzero().squeeze(1)
        alpha[rows], loglik[rows], _, _ = _redo_exactly(rows, log_emit, log_trans, log_init, log_final, lengths, False, False)
    return alpha, loglik


@torch.no_grad()
def forward_backward(log_emit, log_trans, log_init, lengths=None, log_final=None, transitions=False):
    """State posteriors, log-likelihood and (optionally) expected transition counts per utterance."""
    log_trans, log_init, log_final, lengths = _prepare(log_emit, log_trans, log_init, log_final, lengths)
    run = _Scaled(log_emit, log_trans, log_init, log_final, lengths)
    loglik = run.loglik
    if run.unsafe.all():  # nothing to gain from the scaled backward pass
        gamma = log_emit.new_zeros(log_emit.shape)
        xi = log_emit.new_zeros(log_emit.shape[0], log_emit.shape[2], log_emit.shape[2]) if transitions else None
    else:
        gamma, xi = run.posteriors(transitions)
    if run.unsafe.any():
        rows = run.unsafe.nonzero().squeeze(1)
        _, loglik[rows], gamma[rows], exact_xi = _redo_exactly(rows, log_emit, log_trans, log_init, log_final, lengths,
                                                               True, transitions)
        if transitions:
            xi[rows] = exact_xi
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
