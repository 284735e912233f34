"""The window approach network (Collobert et al. 2011, Sec. 3.3.1, Fig. 1).

Each word is scored from a window of ``window`` words centred on it: the lookup-table vectors
of the words and of their capitalisation classes are concatenated, passed through one hidden
layer of HardTanh units and a linear layer giving one score per tag. The sentence is padded at
both ends with the padding word. Optional sentence-level likelihood adds a CRF (dlgm.crf).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from dlgm.crf import LinearChainCRF
from dlgm.nlp.features import CAPS


class WindowNetwork(nn.Module):
    def __init__(self, vocab_size: int, num_tags: int, *, window: int = 5, word_dim: int = 50,
                 caps_dim: int = 5, hidden: int = 300, sentence_level: bool = False):
        super().__init__()
        if window % 2 != 1:
            raise ValueError(f"window must be odd, got {window}")
        self.window = window
        self.words = nn.Embedding(vocab_size, word_dim, sparse=True)  # a step touches few rows
        self.caps = nn.Embedding(len(CAPS), caps_dim)
        self.hidden = nn.Linear(window * (word_dim + caps_dim), hidden)
        self.output = nn.Linear(hidden, num_tags)
        self.crf = LinearChainCRF(num_tags) if sentence_level else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # uniform with variance 1/fan-in (Collobert et al. follow LeCun et al. 1998); the lookup
        # tables' fan-in is 1 (each vector is read as is)
        for layer in (self.hidden, self.output):
            bound = math.sqrt(3.0 / layer.in_features)
            nn.init.uniform_(layer.weight, -bound, bound)
            nn.init.uniform_(layer.bias, -bound, bound)
        for table in (self.words, self.caps):
            nn.init.uniform_(table.weight, -math.sqrt(3.0), math.sqrt(3.0))

    def fan_in(self) -> dict[str, int]:
        """Fan-in of each parameter's layer, for per-layer learning rates lambda / fan-in."""
        fans = {"words.weight": 1, "caps.weight": 1,
                "hidden.weight": self.hidden.in_features, "hidden.bias": self.hidden.in_features,
                "output.weight": self.output.in_features, "output.bias": self.output.in_features}
        if self.crf is not None:
            fans.update({"crf.transitions": 1, "crf.initial": 1})
        return fans

    def forward(self, words: torch.Tensor, caps: torch.Tensor) -> torch.Tensor:
        """[B, T] word and caps indices (0 = padding) -> [B, T, tags] scores."""
        half = self.window // 2
        words = nn.functional.pad(words, (half, half), value=0)
        caps = nn.functional.pad(caps, (half, half), value=0)
        features = torch.cat([self.words(words), self.caps(caps)], dim=2)  # [B, T + 2 half, d]
        windows = features.unfold(1, self.window, 1)  # [B, T, d, window]
        windows = windows.transpose(2, 3).flatten(2)  # word-major: [w-2 | w-1 | w | w+1 | w+2]
        return self.output(nn.functional.hardtanh(self.hidden(windows)))

    def loss(self, scores: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Summed negative log-likelihood: sentence-level (CRF) or word-level (softmax per word)."""
        if self.crf is not None:
            return -self.crf.log_likelihood(scores, tags, mask).sum()
        picked = nn.functional.cross_entropy(scores.flatten(0, 1), tags.masked_fill(~mask, 0).flatten(),
                                             reduction="none")
        return (picked * mask.flatten()).sum()

    def predict(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[B, T] best tags (-1 at padding): Viterbi for SLL, per-word arg-max for WLL."""
        if self.crf is not None:
            return self.crf.decode(scores, mask)
        return scores.argmax(dim=2).masked_fill(~mask, -1)
