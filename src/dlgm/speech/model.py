"""Deep bidirectional LSTM acoustic model (torch's fused LSTM kernel per layer and direction: cuDNN on a GPU).

One network serves both papers: the hybrid's output layer is the HMM states (frame
cross-entropy), CTC's is the phones plus a blank. Gaussian weight noise (Graves 2011; std 0.075
in both papers) is added to every weight for one mini-batch's forward and backward pass and
removed before the update.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from dlgm.hmm.batching import valid_mask


def reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """[B, T, H] with each row's first lengths[b] frames in reverse order (the padding after them
    stays in place); its own inverse."""
    t = torch.arange(x.shape[1], device=x.device)
    last = lengths.to(x.device).view(-1, 1) - 1
    idx = torch.where(t <= last, last - t, t)
    return x.gather(1, idx.unsqueeze(2).expand_as(x))


class BLSTM(nn.Module):
    """Bidirectional LSTM layers (nn.LSTM's parameters) and a linear output layer.

    The forward runs each direction of each layer on the padded batch, the backward direction on
    every utterance reversed within its length, instead of nn.LSTM on a PackedSequence: the same
    outputs, but torch's packed LSTM is slow (pytorch issue #149194); on a CPU forward and backward took
    6x as long as this on 16 utterances of 5 x 500 cells (docs/speed.md)."""

    def __init__(self, inputs: int, hidden: int, layers: int, outputs: int):
        super().__init__()
        self.lstm = nn.LSTM(inputs, hidden, num_layers=layers, bidirectional=True, batch_first=True)
        self.out = nn.Linear(2 * hidden, outputs)

    def _direction(self, x: torch.Tensor, layer: int, suffix: str) -> torch.Tensor:
        weights = [getattr(self.lstm, f"{name}_l{layer}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        zeros = x.new_zeros(1, x.shape[0], self.lstm.hidden_size)
        return torch.lstm(x, (zeros, zeros), weights, True, 1, 0.0, self.training, False, True)[0]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """[B, T, D] padded frames -> [B, T, outputs] unnormalised scores (past each length: those of
        a zero hidden state, as from a PackedSequence)."""
        lengths = torch.as_tensor(lengths, device=x.device)
        h = x
        for layer in range(self.lstm.num_layers):
            ahead = self._direction(h, layer, "")
            back = reverse_within(self._direction(reverse_within(h, lengths), layer, "_reverse"), lengths)
            h = torch.cat([ahead, back], dim=2)
        return self.out(h * valid_mask(lengths, x.shape[1]).unsqueeze(2).to(h.dtype))


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
