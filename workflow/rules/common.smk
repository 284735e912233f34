# Helpers shared by every rule file. Rule files register what the report needs with
# register_report(); report.smk (included last) turns that into the report's inputs.
import json
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


def src(*modules):
    """Source files a rule depends on, so that a code change reruns it.

    Names are module paths under src/dlgm (``"training"``, ``"dbn/rbm"``); a name ending in
    ``/`` means every .py file of that subpackage.
    """
    files = ["src/dlgm/cli.py", "src/dlgm/atomic.py", "src/dlgm/runinfo.py", "src/dlgm/metrics.py"]
    for name in modules:
        if name.endswith("/"):
            files += sorted(str(p) for p in Path("src/dlgm", name).glob("*.py"))
        else:
            files.append(f"src/dlgm/{name}.py")
    return sorted(set(files))


def run_dir(paper, variant):
    """Folder of one run; ``{seed}`` stays a wildcard."""
    return f"{RUNS}/{paper}/{variant}/seed{{seed}}"


def seeds_of(section):
    return config[section]["seeds"]


def register_report(paper, metrics=(), figures=(), notes=()):
    REPORT_METRICS.extend(metrics)
    REPORT_FIGURES.extend(figures)
    REPORT_NOTES.setdefault(paper, []).extend(notes)


wildcard_constraints:
    seed=r"\d+",
