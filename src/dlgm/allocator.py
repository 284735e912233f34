"""Keep freed heap memory inside the process, so that large temporary tensors cost no page faults.

torch allocates CPU tensors with malloc. glibc hands freed memory back to the kernel: blocks above
its mmap threshold (128 KB, then the size of the largest block freed so far) are unmapped at once,
and the top of the heap is trimmed once more than twice that is free. A loop that makes and drops
a few 1 MB temporaries per step (the CRF's forward-backward over a 64 x 40 x 45 batch, a Viterbi
table, a 100 x 784 mini-batch) then touches fresh pages every step: each 4 KB page is a fault,
some 250 per megabyte. Fixed thresholds keep the pages: docs/speed.md has the measurements.
"""
from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1  # glibc's malloc.h
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # the largest glibc accepts on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 256 << 20


def keep_freed_memory() -> bool:
    """Blocks under 32 MB come from the heap and up to 256 MB of free heap stays mapped. Returns
    whether the settings took (glibc on Linux; anything else is left alone). Larger tensors (the
    datasets) are still mapped and unmapped on their own."""
    if not sys.platform.startswith("linux"):
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # the C library this process runs on
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
