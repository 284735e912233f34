"""When is a scaled (probability-space) forward recursion exact? Shared by the CRF and the HMMs.

A scaled forward step multiplies a forward variable renormalised to sum 1, a transition factor
exp(score - max) and an emission factor exp(score - max), sums at most ``states`` such products
and renormalises. Every product stays a normal float, so nothing underflows and a zero means a
structurally impossible path, as long as the three distances below 1 (in nats) add up to less
than ``underflow_budget``; callers check that per step and redo the rest in log space.
"""
from __future__ import annotations

import math

import torch


def underflow_budget(dtype: torch.dtype, states: int) -> float:
    """Nats the products of one step may fall below 1: the dtype's smallest normal number, less
    the renormalisation of a sum of ``states`` terms, less 8 nats of margin for rounding."""
    return -math.log(torch.finfo(dtype).tiny) - math.log(states) - 8.0


def finite_spread(x: torch.Tensor, dims) -> torch.Tensor:
    """max - min over the finite entries along ``dims`` (0 where none is finite)."""
    finite = torch.isfinite(x)
    hi = x.masked_fill(~finite, float("-inf")).amax(dim=dims)
    lo = x.masked_fill(~finite, float("inf")).amin(dim=dims)
    return torch.where(finite.any(dim=dims), hi - lo, 0.0)
