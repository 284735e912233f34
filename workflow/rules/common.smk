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
# paper -> function(variant): the --params the rule writing that run's metrics.json gets under this
# config (None: no such run), so that the report can name what changed since a reference run
RUN_PARAMS = {}
# paper -> variants its config turns off (e.g. dbm.models.dbm3.enabled: false); their ablations are dropped
DISABLED_VARIANTS = {}


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
_seeds = _load_module("dlgm_seeds", "src/dlgm/seeds.py")


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


def seeds_of(section, variant=None):
    """``dlgm.seeds.seeds_of`` for this config."""
    return _seeds.seeds_of(config, section, variant)


def ablations_of(paper):
    """The config's ablations of one paper (name -> entry), less those of a disabled variant."""
    entries = {entry["name"]: entry for entry in config["ablations"].get(paper, [])}
    return _ablations.without_disabled(entries, DISABLED_VARIANTS.get(paper, ()))


def ablation_lineage(paper, variant, variants):
    """(root, chain) of a run (``dlgm.ablations.lineage``): an unknown base or a cycle fails here."""
    return _ablations.lineage(paper, ablations_of(paper), variant, variants)


def ablation_root(paper, variant, variants):
    """The real variant (one of ``variants``) a run starts from: itself, or its ablation chain's first base."""
    return ablation_lineage(paper, variant, variants)[0]


def ablation_params(paper, variant, variants, params_of):
    """A run's parameters: ``params_of(root)`` for a real variant (the same object), else with every
    ablation's ``set`` of its chain merged in order (an unknown or mistyped key fails, naming it)."""
    root, chain = ablation_lineage(paper, variant, variants)
    out = params_of(root)
    for entry in chain:
        out = _ablations.with_changes(out, entry["set"], f"ablations.{paper}[{entry['name']}].set")
    return out


def refuse(message):
    """Raise from inside an input function's expression (a job's config it cannot run)."""
    raise ValueError(message)


def check_ablations(paper, variants, params_of):
    """Every ablation of ``paper`` resolved once when the workflow loads, so a bad base, cycle or key
    fails before any job runs; an ablation may not take a real variant's name."""
    for name in ablations_of(paper):
        if name in variants:
            raise ValueError(f"ablations.{paper}[{name}]: the name is a variant's own; choose another")
        ablation_params(paper, name, variants, params_of)


def ablation_members(paper, roots, variants):
    """The real variants ``roots`` and every ablation whose chain starts at one of them."""
    return [*roots, *(name for name in ablations_of(paper) if ablation_root(paper, name, variants) in roots)]


def ablation_family(paper, roots, variants):
    """A rule's wildcard constraint matching ``ablation_members``."""
    return names_pattern(ablation_members(paper, roots, variants))


def stage_file(path, wildcard, source):
    """Input function of a stage's file that a run reads (``path`` with {<wildcard>} and {seed}): the
    file of the run that ``source`` (a ``stage_source``) names for the run's variant."""
    return lambda w: path.format(**{wildcard: source(getattr(w, wildcard))}, seed=w.seed)


def stage_source(paper, variant, variants, params_of, keys):
    """The run whose first stage ``variant`` takes (e.g. the greedy net of an up-down run): its nearest
    base whose parameters ``keys`` (those that stage reads) are its own, else itself, so that an
    ablation of a later stage does not repeat the first."""
    entries = ablations_of(paper)
    own = lambda name: [ablation_params(paper, name, variants, params_of)[k] for k in keys]
    while variant in entries and own(entries[variant]["base"]) == own(variant):
        variant = entries[variant]["base"]
    return variant


def ablation_metrics(paper):
    """metrics.json of every seed of every ablation of ``paper``, and of each real base variant at the
    paper's seeds (for register_report: the report compares the two, also where the base is a run the
    paper's table does not show, such as one speaker fold)."""
    entries = ablations_of(paper)
    runs = [(name, seed) for name, entry in entries.items() for seed in entry.get("seeds", seeds_of(paper))]
    runs += [(entry["base"], seed) for entry in entries.values() if entry["base"] not in entries
             for seed in seeds_of(paper)]
    return [f"{run_dir(paper, variant).format(seed=seed)}/metrics.json" for variant, seed in runs]


def names_pattern(names):
    """A wildcard constraint matching exactly these names (nothing when there are none)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!)"


def register_report(paper, metrics=(), figures=(), notes=()):
    """Add a paper's metrics files (each once: the report would count a file listed twice as two
    runs), figures and notes to the report's inputs."""
    REPORT_METRICS.extend(m for m in dict.fromkeys(metrics) if m not in REPORT_METRICS)
    REPORT_FIGURES.extend(figures)
    REPORT_NOTES.setdefault(paper, []).extend(notes)


wildcard_constraints:
    seed=r"\d+",
