"""Full-sum HMM training loss: -log p(x | transcript) summed over every path of the transcript's HMM.

The transcript's HMM is the chain of its phones' left-to-right states (``graph.linear_graph``):
each chain state stays (log-probability ``log_self`` of its emission state) or moves to the next
(log(1 - p)); the last state exits the same way. Given per-frame scores of the emission states
(a network's outputs: log-likelihoods, scaled likelihoods or log-posteriors), the loss of an
utterance is -logsumexp over all state sequences of the summed frame scores and transition
log-probabilities, computed by the batched log-space chain forward (``chain.chain_forward``:
exact at any score scale, O(B x L) per frame), in float64 whatever the scores' dtype.

Two gradients, equal (tested): autograd through the log-space forward (``analytic=False``), or
the forward-backward state occupancies (``analytic=True``, default, about half the work):
d loss / d score[b, t, e] = -(posterior occupancy of emission state e at frame t), and
d loss / d stay (leave) of a chain state = -(expected number of stays (moves/exits) there). When
the scores are log-softmax outputs, autograd through the softmax turns the first into
-(occupancy - softmax) per frame (the model's expectation subtracted).
"""
from __future__ import annotations

import torch

from dlgm.hmm.chain import chain_forward, chain_forward_backward
from dlgm.hmm.graph import linear_graph


class _ChainLogLikelihood(torch.autograd.Function):
    """Chain log-likelihood [B] with the forward-backward occupancies as its gradient."""

    @staticmethod
    def forward(ctx, log_emit, stay, leave, states, lengths):
        loglik, gamma, stay_n, leave_n = chain_forward_backward(log_emit, stay, leave, states, lengths)
        ctx.save_for_backward(gamma, stay_n, leave_n)
        return loglik

    @staticmethod
    def backward(ctx, grad):
        gamma, stay_n, leave_n = ctx.saved_tensors
        g = grad.view(-1, 1)
        return gamma * g.unsqueeze(2), stay_n * g, leave_n * g, None, None


def full_sum_nll(state_scores: torch.Tensor, lengths: torch.Tensor, transcripts: list[list[int]],
                 log_self: torch.Tensor, states_per_phone: int, analytic: bool = True) -> torch.Tensor:
    """-log p(x | transcript) per utterance, [B] in ``state_scores``' dtype.

    ``state_scores`` [B, T, E]: score of emission state e = phone * states_per_phone + k at frame t
    (frames past ``lengths`` [B] are ignored); ``transcripts``: B phone-id lists; ``log_self`` [E]:
    self-loop log-probability of each emission state (fixed, or a parameter to learn).
    Refuses (ValueError naming the utterance) a transcript whose chain cannot fit its frames, or
    an utterance whose every path has score -inf.
    """
    batch, frames, emission_states = state_scores.shape
    if len(transcripts) != batch:
        raise ValueError(f"transcripts: {len(transcripts)} given for a batch of {batch} (state_scores "
                         f"{tuple(state_scores.shape)})")
    if log_self.shape != (emission_states,):
        raise ValueError(f"log_self must have shape ({emission_states},) (state_scores' last dimension), "
                         f"got {tuple(log_self.shape)}")
    lengths = torch.as_tensor(lengths, device=state_scores.device)
    if lengths.shape != (batch,) or int(lengths.min()) < 1 or int(lengths.max()) > frames:
        raise ValueError(f"lengths must be [{batch}] values in [1, {frames}], got {lengths.tolist()}")
    if any(not t for t in transcripts) or max(max(t) for t in transcripts) * states_per_phone >= emission_states:
        raise ValueError(f"transcripts must be non-empty lists of phone ids below "
                         f"{emission_states // states_per_phone} (state_scores' last dimension / states_per_phone)")
    graph = linear_graph(transcripts, log_self.double(), states_per_phone)
    too_short = (lengths < graph.states).nonzero().squeeze(1).tolist()
    if too_short:
        b = too_short[0]
        raise ValueError(f"utterance {b}: {int(lengths[b])} frames cannot pass through the {int(graph.states[b])} "
                         f"states of its transcript's chain")
    log_emit = graph.emissions(state_scores.double())
    if analytic:
        loglik = _ChainLogLikelihood.apply(log_emit, graph.stay, graph.leave, graph.states, lengths)
    else:
        loglik = chain_forward(log_emit, graph.stay, graph.leave, graph.states, lengths)
    impossible = torch.isneginf(loglik).nonzero().squeeze(1).tolist()
    if impossible:
        raise ValueError(f"utterance {impossible[0]}: every path through its transcript's chain has score -inf")
    return (-loglik).to(state_scores.dtype)
