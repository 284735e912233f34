"""MNIST tensors on the device and the mini-batch orders the DBN papers use."""
from __future__ import annotations

import os
from pathlib import Path

import torch


def load_mnist(path: str | os.PathLike, device: torch.device, limit: int | None = None):
    """(images float32 [N, 784] in [0, 1], labels int64 [N]) on ``device``; ``limit`` keeps the first N."""
    path = Path(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        images, labels = blob["images"], blob["labels"]
    except (OSError, RuntimeError, KeyError) as err:
        raise ValueError(f"{path}: not a processed MNIST split with 'images' and 'labels' ({err})") from err
    if images.dim() != 2 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"{path}: images {tuple(images.shape)} and labels {tuple(labels.shape)} do not match")
    if limit is not None:
        if limit > images.shape[0]:
            raise ValueError(f"{path}: asked for {limit} images, the split has {images.shape[0]}")
        images, labels = images[:limit], labels[:limit]
    return images.to(device=device, dtype=torch.float32) / 255.0, labels.to(device)


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator, device) -> torch.Tensor:
    """[n // batch_size, batch_size] indices of a random order (the last partial batch is dropped)."""
    order = torch.randperm(n, generator=generator, device=device)
    n_batches = n // batch_size
    return order[: n_batches * batch_size].view(n_batches, batch_size)


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
