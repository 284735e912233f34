"""The report's "reference run" column: the committed runs in reference/ beside this checkout's runs."""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from dlgm.reference import run_time
from dlgm.report.compare import PaperSection, Replicated


@dataclass
class ReferenceValue:
    replicated: Replicated  # mean over the reference seeds
    devices: list[str]
    wall_seconds: float  # per seed, mean: dlgm.reference.run_time, else metrics.json's


def run_seconds(run: dict) -> float:
    seconds = run_time(Path(run["path"]).parent)
    return seconds if seconds is not None else run["wall_seconds"]


def attach_reference(sections: list[PaperSection], runs: list[dict]) -> None:
    """Fill each section's ``reference`` ((variant, metric) -> ReferenceValue) for the rows that
    reference/ also has (same paper, variant and metric)."""
    found: dict[tuple[str, str, str], list[tuple[int, float, dict]]] = defaultdict(list)
    for run in runs:
        for metric, value in run["metrics"].items():
            if value is not None and math.isfinite(value):
                found[(run["paper"], run["variant"], metric)].append((run["seed"], value, run))
    for section in sections:
        for row in section.rows + section.other:
            entries = sorted(found.get((section.key, row.variant, row.metric), []), key=lambda e: e[0])
            if entries:
                section.reference[(row.variant, row.metric)] = ReferenceValue(
                    replicated=Replicated(values=[v for _, v, _ in entries], seeds=[s for s, _, _ in entries]),
                    devices=sorted({run["device"] for _, _, run in entries}),
                    wall_seconds=sum(run_seconds(run) for _, _, run in entries) / len(entries),
                )


def reference_columns(section: PaperSection, row) -> dict:
    """The summary CSV's reference columns of one row (empty where reference/ lacks it)."""
    ref = section.reference.get((row.variant, row.metric))
    rep = ref.replicated if ref else None
    return {
        "reference_mean": rep.mean if rep else None, "reference_sd": rep.sd if rep else None,
        "reference_n_seeds": len(rep.values) if rep else 0,
        "reference_device": "; ".join(ref.devices) if ref else None,
        "reference_wall_seconds": round(ref.wall_seconds, 1) if ref else None,
    }
