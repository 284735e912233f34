"""Mini-batch order and momentum schedule shared by the RBM, DBN and DBM trainers."""
from __future__ import annotations

from typing import Any, Mapping

import torch


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator, device) -> torch.Tensor:
    """A fresh permutation cut into [n // batch_size, batch_size] indices (the remainder is dropped)."""
    if n < batch_size:
        raise ValueError(f"batch_size {batch_size} is larger than the {n} training cases")
    nb = n // batch_size
    return torch.randperm(n, generator=generator, device=device)[: nb * batch_size].view(nb, batch_size)


def momentum_at(cfg: Mapping[str, Any], epoch: int) -> float:
    """``momentum_initial`` for the first ``momentum_switch_epoch`` epochs, then ``momentum_final``."""
    return cfg["momentum_initial"] if epoch < cfg["momentum_switch_epoch"] else cfg["momentum_final"]
