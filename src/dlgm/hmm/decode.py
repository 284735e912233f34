"""Viterbi decoding of whole data sets through a loop graph, for any frame scorer."""
from __future__ import annotations

from typing import Callable

import torch

from dlgm.hmm.batching import length_batches, pad
from dlgm.hmm.graph import LoopGraph
from dlgm.hmm.inference import viterbi

Scorer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x [B,T,D], lengths) -> [B,T,E] log scores


@torch.no_grad()
def decode(score: Scorer, graph: LoopGraph, feats: list[torch.Tensor], batch_size: int) -> tuple[list[list[int]], list[torch.Tensor]]:
    """Unit sequence and per-frame emission state of the best path of every utterance."""
    units: list = [None] * len(feats)
    states: list = [None] * len(feats)
    for idx in length_batches([len(f) for f in feats], batch_size):
        x, lengths = pad([feats[i] for i in idx])
        log_emit = graph.emissions(score(x, lengths))
        path, _ = viterbi(log_emit, graph.log_trans, graph.log_init, lengths, graph.log_final)
        found = graph.units(path, lengths)
        frame_states = graph.ids[path].cpu()
        for j, i in enumerate(idx):
            units[i] = found[j]
            states[i] = frame_states[j, : len(feats[i])].clone()
    return units, states
