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
the normalisers. It runs in float64, so paths scored up to ~700 nats below the best still
count (float32 would drop paths ~87 nats down, which a sharp score at the next word can make
the best ones). Viterbi needs the max-plus product, so it builds the B x K x K tensor, but
takes only its max values (max-with-indices is several times slower); back-tracking recomputes
the one arg-max it needs per sentence and word, over K candidates instead of K x K.
"""
from __future__ import annotations

import torch
from torch import nn


def log_partition(emissions: torch.Tensor, mask: torch.Tensor, transitions: torch.Tensor,
                  initial: torch.Tensor) -> torch.Tensor:
    """log Z per sentence: log-sum-exp of the path score over all tag sequences. Returns [B]."""
    dtype = emissions.dtype
    emissions = emissions.double().masked_fill(~mask.unsqueeze(2), 0.0)
    transitions = transitions.double()
    e_shift = emissions.max(dim=2, keepdim=True).values.detach()  # [B, T, 1]
    exp_emissions = (emissions - e_shift).exp()
    t_shift = transitions.max().detach()
    exp_trans = (transitions - t_shift).exp()
    first = initial.double() + emissions[:, 0]
    i_shift = first.max(dim=1, keepdim=True).values.detach()  # any shift is exact; no gradient needed
    alpha = (first - i_shift).exp()
    norm = alpha.sum(dim=1, keepdim=True)
    alpha = alpha / norm
    norms = [norm]
    # unbind once: indexing [:, t] in the loop would make autograd build T full-size zero tensors
    for exp_emission in exp_emissions.unbind(1)[1:]:
        alpha = (alpha @ exp_trans) * exp_emission
        norm = alpha.sum(dim=1, keepdim=True)
        alpha = alpha / norm
        norms.append(norm)
    # every word after the first adds its normaliser and shifts; padding words add nothing
    log_norms = torch.cat(norms, dim=1).clamp_min(torch.finfo(torch.float64).tiny).log()
    steps = log_norms + e_shift.squeeze(2) + t_shift
    steps[:, 0] = log_norms[:, 0] + i_shift.squeeze(1)
    return (steps * mask).sum(dim=1).to(dtype)


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
