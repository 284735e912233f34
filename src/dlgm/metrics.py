"""The one writer (and reader) of metrics.json files; the format is in DESIGN.md."""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from dlgm.atomic import write_json
from dlgm.runinfo import config_hash, device_name, versions

PAPERS = ("dbn", "dbm", "rnn_hmm", "nn_crf")
REQUIRED = ("paper", "variant", "seed", "split", "metrics", "wall_seconds", "device", "config", "versions")


class MetricsError(ValueError):
    pass


def write_metrics(
    path: str | os.PathLike,
    *,
    paper: str,
    variant: str,
    seed: int,
    split: str,
    metrics: Mapping[str, Any],
    wall_seconds: float,
    device: torch.device | str,
    config: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> dict:
    if paper not in PAPERS:
        raise MetricsError(f"{path}: paper must be one of {PAPERS}, got {paper!r}")
    values = {k: _number(path, k, v) for k, v in metrics.items()}
    record = {
        "paper": paper,
        "variant": variant,
        "seed": int(seed),
        "split": split,
        "metrics": values,
        "wall_seconds": round(float(wall_seconds), 3),
        # when the run ended (reference/README.md dates each reference run by it)
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": device_name(device) if isinstance(device, torch.device) else str(device),
        "config": dict(config),
        "config_hash": config_hash(config),
        "versions": versions(),
    }
    if extra:
        record["extra"] = dict(extra)
    write_json(path, record)
    return record


def read_metrics(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise MetricsError(f"{path}: not valid JSON ({err})") from err
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise MetricsError(f"{path}: missing keys {missing}")
    return record


def _number(path, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    value = float(value)
    if value != value:
        raise MetricsError(f"{path}: metric {key!r} is NaN")
    return value
