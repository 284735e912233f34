"""Deep bidirectional LSTM acoustic model (torch's fused nn.LSTM: cuDNN on a GPU).

One network serves both papers: the hybrid's output layer is the HMM states (frame
cross-entropy), CTC's is the phones plus a blank. Gaussian weight noise (Graves 2011; std 0.075
in both papers) is added to every weight for one mini-batch's forward and backward pass and
removed before the update.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn


class BLSTM(nn.Module):
    def __init__(self, inputs: int, hidden: int, layers: int, outputs: int, dropout: float = 0.0):
        super().__init__()
        self.lstm = nn.LSTM(inputs, hidden, num_layers=layers, bidirectional=True, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.out = nn.Linear(2 * hidden, outputs)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """[B, T, D] padded frames -> [B, T, outputs] unnormalised scores (zeros past each length)."""
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        hidden, _ = self.lstm(packed)
        hidden, _ = nn.utils.rnn.pad_packed_sequence(hidden, batch_first=True, total_length=x.shape[1])
        return self.out(hidden)


class WeightNoise:
    """``with noise():`` every weight carries fresh Gaussian noise of std ``std``; the clean weights
    come back after. The noise is drawn in place into buffers allocated once: drawing a paper-sized
    network's 26M values into fresh tensors each update cost about twice as much (docs/speed.md).
    The draws equal ``torch.randn(p.shape) * std`` from the same generator (bit for bit on tensors
    of 16 values or more, where torch's CPU sampler is vectorised), as before the buffers."""

    def __init__(self, model: nn.Module, std: float, generator: torch.Generator | None = None):
        self.std, self.generator = std, generator
        self.params = list(model.parameters()) if std > 0 else []
        self.buffers = [torch.empty_like(p) for p in self.params]

    @contextlib.contextmanager
    def __call__(self):
        with torch.no_grad():
            for p, n in zip(self.params, self.buffers):
                n.normal_(0.0, self.std, generator=self.generator)
                p.add_(n)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, n in zip(self.params, self.buffers):
                    p.sub_(n)
