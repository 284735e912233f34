"""Side-by-side tables of a paper section (papers.yaml ``tables``): one row per variant, one column
per metric (mean ± sd over seeds), and the run's wall time, all from the runs."""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Mapping

from dlgm.report.compare import PaperSection, Replicated, _guess_display, _replicated, metric_values


@dataclass
class SideBySide:
    title: str
    metrics: list[str]
    displays: list[str]
    rows: list[tuple[str, list[Replicated | None], float | None]]  # variant, one cell per metric, mean wall seconds


def attach_tables(sections: list[PaperSection], papers: Mapping, runs: list[dict]) -> None:
    values = metric_values(runs)
    walls: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        walls.setdefault((run["paper"], run["variant"]), []).append(run["wall_seconds"])
    for section in sections:
        displays = {r.metric: r.display for r in section.rows}
        for table in papers.get(section.key, {}).get("tables", []):
            rows = [(variant, [_replicated(values.get((section.key, variant, m))) for m in table["metrics"]],
                     statistics.fmean(walls[(section.key, variant)]) if (section.key, variant) in walls else None)
                    for variant in table["variants"]]
            section.tables.append(SideBySide(table["title"], list(table["metrics"]),
                                             [displays.get(m, _guess_display(m)) for m in table["metrics"]], rows))
