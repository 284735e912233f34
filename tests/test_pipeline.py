"""The pipeline as a user runs it: the smoke DAG end to end, lint, a dry run, config errors."""
import re
import subprocess
import zipfile
import sys

import pytest
import yaml

from conftest import REPO, copy_pipeline, require_mirror, snakemake
from dlgm.metrics import REQUIRED, read_metrics

PAPERS = ("dbn", "dbm", "rnn_hmm", "nn_crf")


@pytest.mark.slow
def test_smoke_dag_builds_the_report(smoke_run):
    html = (smoke_run / "reports" / "index.html").read_text()
    papers = yaml.safe_load((REPO / "config" / "papers.yaml").read_text())
    for key in PAPERS:
        assert f'id="{key}"' in html
        assert papers[key]["title"] in html
    metrics = sorted((smoke_run / "data" / "runs").glob("*/*/seed*/metrics.json"))
    assert metrics, "the smoke run wrote no metrics.json"
    for path in metrics:
        record = read_metrics(path)
        assert set(REQUIRED) <= record.keys()
        paper, variant, seed_dir = path.parts[-4:-1]
        assert (record["paper"], record["variant"], f"seed{record['seed']}") == (paper, variant, seed_dir)
        assert record["wall_seconds"] > 0 and record["metrics"]


@pytest.mark.slow
def test_smoke_jobs_ran_the_checkouts_own_code(smoke_run):
    """The smoke copy is a git checkout of its own, and the test runs snakemake without PYTHONPATH:
    every job's metrics.json names the copy's commit, so every job imported the copy's src/, not
    the dlgm installed from the development checkout (which would name that checkout's commit)."""
    commit = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=smoke_run,
                            capture_output=True, text=True, check=True).stdout.strip()
    ran = {path.relative_to(smoke_run).as_posix(): read_metrics(path)["versions"]["dlgm"]
           for path in sorted((smoke_run / "data" / "runs").glob("*/*/seed*/metrics.json"))}
    assert ran and set(ran.values()) == {commit}, ran


@pytest.mark.slow
def test_smoke_run_left_no_temporary_files(smoke_run):
    leftovers = [p for p in (smoke_run / "data").rglob("*.tmp")] + list((smoke_run / "reports").rglob("*.tmp"))
    assert not leftovers


@pytest.mark.slow
def test_smoke_run_is_complete_nothing_left_to_do(smoke_run):
    proc = snakemake(smoke_run, "-n", "--cores", "1", "--configfile", "config/smoke.yaml")
    assert "Nothing to be done" in proc.stdout + proc.stderr


# The one lint we accept, explained in the Snakefile: the whole pipeline runs in one environment
# (environment.yml / pyproject.toml), installed before snakemake runs; a conda env per rule would
# install PyTorch once per rule.
ACCEPTED_LINTS = {"Specify a conda environment or container for each rule."}


def test_lint_is_clean(tmp_path):
    workdir = copy_pipeline(tmp_path / "lint")
    proc = snakemake(workdir, "--lint", check=False)
    text = proc.stdout + proc.stderr
    lints = {m.strip().rstrip(":") for m in re.findall(r"^\s+\* (.+)$", text, flags=re.M)}
    assert not lints - ACCEPTED_LINTS, text[-4000:]
    assert "Traceback" not in text and "Error" not in text.split("Lints for")[0], text[-3000:]


def test_default_config_dry_run(tmp_path):
    require_mirror()
    workdir = copy_pipeline(tmp_path / "dry")
    proc = snakemake(workdir, "-n", "--cores", "4")
    out = proc.stdout + proc.stderr
    assert "report" in out
    for key in PAPERS:
        assert key in out or not (REPO / "workflow" / "rules" / f"{key}.smk").read_text().strip().count("rule ")
    # dbn.variant_seeds: the short DBN runs get seeds 0-2, the up-down run only the paper's seed 0;
    # the greedy_only ablation (seeds 0-2) runs the greedy stage of the other seeds, not their up-down
    assert "data/runs/dbn/baseline/seed2/metrics.json" in out and "data/runs/dbn/backprop/seed1/" in out
    assert "data/runs/dbn/updown/seed0/metrics.json" in out and "data/runs/dbn/updown/seed1/greedy.pt" in out
    assert "data/runs/dbn/updown/seed1/metrics.json" not in out and "data/runs/dbn/updown/seed1/model.pt" not in out


def test_quick_config_dry_run(tmp_path):
    require_mirror()
    workdir = copy_pipeline(tmp_path / "dry")
    snakemake(workdir, "-n", "--cores", "4", "--configfile", "config/quick.yaml", "--quiet", "rules")


@pytest.mark.parametrize(
    "override, key",
    [("dbn:\n  seedz: [0]\n", "seedz"), ("devise: cpu\n", "devise"), ("dbm:\n  seeds: zero\n", "zero")],
)
def test_config_typo_fails_before_any_job_naming_the_key(tmp_path, override, key):
    workdir = copy_pipeline(tmp_path / "typo")
    (workdir / "config" / "typo.yaml").write_text(override)
    proc = snakemake(workdir, "--cores", "1", "--configfile", "config/typo.yaml", check=False)
    assert proc.returncode != 0
    assert key in proc.stderr + proc.stdout
    assert not (workdir / "data").exists()


def test_cli_help_lists_every_group():
    out = subprocess.run([sys.executable, "-m", "dlgm", "--help"], capture_output=True, text=True, check=True).stdout
    for group in ("data", "dbn", "dbm", "rnn_hmm", "nn_crf", "report"):
        assert group in out


@pytest.mark.slow
def test_snakemake_report_bundles_the_registered_figures(smoke_run):
    snakemake(smoke_run, "--configfile", "config/smoke.yaml", "--report", "reports/snakemake.zip")
    names = zipfile.ZipFile(smoke_run / "reports" / "snakemake.zip").namelist()
    bundled = sorted(n.rsplit("/", 1)[-1] for n in names if n.endswith(".png"))
    figures = sorted(p.name for p in (smoke_run / "reports" / "figures").glob("*/*.png"))
    assert {p.parent.name for p in (smoke_run / "reports" / "figures").glob("*/*.png")} == set(PAPERS)
    assert bundled == figures
