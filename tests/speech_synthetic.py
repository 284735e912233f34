"""A synthetic phone corpus drawn from a known phone HMM, for the speech and HMM tests.

Each phone has ``states_per_phone`` left-to-right states; each state emits from a Gaussian with
its own mean (unit variance). Transcripts are random phone strings framed by silence (phone 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SyntheticCorpus:
    feats: list[torch.Tensor]  # [T, D] float32
    phones: list[list[int]]
    frame_states: list[torch.Tensor]  # [T] emission state per frame
    means: torch.Tensor  # [E, D]
    self_loop: float


def make_corpus(utterances: int, phones: int = 5, dim: int = 8, states_per_phone: int = 3, length: tuple[int, int] = (2, 5),
                self_loop: float = 0.6, separation: float = 2.5, seed: int = 0) -> SyntheticCorpus:
    gen = torch.Generator().manual_seed(seed)
    states = phones * states_per_phone
    means = torch.randn(states, dim, generator=gen) * separation
    feats, seqs, paths = [], [], []
    for _ in range(utterances):
        n = int(torch.randint(length[0], length[1] + 1, (1,), generator=gen))
        seq = [0] + (torch.randint(1, phones, (n,), generator=gen)).tolist() + [0]
        frame_states = []
        for p in seq:
            for k in range(states_per_phone):
                stay = 1
                while torch.rand(1, generator=gen).item() < self_loop:
                    stay += 1
                frame_states += [p * states_per_phone + k] * stay
        path = torch.tensor(frame_states)
        feats.append((means[path] + torch.randn(len(path), dim, generator=gen)).float())
        seqs.append(seq)
        paths.append(path)
    return SyntheticCorpus(feats, seqs, paths, means, self_loop)
