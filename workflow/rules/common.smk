# Helpers shared by every rule file. Rule files register what the report needs with
# register_report(); report.smk (included last) turns that into the report's inputs.
import importlib.util
import json
import re
import shlex
from pathlib import Path

RAW = "data/raw"
PROCESSED = "data/processed"
RUNS = "data/runs"
FIGURES = "reports/figures"

REPORT_METRICS = []  # metrics.json files the report joins with config/papers.yaml
REPORT_FIGURES = []  # PNG files (each with a .txt caption beside it)
REPORT_NOTES = {}  # paper -> list of sentences shown in its section (e.g. "TIMIT not supplied")


def params(value):
    """JSON for a command's --params, quoted for the shell; a change reruns the rule."""
    return shlex.quote(json.dumps(value, sort_keys=True))


def _load_module(name, path):
    """A standard-library-only module of this checkout, loaded by path (the Snakefile never imports dlgm)."""
    spec = importlib.util.spec_from_file_location(name, path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


_provenance = _load_module("dlgm_provenance", "src/dlgm/provenance.py")
_ablations = _load_module("dlgm_ablations", "src/dlgm/ablations.py")


def code(*entries, data=()):
    """A rule's code inputs, so that a code change reruns it: the source files of what its command
    runs, derived from the imports (``"dlgm.commands.dbm:cmd_train"``; see src/dlgm/provenance.py),
    plus package data files it reads (``data``: paths under src/dlgm). EpochLoop keys checkpoints
    on the same file set."""
    return _provenance.code_files(*entries) + [f"src/dlgm/{name}" for name in data]


def train_threads(wildcards, threads):
    """--threads of a training command: config ``threads`` when set, else the rule's threads."""
    return config["threads"] or threads


def train_resources(runtime, mem_mb=8000):
    """The resources of every training rule (the SLURM profile sends ``gpu`` rules to a GPU node)."""
    return {"gpu": 1, "mem_mb": mem_mb, "runtime": runtime}


def train_log(folder, stage):
    """Log and benchmark files of one training stage: ``<folder>/log_<stage>.txt``, ``benchmark_<stage>.tsv``."""
    return {"log": f"{folder}/log_{stage}.txt", "benchmark": f"{folder}/benchmark_{stage}.tsv"}


def run_dir(paper, variant):
    """Folder of one run; ``{seed}`` stays a wildcard."""
    return f"{RUNS}/{paper}/{variant}/seed{{seed}}"


def seeds_of(section):
    return config[section]["seeds"]


def ablations_of(paper):
    """The config's ablations of one paper: name -> entry."""
    return {entry["name"]: entry for entry in config["ablations"].get(paper, [])}


def ablated_params(base, entry, paper):
    """A base run's parameters with an ablation's changes (an unknown or mistyped key fails here, naming it)."""
    return _ablations.with_changes(base, entry["set"], f"ablations.{paper}[{entry['name']}].set")


def names_pattern(names):
    """A wildcard constraint matching exactly these names (nothing when there are none)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!)"


def register_report(paper, metrics=(), figures=(), notes=()):
    REPORT_METRICS.extend(metrics)
    REPORT_FIGURES.extend(figures)
    REPORT_NOTES.setdefault(paper, []).extend(notes)


wildcard_constraints:
    seed=r"\d+",
