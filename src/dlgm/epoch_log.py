"""The log line a resumed run writes again for each epoch it trained before the resume, and its
reader. Snakemake's benchmark of a resumed rule times its last invocation only; these lines hold the
seconds of the epochs before it (``dlgm.projection`` adds them). Standard library only."""
from __future__ import annotations

import re
from pathlib import Path

_BEFORE = "before the resume"
_SECONDS = re.compile(r"\((\d+(?:\.\d*)?)s, " + _BEFORE + r"\)\s*$")


def resumed_epoch_line(progress: str, seconds: float) -> str:
    """``progress`` (the epoch's usual line) marked as an epoch trained before the resume."""
    return f"{progress} ({seconds:.2f}s, {_BEFORE})"


def resumed_epoch_seconds(log: str | Path) -> list[float]:
    """The seconds of each epoch a log says was trained before a resume (empty for a run that was
    not resumed or a log that does not exist)."""
    path = Path(log)
    if not path.exists():
        return []
    return [float(m.group(1)) for line in path.read_text(errors="replace").splitlines()
            if (m := _SECONDS.search(line))]
