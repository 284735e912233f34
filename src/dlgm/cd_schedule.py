"""The CD schedule of the authors' rbm_l2.m (steps and rate per epoch), free of torch so that the
time projection at Snakemake's start can use it."""
from __future__ import annotations

from typing import Sequence


def cd_ramp(cd_k: int, lr: float, every: int, epoch: int) -> tuple[int, float]:
    """(k, rate) of 0-based ``epoch``. ``every`` = 0: ``cd_k`` and ``lr`` throughout. ``every`` = N: the
    schedule of the authors' rbm_l2.m, m = ceil((epoch + 1) / N) steps of ``cd_k`` at ``lr / m`` (with
    N = 20 over 200 epochs: CD-1 at 0.05 up to CD-10 at 0.005)."""
    if every < 0:
        raise ValueError(f"pretrain.cd_ramp_every must be >= 0, got {every}")
    if every == 0:
        return cd_k, lr
    m = epoch // every + 1
    return cd_k * m, lr / m


def layer_ramps(ramps: Sequence[int], n_layers: int) -> list[int]:
    """One ``cd_ramp_every`` per greedy RBM; the last given value serves the RBMs above it."""
    if not ramps:
        raise ValueError("pretrain.cd_ramp_every needs at least one entry")
    return [int(ramps[min(l, len(ramps) - 1)]) for l in range(n_layers)]
