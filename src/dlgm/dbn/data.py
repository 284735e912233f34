"""Class-balanced mini-batches (HOT06); the plain shuffled order is dlgm.boltzmann.batches."""
from __future__ import annotations

import torch


def balanced_batches(labels: torch.Tensor, batch_size: int, generator: torch.Generator, n_classes: int = 10):
    """Mini-batches holding ``batch_size / n_classes`` examples of each class (HOT06, Section 6).

    Each class's examples are visited in a random order; classes smaller than the epoch needs are
    wrapped around, so every batch is exactly balanced. n_batches = len(labels) // batch_size.
    """
    if batch_size % n_classes:
        raise ValueError(f"balanced batches need batch_size divisible by {n_classes}, got {batch_size}")
    per_class = batch_size // n_classes
    n_batches = labels.shape[0] // batch_size
    columns = []
    for c in range(n_classes):
        members = (labels == c).nonzero().squeeze(1)
        if members.numel() == 0:
            raise ValueError(f"class {c} has no examples; cannot build balanced batches")
        need = n_batches * per_class
        perm = members[torch.randperm(members.numel(), generator=generator, device=labels.device)]
        perm = perm.repeat((need + perm.numel() - 1) // perm.numel())[:need]
        columns.append(perm.view(n_batches, per_class))
    batches = torch.cat(columns, 1)
    # shuffle inside each batch so that no code can depend on the class order within it
    inner = torch.rand(batches.shape, generator=generator, device=labels.device).argsort(1)
    return batches.gather(1, inner)
