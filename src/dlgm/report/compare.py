"""Join replicated metrics with the published numbers (config/papers.yaml)."""
from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import yaml

from dlgm.metrics import PAPERS, read_metrics

ROW_KEYS = {"variant", "metric", "paper_value", "tolerance", "display", "label", "source"}
DISPLAYS = {"percent", "nats", "number"}
TABLE_KEYS = {"title", "variants", "metrics"}  # a side-by-side table (report.tables)


class PapersError(ValueError):
    pass


@dataclass
class Replicated:
    values: list[float]
    seeds: list[int]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def sd(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None


@dataclass
class Row:
    paper: str
    variant: str
    metric: str
    label: str
    source: str
    display: str
    paper_value: float | None
    tolerance: float | None
    replicated: Replicated | None = None
    ais_verdict: str | None = None  # "not converged" / "failed" when the metric rests on such an AIS log Z
    ablations: list[str] = field(default_factory=list)  # the ablations that measure this row (report.ablations)

    @property
    def difference(self) -> float | None:
        if self.replicated is None or self.paper_value is None or self.ais_verdict is not None:
            return None
        return self.replicated.mean - self.paper_value

    @property
    def verdict(self) -> str:
        if self.ais_verdict is not None and self.replicated is not None:
            return f"AIS {self.ais_verdict}"  # no verdict against the paper
        if self.paper_value is None:
            return "no paper value"
        if self.replicated is None:
            return "not run"
        return "within tolerance" if abs(self.difference) <= self.tolerance + 1e-12 else "outside tolerance"


@dataclass
class PaperSection:
    key: str
    title: str
    papers: list[str]
    rows: list[Row]
    deviations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    other: list[Row] = field(default_factory=list)  # measured metrics with no published counterpart
    runs: list[dict] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (relative path, caption)
    reference: dict = field(default_factory=dict)  # (variant, metric) -> report.reference.ReferenceValue
    ablations: list = field(default_factory=list)  # report.ablations.Ablation, in the config's order
    tables: list = field(default_factory=list)  # report.tables.SideBySide (papers.yaml ``tables``)


def load_papers(path: str | Path) -> dict:
    path = Path(path)
    try:
        papers = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise PapersError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(papers, dict):
        raise PapersError(f"{path}: expected a mapping of paper -> section")
    for key, section in papers.items():
        if key not in PAPERS:
            raise PapersError(f"{path}: unknown paper {key!r} (expected one of {PAPERS})")
        for i, row in enumerate(section.get("rows", [])):
            missing = {"variant", "metric", "label", "source"} - row.keys()
            unknown = row.keys() - ROW_KEYS
            if missing or unknown:
                raise PapersError(f"{path}: {key}.rows[{i}]: missing {sorted(missing)}, unknown {sorted(unknown)}")
            if row.get("display", "number") not in DISPLAYS:
                raise PapersError(f"{path}: {key}.rows[{i}].display must be one of {sorted(DISPLAYS)}")
            value, tolerance = row.get("paper_value"), row.get("tolerance")
            if (value is None) != (tolerance is None):
                raise PapersError(f"{path}: {key}.rows[{i}]: paper_value and tolerance must both be numbers "
                                  f"or both null (got {value!r}, {tolerance!r})")
            if value is not None and not (_is_number(value) and _is_number(tolerance) and tolerance >= 0):
                raise PapersError(f"{path}: {key}.rows[{i}]: paper_value and tolerance must be numbers, "
                                  f"tolerance >= 0 (got {value!r}, {tolerance!r})")
    _check_tables(papers, path)
    return papers


def _check_tables(papers: Mapping, path: Path) -> None:
    for key, section in papers.items():
        for i, table in enumerate(section.get("tables", [])):
            if not isinstance(table, Mapping) or set(table) != TABLE_KEYS:
                raise PapersError(f"{path}: {key}.tables[{i}]: expected exactly the keys {sorted(TABLE_KEYS)}")
            if not all(isinstance(table[k], list) and table[k] and all(isinstance(v, str) for v in table[k])
                       for k in ("variants", "metrics")):
                raise PapersError(f"{path}: {key}.tables[{i}]: variants and metrics must be non-empty lists of names")


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def gather_runs(paths: Iterable[str | Path]) -> list[dict]:
    runs = []
    for path in paths:
        record = read_metrics(path)
        record["path"] = str(path)
        runs.append(record)
    return runs


# metrics computed with an AIS log Z (RAISE's test_logprob_raise is not)
AIS_METRICS = {"log_z", "log_z_low", "log_z_high", "test_logprob", "train_logprob", "test_logprob_estimate",
               "test_logprob_bound_subset", "test_logprob_bound_balanced", "test_logprob_raise_gap",
               "log_z_reverse", "test_logprob_at_log_z_reverse"}


def _ais_verdicts(runs: list[dict]) -> dict[tuple[str, str], str]:
    """(paper, variant) -> "failed" / "not converged" when any seed's AIS was not converged."""
    out: dict[tuple[str, str], str] = {}
    for run in runs:
        verdict = run.get("extra", {}).get("ais_verdict")
        if verdict is None and run["metrics"].get("ais_converged") == 0.0:
            verdict = "not converged"
        if verdict in ("not converged", "failed"):
            key = (run["paper"], run["variant"])
            out[key] = "failed" if "failed" in (verdict, out.get(key)) else verdict
    return out


def metric_values(runs: list[dict]) -> dict[tuple[str, str, str], list[tuple[int, float]]]:
    """(paper, variant, metric) -> [(seed, value)] of every finite value the runs recorded."""
    by_key: dict[tuple[str, str, str], list[tuple[int, float]]] = defaultdict(list)
    for run in runs:
        for metric, value in run["metrics"].items():
            if value is not None and math.isfinite(value):
                by_key[(run["paper"], run["variant"], metric)].append((run["seed"], value))
    return dict(by_key)


def build_sections(papers: Mapping, runs: list[dict], notes: Mapping[str, list[str]] | None = None) -> list[PaperSection]:
    ais = _ais_verdicts(runs)
    flag = lambda p, v, m: ais.get((p, v)) if m in AIS_METRICS else None  # noqa: E731
    by_key = metric_values(runs)

    sections = []
    for key in PAPERS:
        spec = papers.get(key, {})
        rows, claimed = [], set()
        for row in spec.get("rows", []):
            found = by_key.get((key, row["variant"], row["metric"]))
            claimed.add((key, row["variant"], row["metric"]))
            rows.append(
                Row(
                    paper=key, variant=row["variant"], metric=row["metric"], label=row["label"],
                    source=row["source"], display=row.get("display", "number"),
                    paper_value=row.get("paper_value"), tolerance=row.get("tolerance"),
                    replicated=_replicated(found), ais_verdict=flag(key, row["variant"], row["metric"]),
                )
            )
        other = [
            Row(paper=key, variant=v, metric=m, label=f"{v}: {m}", source="", display=_guess_display(m),
                paper_value=None, tolerance=None, replicated=_replicated(vals), ais_verdict=flag(p, v, m))
            for (p, v, m), vals in sorted(by_key.items())
            if p == key and (p, v, m) not in claimed
        ]
        sections.append(
            PaperSection(
                key=key, title=spec.get("title", key), papers=list(spec.get("papers", [])), rows=rows,
                deviations=list(spec.get("deviations", [])), notes=list((notes or {}).get(key, [])),
                other=other, runs=sorted((r for r in runs if r["paper"] == key), key=lambda r: (r["variant"], r["seed"])),
            )
        )
    return sections


def _replicated(found) -> Replicated | None:
    if not found:
        return None
    found = sorted(found)
    return Replicated(values=[v for _, v in found], seeds=[s for s, _ in found])


def _guess_display(metric: str) -> str:
    if any(word in metric for word in ("error", "accuracy", "f1", "per", "der")):
        return "percent"
    if "log" in metric:
        return "nats"
    return "number"


def format_value(value: float | None, display: str, signed: bool = False) -> str:
    if value is None:
        return "—"
    sign = "+" if signed else ""
    if display == "percent":
        return f"{value * 100:{sign}.2f}%"
    if display == "nats":
        return f"{value:{sign}.2f}"
    return f"{value:{sign}.4g}"
