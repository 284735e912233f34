"""The ablation table of each paper: every ablation's metrics beside its base run's, from the runs."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from dlgm.ablations import changes_text
from dlgm.report.compare import PaperSection, Replicated, _guess_display, _replicated


@dataclass
class AblationValue:
    metric: str
    display: str
    base: Replicated | None
    ablation: Replicated | None

    @property
    def difference(self) -> float | None:
        if self.base is None or self.ablation is None:
            return None
        return self.ablation.mean - self.base.mean


@dataclass
class Ablation:
    name: str
    base: str
    changes: list[str]
    why: str
    values: list[AblationValue]


def attach_ablations(sections: list[PaperSection], runs: list[dict], ablations: Mapping[str, list[Mapping]]) -> None:
    """Fill ``section.ablations`` from the config's ``ablations`` and the runs; an ablation's own runs
    leave the section's "other measured numbers". An ablation is compared with its base's runs (a real
    variant or another ablation); its default metrics are the papers.yaml rows of the real variant its
    chain of bases starts from."""
    values: dict[tuple[str, str], dict[str, list[tuple[int, float]]]] = {}
    for run in runs:
        found = values.setdefault((run["paper"], run["variant"]), {})
        for metric, value in run["metrics"].items():
            if value is not None and math.isfinite(value):
                found.setdefault(metric, []).append((run["seed"], value))
    for section in sections:
        entries = list(ablations.get(section.key, []))
        names = {a["name"] for a in entries}
        section.other = [r for r in section.other if r.variant not in names]
        displays = {r.metric: r.display for r in section.rows}
        by_name = {a["name"]: a for a in entries}
        for entry in entries:
            root = _root(entry, by_name)
            metrics = entry.get("metrics") or sorted({r.metric for r in section.rows if r.variant == root})
            base, ablated = values.get((section.key, entry["base"]), {}), values.get((section.key, entry["name"]), {})
            section.ablations.append(Ablation(
                name=entry["name"], base=entry["base"], changes=changes_text(entry["set"]), why=entry.get("why", ""),
                values=[AblationValue(m, displays.get(m, _guess_display(m)), _replicated(base.get(m)),
                                      _replicated(ablated.get(m))) for m in metrics],
            ))


def _root(entry: Mapping, by_name: Mapping[str, Mapping]) -> str:
    """The real variant an ablation's chain of bases starts from (the workflow refuses cycles)."""
    seen, base = {entry["name"]}, entry["base"]
    while base in by_name and base not in seen:
        seen.add(base)
        base = by_name[base]["base"]
    return base
