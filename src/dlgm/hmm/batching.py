"""Length-sorted mini-batches of variable-length utterances, padded on the device."""
from __future__ import annotations

import torch


def length_batches(lengths: list[int], batch_size: int, generator: torch.Generator | None = None) -> list[list[int]]:
    """Indices grouped into batches of similar length; batch order shuffled when a generator is given."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if generator is not None:
        perm = torch.randperm(len(batches), generator=generator).tolist()
        batches = [batches[i] for i in perm]
    return batches


def pad(seqs: list[torch.Tensor], value: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """List of [T_i, ...] tensors (all on one device) -> [B, T_max, ...] and lengths [B] on that device."""
    lengths = torch.tensor([len(s) for s in seqs], device=seqs[0].device)
    return torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=value), lengths


def valid_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    return torch.arange(frames, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)
