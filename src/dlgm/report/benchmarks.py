"""The speed table of `python -m benchmarks` (reports/tables/benchmarks.csv), for the report."""
from __future__ import annotations

import csv
from pathlib import Path


def load_benchmarks(path: str | Path) -> list[dict]:
    """Rows of the benchmark CSV with display strings; [] when it has not been written."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for key in ("dlgm_s", "reference_s"):
            r[key + "_text"] = _seconds(float(r[key]))
        r["ratio_text"] = f"{float(r['ratio']):.2f}"
        r["target_text"] = f"≤ {float(r['target']):g}" if r.get("target") else "—"
    return rows


def _seconds(s: float) -> str:
    return f"{s:.3f} s" if s >= 1 else f"{s * 1e3:.3f} ms" if s >= 1e-3 else f"{s * 1e6:.1f} µs"
