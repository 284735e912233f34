"""A GMM-HMM phone recogniser trained by embedded Baum-Welch re-estimation.

Each training utterance is the chain of its transcript's phone models (``linear_graph``);
forward-backward gives state posteriors and expected transition counts, batched over
utterances; the M-step re-estimates the diagonal GMMs and self-loop probabilities. Mixtures grow
by splitting (1 -> 2 -> 4 ...) on a schedule. Viterbi through the same chains gives the
frame-level state alignments the hybrid network is trained on.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from dlgm.hmm.batching import length_batches, pad, valid_mask
from dlgm.hmm.gmm import DiagGMM
from dlgm.hmm.graph import linear_graph
from dlgm.hmm.chain import chain_forward_backward, chain_viterbi


class PhoneHMM(nn.Module):
    """Phone models: ``phones`` x ``states_per_phone`` emission states with GMMs and self-loops."""

    def __init__(self, phones: int, dim: int, states_per_phone: int = 3, var_floor: float = 1e-2, self_loop: float = 0.6):
        super().__init__()
        self.states_per_phone = states_per_phone
        self.gmm = DiagGMM(phones * states_per_phone, dim, 1, var_floor)
        self.register_buffer("log_self", torch.full((phones * states_per_phone,), math.log(self_loop), dtype=torch.float64))

    @property
    def states(self) -> int:
        return self.log_self.shape[0]

    def state_log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        return self.gmm.log_likelihood(x.double()).float()

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        # mixture splitting changes buffer shapes, so resume by replacing the buffers
        for name, value in state.items():
            owner, _, attr = name.rpartition(".")
            module = self.get_submodule(owner) if owner else self
            setattr(module, attr, value.to(getattr(module, attr).device))
        return None


def _chains(model: PhoneHMM, seqs: list[list[int]]):
    return linear_graph(seqs, model.log_self.float(), model.states_per_phone)


@torch.no_grad()
def em_iteration(model: PhoneHMM, feats: list[torch.Tensor], seqs: list[list[int]], batch_size: int) -> dict:
    """One Baum-Welch iteration over the training set; returns the mean log-likelihood per frame
    (of the parameters before this iteration's update)."""
    states = model.states
    stats = None
    stay = torch.zeros(states, dtype=torch.float64, device=model.log_self.device)
    leave = torch.zeros_like(stay)
    total = torch.zeros((), dtype=torch.float64, device=stay.device)
    frames = 0
    for idx in length_batches([len(f) for f in feats], batch_size):
        x, lengths = pad([feats[i] for i in idx])
        graph = _chains(model, [seqs[i] for i in idx])
        loglik, gamma, stay_n, leave_n = chain_forward_backward(
            graph.emissions(model.state_log_likelihood(x)), graph.stay, graph.leave, graph.states, lengths)
        # an utterance with fewer frames than its chain has states cannot be aligned: it is skipped
        ok = torch.isfinite(loglik).view(-1, 1)
        gamma = torch.where(ok.unsqueeze(2), gamma, torch.zeros_like(gamma))
        total += torch.where(ok.squeeze(1), loglik, torch.zeros_like(loglik)).double().sum()
        frames += int(sum(len(feats[i]) for i in idx))
        mask = valid_mask(lengths, x.shape[1])
        post = graph.to_emission_space(gamma, states)[mask]
        batch_stats = model.gmm.accumulate(x[mask].double(), post.double())
        stats = batch_stats if stats is None else {k: stats[k] + v for k, v in batch_stats.items()}
        ids = graph.ids[graph.valid]
        stay.index_add_(0, ids, torch.where(ok, stay_n, 0.0)[graph.valid].double())
        leave.index_add_(0, ids, torch.where(ok, leave_n, 0.0)[graph.valid].double())
    model.gmm.update(stats)
    seen = stay + leave > 1e-6
    prob = (stay / (stay + leave).clamp_min(1e-12)).clamp(0.05, 0.95)
    model.log_self.copy_(torch.where(seen, prob.log(), model.log_self))
    return {"loglik_per_frame": total / frames}


@torch.no_grad()
def align(score, log_self: torch.Tensor, states_per_phone: int, feats: list[torch.Tensor], seqs: list[list[int]],
          batch_size: int) -> list[torch.Tensor]:
    """Viterbi forced alignment: the emission state of every frame, per utterance (on the CPU).

    ``score(x, lengths) -> [B, T, E]`` is any frame scorer: the GMMs, or a network's scaled likelihoods.
    """
    out: list[torch.Tensor | None] = [None] * len(feats)
    for idx in length_batches([len(f) for f in feats], batch_size):
        x, lengths = pad([feats[i] for i in idx])
        graph = linear_graph([seqs[i] for i in idx], log_self.float(), states_per_phone)
        path, _ = chain_viterbi(graph.emissions(score(x, lengths)), graph.stay, graph.leave, graph.states, lengths)
        states = graph.ids.gather(1, path).cpu()
        for j, i in enumerate(idx):
            out[i] = states[j, : len(feats[i])].clone()
    return out


def gmm_scorer(model: PhoneHMM):
    return lambda x, lengths: model.state_log_likelihood(x)
