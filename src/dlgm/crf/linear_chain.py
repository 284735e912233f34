"""Forward algorithm, gold-path score and Viterbi for a linear-chain CRF.

Shapes: ``emissions`` [B, T, K] network scores f(x)_t,k; ``mask`` [B, T] bool, left-aligned
(every sentence has at least one word, padding after its end); ``transitions`` [K, K] with
``transitions[i, j]`` the score of tag i followed by tag j; ``initial`` [K] the score of a
sentence starting with tag k (Collobert et al.'s A_0k). There is no end score, as in the paper.

Both recursions run over all T words for the whole padded batch with as few tensor ops per
word as possible (the per-op overhead, not the arithmetic, dominates at these sizes); padding is
handled once, outside the loop, by reading each sentence's result at its own last word.

The forward algorithm is the scaled (normalised) recursion in probability space: one
(B x K) @ (K x K) product per word, every row renormalised to sum 1, log Z = sum of the logs of
the normalisers; its gradient is the matching scaled backward recursion (marginals), with the
transition gradient summed over words and sentences in one product. It runs in float64, so
paths scored up to ~700 nats below the best still count (float32 would drop paths ~87 nats
down, which a sharp score at the next word can make the best ones). Viterbi needs the max-plus product, so it builds the B x K x K tensor, but
takes only its max values (max-with-indices is several times slower); back-tracking recomputes
the one arg-max it needs per sentence and word, over K candidates instead of K x K.
"""
from __future__ import annotations

import torch
from torch import nn


def log_partition(emissions: torch.Tensor, mask: torch.Tensor, transitions: torch.Tensor,
                  initial: torch.Tensor) -> torch.Tensor:
    """log Z per sentence: log-sum-exp of the path score over all tag sequences. Returns [B].

    Differentiable in emissions, transitions and initial; the gradient is the forward-backward
    algorithm's marginals (written out rather than left to autograd: half the ops per word).
    """
    return _LogPartition.apply(emissions, mask, transitions, initial)


class _LogPartition(torch.autograd.Function):
    @staticmethod
    def forward(ctx, emissions, mask, transitions, initial):
        dtype = emissions.dtype
        em = emissions.detach().double().masked_fill(~mask.unsqueeze(2), 0.0)
        e_shift = em.amax(dim=2, keepdim=True)  # [B, T, 1]; any shift is exact
        exp_em = (em - e_shift).exp()  # X_t
        t_shift = transitions.detach().max()
        exp_trans = (transitions.detach().double() - t_shift).exp()  # E
        first = initial.detach().double() + em[:, 0]
        i_shift = first.amax(dim=1, keepdim=True)
        alpha = (first - i_shift).exp()
        norm = alpha.sum(dim=1, keepdim=True)
        alpha = alpha / norm
        alphas, norms = [alpha], [norm]
        for x in exp_em.unbind(1)[1:]:
            alpha = (alpha @ exp_trans) * x
            norm = alpha.sum(dim=1, keepdim=True)
            alpha = alpha / norm
            alphas.append(alpha)
            norms.append(norm)
        norms = torch.cat(norms, dim=1).clamp_min(torch.finfo(torch.float64).tiny)  # c_t [B, T]
        steps = norms.log() + e_shift.squeeze(2) + t_shift.double()
        steps[:, 0] = norms[:, 0].log() + i_shift.squeeze(1)
        log_z = (steps * mask).sum(dim=1)
        ctx.save_for_backward(torch.stack(alphas, dim=1), exp_em, norms, exp_trans, mask)
        ctx.dtypes = (emissions.dtype, transitions.dtype, initial.dtype)
        return log_z.to(dtype)

    @staticmethod
    def backward(ctx, grad_log_z):
        alphas, exp_em, norms, exp_trans, mask = ctx.saved_tensors
        batch, length, tags = alphas.shape
        ends = (mask.sum(dim=1) - 1).unsqueeze(1)  # [B, 1]
        # scaled backward messages: beta_t = E (X_{t+1} beta_{t+1}) / c_{t+1}, 1 at a sentence's end
        beta = torch.ones(batch, tags, dtype=alphas.dtype, device=alphas.device)
        weighted = [None] * length  # X_t beta_t / c_t
        weighted[length - 1] = exp_em[:, -1] * beta / norms[:, -1:]
        betas = [beta] * length
        for t in range(length - 2, -1, -1):
            stepped = weighted[t + 1] @ exp_trans.t()
            beta = torch.where(ends > t, stepped, 1.0)
            betas[t] = beta
            weighted[t] = exp_em[:, t] * beta / norms[:, t : t + 1]
        maskd = mask.unsqueeze(2).to(alphas.dtype)
        unary = alphas * torch.stack(betas, dim=1) * maskd  # p(y_t = k)
        weighted = torch.stack(weighted, dim=1) * maskd
        g = grad_log_z.double()
        pair = torch.einsum("bti,btj->ij", alphas[:, :-1] * g.view(batch, 1, 1), weighted[:, 1:]) * exp_trans
        grad_em = (unary * g.view(batch, 1, 1)).to(ctx.dtypes[0])
        grad_init = (unary[:, 0] * g.view(batch, 1)).sum(0).to(ctx.dtypes[2])
        return grad_em, None, pair.to(ctx.dtypes[1]), grad_init


def gold_score(emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor,
               transitions: torch.Tensor, initial: torch.Tensor) -> torch.Tensor:
    """Score of the given tag path per sentence (padding positions ignored). Returns [B]."""
    maskf = mask.to(emissions.dtype)
    safe = tags.masked_fill(~mask, 0)
    unary = emissions.gather(2, safe.unsqueeze(2)).squeeze(2)
    pair = transitions[safe[:, :-1], safe[:, 1:]]
    return initial[safe[:, 0]] + (unary * maskf).sum(1) + (pair * maskf[:, 1:]).sum(1)


def viterbi(emissions: torch.Tensor, mask: torch.Tensor, transitions: torch.Tensor,
            initial: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Best tag path per sentence and its score: ([B, T] int64 with -1 at padding, [B])."""
    batch, length, tags = emissions.shape
    to_from = transitions.t().contiguous()  # [to, from]: reduce over the contiguous dimension
    score = initial + emissions[:, 0]
    scores = [score]
    for emission in emissions.unbind(1)[1:]:
        score = (score.unsqueeze(1) + to_from).amax(dim=2) + emission
        scores.append(score)
    ends = mask.sum(dim=1) - 1  # index of each sentence's last word
    scores = torch.stack(scores, dim=1)  # [B, T, K]
    best_score, last = scores.gather(1, ends.view(batch, 1, 1).expand(batch, 1, tags)).squeeze(1).max(dim=1)
    path = [last]
    for t in range(length - 2, -1, -1):
        previous = (scores[:, t] + to_from[path[-1]]).argmax(dim=1)
        # words past a sentence's end carry its last tag back unchanged
        path.append(torch.where(ends > t, previous, path[-1]))
    path = torch.stack(path[::-1], dim=1)
    return path.masked_fill(~mask, -1), best_score


class LinearChainCRF(nn.Module):
    """Learned transition matrix and initial scores on top of per-word network scores."""

    def __init__(self, num_tags: int):
        super().__init__()
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))
        self.initial = nn.Parameter(torch.zeros(num_tags))

    def log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor,
                       mask: torch.Tensor) -> torch.Tensor:
        """log p(tags | sentence) per sentence, [B]."""
        return (gold_score(emissions, tags, mask, self.transitions, self.initial)
                - log_partition(emissions, mask, self.transitions, self.initial))

    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return viterbi(emissions, mask, self.transitions, self.initial)[0]
