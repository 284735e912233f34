"""Where reference/ (and data/runs/, which it mirrors) keeps each kind of file. Standard library
only: the Snakefile loads this module by path to find the reference runs, as dlgm.reference does to
export them."""
from __future__ import annotations

from pathlib import Path

RUN_GLOB = "*/*/seed*/metrics.json"
SUMMARY_GLOB = "*/*/folds/metrics.json"  # a summary over the runs of several folds, not a run itself
RULE_TIMES = "benchmark*.tsv"  # each rule's Snakemake benchmark
EPOCH_TIMES = "*curve*.csv"  # each training stage's epochs, with their seconds


def metrics_files(root: str | Path) -> list[Path]:
    """Every run's and fold summary's metrics.json under ``root`` (<paper>/<variant>/...), sorted."""
    root = Path(root)
    return sorted([*root.glob(RUN_GLOB), *root.glob(SUMMARY_GLOB)])


def time_files(root: str | Path) -> list[Path]:
    """Every run's rule benchmarks and epoch curves under ``root``, sorted."""
    root = Path(root)
    return sorted(p for pattern in (RULE_TIMES, EPOCH_TIMES) for p in root.glob(f"*/*/seed*/{pattern}"))
