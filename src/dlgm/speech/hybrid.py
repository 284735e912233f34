"""Hybrid decoding: network state posteriors divided by state priors are scaled likelihoods
(Bourlard & Morgan), decoded by Viterbi through the HMM's loop graph. The priors are state
frequencies of the training targets (Viterbi hybrid) or full-sum occupancies (full-sum hybrid)."""
from __future__ import annotations

import torch

from dlgm.hmm.batching import length_batches, pad
from dlgm.hmm.fullsum import full_sum_nll
from dlgm.speech.model import BLSTM


def log_frequencies(counts: torch.Tensor, floor: float = 1e-5) -> torch.Tensor:
    """State log-priors from (soft) state counts: normalised, floored, logged."""
    return (counts / counts.sum()).clamp_min(floor).log()


def state_log_priors(alignments: list[torch.Tensor], states: int, floor: float = 1e-5) -> torch.Tensor:
    counts = torch.bincount(torch.cat(alignments).long().cpu(), minlength=states).double()
    return log_frequencies(counts, floor)


def scaled_likelihood_scorer(model: BLSTM, log_priors: torch.Tensor, acoustic_scale: float = 1.0,
                             prior_scale: float = 1.0):
    """A frame scorer for dlgm.hmm.decode: acoustic_scale * (log p(state | x) - prior_scale * log p(state))."""
    priors = prior_scale * log_priors.float()

    def score(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        log_post = model(x, lengths.cpu()).log_softmax(-1)
        return acoustic_scale * (log_post - priors.to(log_post.device))

    return score


def occupancy_log_priors(model: BLSTM, feats: list[torch.Tensor], transcripts: list[list[int]], log_self: torch.Tensor,
                         states_per_phone: int, batch_size: int, floor: float = 1e-5) -> torch.Tensor:
    """State log-priors [E] from the full-sum occupancies of the training transcripts under the network.

    The gradient of the full-sum loss with respect to the frame scores is minus each emission
    state's posterior occupancy (dlgm.hmm.fullsum), so the occupancies come from one backward pass
    per batch; their normalised totals are the soft counterpart of ``state_log_priors``' counts.
    """
    model.eval()
    counts = torch.zeros(log_self.shape[0], dtype=torch.float64, device=feats[0].device)
    for idx in length_batches([len(f) for f in feats], batch_size):
        x, lengths = pad([feats[i] for i in idx])
        with torch.no_grad():
            scores = model(x, lengths.cpu()).log_softmax(-1)
        scores.requires_grad_(True)
        loss = full_sum_nll(scores, lengths, [transcripts[i] for i in idx], log_self, states_per_phone).sum()
        (grad,) = torch.autograd.grad(loss, scores)
        counts -= grad.double().sum((0, 1))
    return log_frequencies(counts, floor).cpu()


def phone_occupancy(log_priors: torch.Tensor, states_per_phone: int) -> torch.Tensor:
    """Each phone's share of the occupancy (its states' priors summed), indexed like the corpus's phones."""
    return log_priors.exp().view(-1, states_per_phone).sum(1)


def occupancy_shape(log_priors: torch.Tensor, transcripts: list[list[int]], frames: int,
                    states_per_phone: int) -> dict:
    """Whether a full-sum alignment is degenerate: the share of training frames its most occupied
    phone holds (its states together), and the share the transcripts' minimum durations
    (states_per_phone frames a phone) take. When one phone holds all the frames the minimum
    durations leave, the two add up to about 1."""
    phones = sum(len(t) for t in transcripts)
    return {"train_top_phone_share": float(phone_occupancy(log_priors, states_per_phone).max()),
            "train_min_duration_share": states_per_phone * phones / frames}
