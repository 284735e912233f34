"""Error rates with the editdistance library: phone error rate, digit (word) error rate, frame accuracy."""
from __future__ import annotations

from typing import Mapping, Sequence

import statistics

import editdistance
import torch


def error_rate(refs: Sequence[Sequence], hyps: Sequence[Sequence]) -> float:
    """Total Levenshtein distance / total reference length (substitutions+deletions+insertions)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    total = sum(len(r) for r in refs)
    if total == 0:
        raise ValueError("references are empty")
    return sum(editdistance.eval(list(r), list(h)) for r, h in zip(refs, hyps)) / total


def fold(seq: Sequence[str], mapping: Mapping[str, str | None] | None, drop: Sequence[str] = ()) -> list[str]:
    """Map labels (e.g. TIMIT 61 -> 39 phones); labels mapped to None/"" and those in ``drop`` vanish."""
    out: list[str] = []
    for label in seq:
        label = mapping.get(label, label) if mapping else label
        if not label or label in drop:
            continue
        out.append(label)
    return out


def frame_accuracy(refs: Sequence[torch.Tensor], hyps: Sequence[torch.Tensor]) -> float:
    correct = sum(int((r == h).sum()) for r, h in zip(refs, hyps))
    return correct / sum(len(r) for r in refs)


def confusion(refs: Sequence[torch.Tensor], hyps: Sequence[torch.Tensor], classes: int) -> torch.Tensor:
    """[classes, classes] frame counts, rows = reference."""
    r = torch.cat([x.long() for x in refs])
    h = torch.cat([x.long() for x in hyps])
    return torch.bincount(r * classes + h, minlength=classes * classes).view(classes, classes)


def fold_summary(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Mean and spread over cross-validation folds: for each metric every run has, ``<m>`` (mean)
    and ``<m>_fold_sd`` (sample standard deviation, 0 for one run); ``folds``: the number of runs."""
    if not runs:
        raise ValueError("fold_summary: no runs given")
    keys = [k for k in runs[0] if all(r.get(k) is not None for r in runs)]
    out: dict[str, float] = {"folds": len(runs)}
    for key in keys:
        values = [float(r[key]) for r in runs]
        out[key] = statistics.fmean(values)
        out[f"{key}_fold_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out
