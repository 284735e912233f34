"""The report's "reference run" column: the committed runs in reference/ beside this checkout's runs."""
from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from dlgm.reference import run_time
from dlgm.report.compare import PaperSection, Replicated


@dataclass
class ReferenceValue:
    replicated: Replicated  # mean over the reference seeds
    devices: list[str]
    wall_seconds: float  # per seed, mean: dlgm.reference.run_time, else metrics.json's
    changes: list[str] = field(default_factory=list)  # settings the config has changed since (protocol_changes)


def _flatten(value, prefix: str = "") -> dict:
    if not isinstance(value, Mapping):
        return {prefix: value}
    return {k: v for key, item in value.items() for k, v in _flatten(item, f"{prefix}.{key}" if prefix else key).items()}


# Settings added after some reference runs, by their last dotted name, with the value that does what
# the code did before the setting existed: a run that predates one is read as having held that value.
BEFORE_IT_EXISTED = {"cd_ramp_every": [0], "logprob_per_class": False, "labels": False, "scale_biases": False,
                     "reverse_sweeps": 0}


def protocol_changes(recorded: Mapping, current: Mapping | None) -> list[str]:
    """The settings of ``current`` (the parameters the config now gives the rule that wrote a run's
    metrics.json; None: the config has no such run) that the run's recorded ``config`` lacks or
    holds with another value, as "key: then -> now". Keys only the run records (its seed, say) are
    not settings of the protocol and are left out; a key of BEFORE_IT_EXISTED that the run lacks
    counts as holding that key's old behaviour."""
    if current is None:
        return ["it no longer has this run"]
    then, now = _flatten(recorded), _flatten(current)
    for key in now.keys() - then.keys():
        if (name := key.rsplit(".", 1)[-1]) in BEFORE_IT_EXISTED:
            then[key] = BEFORE_IT_EXISTED[name]
    show = lambda key, flat: json.dumps(flat[key]) if key in flat else "not set"  # noqa: E731
    return [f"{key}: {show(key, then)} → {show(key, now)}" for key in sorted(now)
            if key not in then or then[key] != now[key]]


def run_changes(run: dict, protocols: Mapping[str, Mapping | None]) -> list[str]:
    """protocol_changes of one run; [] when ``protocols`` ("paper/variant" -> parameters) does not
    cover its paper (rnn_hmm's runs merge several rules' parameters)."""
    key = f"{run['paper']}/{run['variant']}"
    return protocol_changes(run["config"], protocols[key]) if key in protocols else []


def note_protocol_changes(sections: list[PaperSection], runs: list[dict],
                          protocols: Mapping[str, Mapping | None]) -> None:
    """A note in each paper's section for every reference run whose protocol the config has changed since."""
    changed: dict[tuple[str, str, tuple[str, ...]], list[int]] = defaultdict(list)
    for run in sorted(runs, key=lambda r: r["seed"]):
        if changes := run_changes(run, protocols):
            changed[(run["paper"], run["variant"], tuple(changes))].append(run["seed"])
    for section in sections:
        for (paper, variant, changes), seeds in sorted(changed.items()):
            if paper == section.key:
                section.notes.append(f"Since the reference run {variant} (seed {', '.join(map(str, seeds))}) "
                                     f"the config has changed: {'; '.join(changes)}.")


def run_seconds(run: dict) -> float:
    seconds = run_time(Path(run["path"]).parent)
    return seconds if seconds is not None else run["wall_seconds"]


def attach_reference(sections: list[PaperSection], runs: list[dict],
                     protocols: Mapping[str, Mapping | None] | None = None) -> None:
    """Fill each section's ``reference`` ((variant, metric) -> ReferenceValue) for the rows that
    reference/ also has (same paper, variant and metric); ``protocols``: see run_changes."""
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
                    changes=sorted({c for _, _, run in entries for c in run_changes(run, protocols or {})}),
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
        "reference_protocol_changes": "; ".join(ref.changes) if ref else None,
    }
