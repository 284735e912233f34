"""Hybrid decoding: network state posteriors divided by state priors are scaled likelihoods
(Bourlard & Morgan), decoded by Viterbi through the HMM's loop graph."""
from __future__ import annotations

import torch

from dlgm.speech.model import BLSTM


def state_log_priors(alignments: list[torch.Tensor], states: int, floor: float = 1e-5) -> torch.Tensor:
    counts = torch.bincount(torch.cat(alignments).long().cpu(), minlength=states).double()
    return (counts / counts.sum()).clamp_min(floor).log()


def scaled_likelihood_scorer(model: BLSTM, log_priors: torch.Tensor, acoustic_scale: float = 1.0):
    """A frame scorer for dlgm.hmm.decode: acoustic_scale * (log p(state | x) - log p(state))."""
    priors = log_priors.float()

    def score(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        log_post = model(x, lengths.cpu()).log_softmax(-1)
        return acoustic_scale * (log_post - priors.to(log_post.device))

    return score
