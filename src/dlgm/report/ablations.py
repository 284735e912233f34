"""The ablation table of each paper: every ablation's metrics beside its base run's, from the runs."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from dlgm.ablations import changes_text, lineage
from dlgm.report.compare import PaperSection, Replicated, _guess_display, _replicated, metric_values


@dataclass
class AblationValue:
    metric: str
    display: str
    base: Replicated | None
    ablation: Replicated | None
    base_ran: bool = True  # a side with runs may still lack the metric (e.g. start_* of a flat start)
    ablation_ran: bool = True

    def absent(self, side: str) -> str:
        """What the table shows for a side without a value."""
        return "not recorded" if getattr(self, f"{side}_ran") else "not run"

    @property
    def difference(self) -> float | None:
        if self.base is None or self.ablation is None:
            return None
        return self.ablation.mean - self.base.mean

    @property
    def standard_error(self) -> float | None:
        """Of the difference, from each side's spread over seeds (a one-seed side borrows the other
        side's sd); None when neither side has two seeds."""
        sides = [r for r in (self.base, self.ablation) if r is not None]
        sds = [r.sd for r in sides if r.sd is not None]
        if len(sides) < 2 or not sds:
            return None
        return math.sqrt(sum((r.sd if r.sd is not None else max(sds)) ** 2 / len(r.values) for r in sides))

    @property
    def effect(self) -> str:
        """Whether the difference stands out from the seeds' spread (two standard errors or more)."""
        if self.difference is None:
            return ""
        se = self.standard_error
        if se is None:
            return "one seed each: no spread to judge it by"
        if se == 0:
            return "beyond the seeds' spread (none)" if self.difference else "no difference"
        z = abs(self.difference) / se
        return f"{'beyond' if z >= 2 else 'within'} the seeds' spread ({z:.1f} s.e.)"


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
    chain of bases starts from. Each row names the ablations that measure it (chain from its variant)."""
    values = metric_values(runs)
    ran = {(run["paper"], run["variant"]) for run in runs}
    for section in sections:
        by_name = {a["name"]: a for a in ablations.get(section.key, [])}
        section.other = [r for r in section.other if r.variant not in by_name]
        displays = {r.metric: r.display for r in section.rows}
        seeds_of = lambda variant, metric: _replicated(values.get((section.key, variant, metric)))  # noqa: E731
        for entry in by_name.values():
            root, _ = lineage(section.key, by_name, entry["name"])
            metrics = entry.get("metrics") or sorted({r.metric for r in section.rows if r.variant == root})
            for row in section.rows:
                if row.variant == root and row.metric in metrics:
                    row.ablations.append(entry["name"])
            section.ablations.append(Ablation(
                name=entry["name"], base=entry["base"], changes=changes_text(entry["set"]), why=entry.get("why", ""),
                values=[AblationValue(m, displays.get(m, _guess_display(m)), seeds_of(entry["base"], m),
                                      seeds_of(entry["name"], m), (section.key, entry["base"]) in ran,
                                      (section.key, entry["name"]) in ran) for m in metrics],
            ))
