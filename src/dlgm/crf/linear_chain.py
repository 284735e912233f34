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
transition gradient summed over words and sentences in one product. It runs in float64 and is
exact while every product it forms stays a normal number: a step is safe when (how far the
smallest non-zero forward variable lies below 1) + (spread of the finite transition scores) +
(spread of the next word's scores) stays under ``dlgm.scaling.underflow_budget`` (~690 nats).
Then a forward variable is 0 only for a structurally impossible path (-inf scores). Sentences
with an unsafe step (or a zero normaliser, or a non-finite scaled marginal) are recomputed by
the plain log-space forward-backward (``_exact_log_space``: one B x K x K log-sum-exp per word,
as pytorch-crf does), so log Z and its gradient are exact at any score scale; the fast path pays
one vectorised check after the loop.

Viterbi needs the max-plus product, so it builds a K x K x B tensor per word, but takes only its max
values (max-with-indices is several times slower); back-tracking recomputes the one arg-max it
needs per sentence and word, over K candidates instead of K x K.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from dlgm.runinfo import one_cpu_thread
from dlgm.scaling import finite_spread, underflow_budget


def log_partition(emissions: torch.Tensor, mask: torch.Tensor, transitions: torch.Tensor,
                  initial: torch.Tensor) -> torch.Tensor:
    """log Z per sentence: log-sum-exp of the path score over all tag sequences. Returns [B].

    Differentiable in emissions, transitions and initial; the gradient is the forward-backward
    algorithm's marginals (written out rather than left to autograd: half the ops per word).
    """
    return _LogPartition.apply(emissions, mask, transitions, initial)


def _exact_log_space(em, mask, trans, init):
    """log Z [B], word marginals [B, T, K] and transition marginals summed over words [B, K, K]
    by the log-space forward-backward recursion (exact for any finite or -inf scores)."""
    batch, length, tags = em.shape
    ends = mask.sum(dim=1) - 1
    alpha = [init + em[:, 0]]
    for t in range(1, length):
        step = torch.logsumexp(alpha[-1].unsqueeze(2) + trans, dim=1) + em[:, t]
        alpha.append(torch.where(mask[:, t : t + 1], step, alpha[-1]))
    log_z = torch.logsumexp(alpha[-1], dim=1)
    if torch.isneginf(log_z).any():
        bad = torch.isneginf(log_z).nonzero()[0, 0].item()
        raise ValueError(f"sentence {bad} has no tag path with a finite score "
                         "(-inf transitions/initial scores rule out every sequence): log Z = -inf")
    beta = [torch.zeros(batch, tags, dtype=em.dtype, device=em.device)] * length
    for t in range(length - 2, -1, -1):
        step = torch.logsumexp(trans + (em[:, t + 1] + beta[t + 1]).unsqueeze(1), dim=2)
        beta[t] = torch.where((ends > t).unsqueeze(1), step, beta[t + 1])
    alpha, beta = torch.stack(alpha, dim=1), torch.stack(beta, dim=1)
    lz = log_z.view(batch, 1, 1)
    # where, not a product with the mask: past a sentence's end these sums can overflow to inf
    unary = torch.where(mask.unsqueeze(2), (alpha + beta - lz).exp(), 0.0)
    joint = alpha[:, :-1].unsqueeze(3) + trans + (em[:, 1:] + beta[:, 1:]).unsqueeze(2) - lz.unsqueeze(1)
    pair = torch.where(mask[:, 1:].view(batch, length - 1, 1, 1), joint.exp(), 0.0).sum(dim=1)
    return log_z, unary, pair


def _single_cpu_thread(step):
    """``step(ctx, tensor, ...)`` run on one CPU thread (``one_cpu_thread`` of its first tensor's
    device): the ops per word of Viterbi and of the forward-backward recursions are too small for a
    second CPU thread to pay for waking it (at 2 threads on the development machine a Viterbi batch
    of 64 x 40 took 3-8 ms with two, 2.2-3.3 ms with one; docs/speed.md)."""
    @functools.wraps(step)
    def wrapped(ctx, first, *rest):
        with one_cpu_thread(first.device):
            return step(ctx, first, *rest)
    return wrapped


class _LogPartition(torch.autograd.Function):
    # The recursions write each word's messages straight into time-major [T, B, K] buffers: no
    # per-word tensors to stack afterwards, and the transition gradient is then one product.
    @staticmethod
    @_single_cpu_thread
    def forward(ctx, emissions, mask, transitions, initial):
        dtype = emissions.dtype
        em = emissions.detach().double().masked_fill(~mask.unsqueeze(2), 0.0)
        trans = transitions.detach().double()
        init = initial.detach().double()
        # plain maxima as shifts: an all -inf word or matrix gives NaN, which the check below catches
        e_shift = em.amax(dim=2, keepdim=True)  # [B, T, 1]; any shift is exact
        batch, length, tags = em.shape
        new = lambda *shape: torch.empty(*shape, dtype=em.dtype, device=em.device)  # noqa: E731
        exp_em = torch.exp((em - e_shift).transpose(0, 1), out=new(length, batch, tags))  # X_t
        t_shift = trans.max()
        exp_trans = (trans - t_shift).exp()  # E
        first = init + em[:, 0]
        i_shift = first.amax(dim=1, keepdim=True)
        alphas, c = new(length, batch, tags), new(length, batch, 1)  # scaled forward variables, normalisers
        torch.exp(first - i_shift, out=alphas[0])
        alpha, x, norm = alphas.unbind(0), exp_em.unbind(0), c.unbind(0)  # per-word views, made once
        for t in range(length):
            if t:
                torch.mm(alpha[t - 1], exp_trans, out=alpha[t]).mul_(x[t])
            alpha[t].div_(torch.sum(alpha[t], dim=1, keepdim=True, out=norm[t]))
        norms = c.squeeze(2).t()  # c_t as [B, T]
        # Per word: how far below 1 the scaled forward variables reach, plus what the next step adds.
        # Zeros are structural only where some score is -inf; a -inf emission counts as unsafe (the
        # spread is inf), so only -inf transitions/initial scores need zeros and infinities skipped.
        if bool(torch.isinf(trans).any() or torch.isinf(init).any()):
            smallest = alphas.masked_fill(alphas <= 0, 1.0).amin(dim=2).t()
            spread_t, spread_first = finite_spread(trans, (0, 1)), finite_spread(first, 1)
        else:
            smallest = alphas.amin(dim=2).t()
            spread_t, spread_first = t_shift - trans.min(), i_shift.squeeze(1) - first.amin(dim=1)
        need = spread_t - smallest[:, :-1].log() + (e_shift[:, 1:, 0] - em[:, 1:].amin(dim=2))
        budget = underflow_budget(torch.float64, tags)
        ok = (need <= budget) & (norms[:, 1:] > 0)  # NaN compares False: unsafe
        unsafe = (~ok & mask[:, 1:]).any(dim=1) | ~((spread_first <= budget) & (norms[:, 0] > 0))
        steps = norms.clamp_min(torch.finfo(torch.float64).tiny).log() + e_shift.squeeze(2) + t_shift
        steps[:, 0] = norms[:, 0].clamp_min(torch.finfo(torch.float64).tiny).log() + i_shift.squeeze(1)
        log_z = (steps * mask).sum(dim=1)
        exact = None
        if unsafe.any():
            rows = unsafe.nonzero().squeeze(1)
            exact = (rows, *_exact_log_space(em[rows], mask[rows], trans, init))
            log_z[rows] = exact[1]
        ctx.exact = exact
        ctx.exact_inputs = (em, trans, init)
        ctx.save_for_backward(alphas, exp_em, c, exp_trans, mask, unsafe)
        ctx.dtypes = (emissions.dtype, transitions.dtype, initial.dtype)
        return log_z.to(dtype)

    @staticmethod
    @_single_cpu_thread
    def backward(ctx, grad_log_z):
        alphas, exp_em, c, exp_trans, mask, unsafe = ctx.saved_tensors  # [T, B, K], [T, B, K], [T, B, 1]
        length, batch, tags = alphas.shape
        ends = (mask.sum(dim=1) - 1).unsqueeze(1)  # [B, 1]
        g = grad_log_z.double()
        # scaled backward messages: beta_t = E (X_{t+1} beta_{t+1}) / c_{t+1}, 1 at a sentence's end
        weighted = torch.div(exp_em, c)  # X_t / c_t, then X_t beta_t / c_t
        trans_t = exp_trans.t().contiguous()
        first_end = int(ends.min())  # no sentence has ended before this word: no masking needed
        betas = torch.empty_like(alphas)
        betas[-1] = 1.0
        beta, w = betas.unbind(0), weighted.unbind(0)  # per-word views, made once
        for t in range(length - 2, -1, -1):
            torch.mm(w[t + 1], trans_t, out=beta[t])
            if t >= first_end:
                beta[t].masked_fill_(ends <= t, 1.0)
            w[t].mul_(beta[t])
        maskd = mask.t().unsqueeze(2).to(alphas.dtype)  # [T, B, 1]
        unary = betas.mul_(alphas).mul_(maskd)  # p(y_t = k)
        weighted.mul_(maskd * g.view(1, batch, 1))
        # a scaled backward message can overflow for a tag no path reaches: recompute such rows exactly
        unsafe = unsafe | ~torch.isfinite(unary.sum(dim=(0, 2)))
        if not unsafe.any():
            pair = alphas[:-1].reshape(-1, tags).t() @ weighted[1:].reshape(-1, tags) * exp_trans
        else:
            exact = ctx.exact
            rows = unsafe.nonzero().squeeze(1)
            if exact is None or len(exact[0]) < len(rows):
                em, trans, init = ctx.exact_inputs
                exact = (rows, *_exact_log_space(em[rows], mask[rows], trans, init))
            keep = (~unsafe).view(1, batch, 1)
            fast = torch.where(keep, weighted, 0.0)
            pair = torch.where(keep, alphas, 0.0)[:-1].reshape(-1, tags).t() @ fast[1:].reshape(-1, tags) * exp_trans
            rows, _, ex_unary, ex_pair = exact
            unary = torch.where(keep, unary, 0.0)
            unary[:, rows] = ex_unary.transpose(0, 1)
            pair = pair + torch.einsum("b,bij->ij", g[rows], ex_pair)
        unary = unary.mul_(g.view(1, batch, 1)).transpose(0, 1)  # [B, T, K]
        grad_em = unary.to(ctx.dtypes[0], memory_format=torch.contiguous_format)
        grad_init = unary[:, 0].sum(0).to(ctx.dtypes[2])
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
    with one_cpu_thread(emissions.device):
        return _viterbi(emissions, mask, transitions, initial)


def _viterbi(emissions, mask, transitions, initial):
    batch, length, _ = emissions.shape
    # Time-major and batch-last ([T, K, B]): the max over the previous tag then reduces the middle
    # dimension of [to, from, B], vectorised along the batch, 2-3x faster on a CPU than reducing
    # runs of K contiguous scores. The sums and maxima are the same, so are the results.
    em = emissions.permute(1, 2, 0).contiguous()
    to_from = transitions.t().unsqueeze(2)  # [to, from, 1]
    score = initial.unsqueeze(1) + em[0]
    scores = [score]
    for emission in em.unbind(0)[1:]:
        score = (to_from + score.unsqueeze(0)).amax(dim=1) + emission
        scores.append(score)
    ends = mask.sum(dim=1) - 1  # index of each sentence's last word
    first_end = int(ends.min())
    scores = torch.stack(scores)  # [T, K, B]
    rows = torch.arange(batch, device=emissions.device)
    best_score, last = scores[ends, :, rows].max(dim=1)
    # Back-tracking reads, for each sentence, the K scores of a word and the K transitions into its
    # next tag: batch-first [T, B, K] scores and the rows of transitions^T make both contiguous
    # (half the time of gathering columns and reducing across the batch-last layout).
    scores, into = scores.transpose(1, 2).contiguous(), transitions.t().contiguous()
    path = [last]
    for t in range(length - 2, -1, -1):
        previous = (scores[t] + into[path[-1]]).argmax(dim=1)
        # words past a sentence's end carry its last tag back unchanged
        path.append(previous if t < first_end else torch.where(ends > t, previous, path[-1]))
    path = torch.stack(path[::-1], dim=1)
    return path.masked_fill(~mask, -1), best_score


class LinearChainCRF(nn.Module):
    """Learned transition matrix and initial scores on top of per-word network scores.

    ``emissions`` [B, T, num_tags] floating point, ``tags`` [B, T] integer, ``mask`` [B, T] bool
    (None: no padding), left-aligned with every first word unmasked; anything else is refused
    with an error naming the argument and its shape.
    """

    def __init__(self, num_tags: int):
        super().__init__()
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))
        self.initial = nn.Parameter(torch.zeros(num_tags))

    def log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor,
                       mask: torch.Tensor | None = None) -> torch.Tensor:
        """log p(tags | sentence) per sentence, [B]."""
        mask = self._validate(emissions, tags, mask)
        return (gold_score(emissions, tags, mask, self.transitions, self.initial)
                - log_partition(emissions, mask, self.transitions, self.initial))

    def decode(self, emissions: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = self._validate(emissions, None, mask)
        return viterbi(emissions, mask, self.transitions, self.initial)[0]

    def _validate(self, emissions, tags, mask) -> torch.Tensor:
        if emissions.dim() != 3 or emissions.shape[2] != self.num_tags:
            raise ValueError(f"emissions must have shape [batch, length, num_tags={self.num_tags}], "
                             f"got {tuple(emissions.shape)}")
        if not emissions.is_floating_point():
            raise TypeError(f"emissions must be a floating-point tensor, got {emissions.dtype}")
        batch, length = emissions.shape[:2]
        if length == 0:
            raise ValueError(f"emissions has no words: shape {tuple(emissions.shape)}")
        if tags is not None:
            if tuple(tags.shape) != (batch, length):
                raise ValueError(f"tags must have shape {(batch, length)} (emissions' first two dimensions), "
                                 f"got {tuple(tags.shape)}")
            if tags.is_floating_point() or tags.is_complex() or tags.dtype == torch.bool:
                raise TypeError(f"tags must be an integer tensor, got {tags.dtype}")
        if mask is None:
            return torch.ones(batch, length, dtype=torch.bool, device=emissions.device)
        if tuple(mask.shape) != (batch, length):
            raise ValueError(f"mask must have shape {(batch, length)} (emissions' first two dimensions), "
                             f"got {tuple(mask.shape)}")
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor, got {mask.dtype}")
        if not mask[:, 0].all():
            rows = (~mask[:, 0]).nonzero().squeeze(1).tolist()
            raise ValueError(f"mask of shape {tuple(mask.shape)}: the first word of every sentence must be "
                             f"unmasked (all-padding or right-aligned rows: {rows[:10]})")
        if (mask[:, 1:] & ~mask[:, :-1]).any():
            rows = (mask[:, 1:] & ~mask[:, :-1]).any(dim=1).nonzero().squeeze(1).tolist()
            raise ValueError(f"mask of shape {tuple(mask.shape)} must be left-aligned (words, then padding); "
                             f"rows with a gap: {rows[:10]}")
        if tags is not None:
            real = tags[mask]
            if real.numel() and (real.min() < 0 or real.max() >= self.num_tags):
                raise ValueError(f"tags of shape {tuple(tags.shape)} must lie in [0, {self.num_tags}) at unmasked "
                                 f"words, got values in [{int(real.min())}, {int(real.max())}]")
        return mask
