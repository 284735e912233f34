"""One way to print a duration (progress lines, projections, the reference table); no torch import."""
from __future__ import annotations


def duration(seconds: float | None) -> str:
    """``42 s``, ``3.5 min`` or ``2.25 h``; ``—`` when unknown."""
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"
