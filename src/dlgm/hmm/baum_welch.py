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
from dlgm.hmm.inference import forward_backward, viterbi


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
    """One Baum-Welch iteration over the training set; returns the mean log-likelihood per frame."""
    states = model.states
    stats = None
    stay = torch.zeros(states, dtype=torch.float64, device=model.log_self.device)
    leave = torch.zeros_like(stay)
    total = torch.zeros((), dtype=torch.float64, device=stay.device)
    frames = 0
    for idx in length_batches([len(f) for f in feats], batch_size):
        x, lengths = pad([feats[i] for i in idx])
        graph = _chains(model, [seqs[i] for i in idx])
        post = forward_backward(
            graph.emissions(model.state_log_likelihood(x)), graph.log_trans, graph.log_init, lengths,
            graph.log_final, transitions=True,
        )
        # an utterance with fewer frames than its chain has states cannot be aligned: skip it
        ok = torch.isfinite(post.loglik)
        post.gamma = torch.where(ok.view(-1, 1, 1), post.gamma, torch.zeros_like(post.gamma))
        post.xi = torch.where(ok.view(-1, 1, 1), post.xi, torch.zeros_like(post.xi))
        post.loglik = torch.where(ok, post.loglik, torch.zeros_like(post.loglik))
        total += post.loglik.double().sum()
        frames += int(sum(len(feats[i]) for i in idx))
        mask = valid_mask(lengths, x.shape[1])
        gamma = graph.to_emission_space(post.gamma, states)[mask]
        batch_stats = model.gmm.accumulate(x[mask].double(), gamma.double())
        stats = batch_stats if stats is None else {k: stats[k] + v for k, v in batch_stats.items()}
        width = graph.ids.shape[1]
        diag = post.xi.diagonal(dim1=1, dim2=2)  # [B, L]
        sup = torch.nn.functional.pad(post.xi.diagonal(offset=1, dim1=1, dim2=2), (0, 1))
        last_frame = post.gamma[torch.arange(len(idx)), lengths - 1]  # [B, L]
        is_last = torch.arange(width, device=x.device).unsqueeze(0) == (graph.valid.sum(1) - 1).unsqueeze(1)
        exits = sup + last_frame * is_last
        ids = graph.ids[graph.valid]
        stay.index_add_(0, ids, diag[graph.valid].double())
        leave.index_add_(0, ids, exits[graph.valid].double())
    model.gmm.update(stats)
    seen = stay + leave > 1e-6
    prob = (stay / (stay + leave).clamp_min(1e-12)).clamp(0.05, 0.95)
    model.log_self.copy_(torch.where(seen, prob.log(), model.log_self))
    return {"loglik_per_frame": total / frames}


@torch.no_grad()
def align(model: PhoneHMM, feats: list[torch.Tensor], seqs: list[list[int]], batch_size: int) -> list[torch.Tensor]:
    """Viterbi forced alignment: the emission state of every frame, per utterance (on the CPU)."""
    out: list[torch.Tensor | None] = [None] * len(feats)
    for idx in length_batches([len(f) for f in feats], batch_size):
        x, lengths = pad([feats[i] for i in idx])
        graph = _chains(model, [seqs[i] for i in idx])
        path, _ = viterbi(graph.emissions(model.state_log_likelihood(x)), graph.log_trans, graph.log_init, lengths, graph.log_final)
        states = graph.ids.gather(1, path).cpu()
        for j, i in enumerate(idx):
            out[i] = states[j, : len(feats[i])].clone()
    return out
