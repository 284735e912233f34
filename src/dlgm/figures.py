"""Save a matplotlib figure with the caption the report shows beside it."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from dlgm.atomic import atomic_path, write_text  # noqa: E402


def save_figure(fig: "plt.Figure", path: str | os.PathLike, caption: str) -> Path:
    """Write ``path`` (PNG) and ``path`` with suffix ``.txt`` holding the caption; close the figure."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    write_text(path.with_suffix(".txt"), caption.strip() + "\n")
    return path
