"""Provenance: the report names what each run used, and a change reruns exactly what depends on it.

On a copy of the finished smoke run (with Snakemake's records): a changed config value of one
paper, or a changed source module of one paper, must make Snakemake rerun that paper's jobs (and
the report) and nothing of the other papers or the data layer. The dry run's "Reasons" say why
(`--list-changes params` is not used: Snakemake 9.27 lists every output there, changed or not).
"""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import snakemake
from test_slurm import _rules

SMOKE = ["--configfile", "config/smoke.yaml"]
PAPERS = ("dbn", "dbm", "rnn_hmm", "nn_crf")


def _paper_of(rule: dict) -> str | None:
    for path in rule["outputs"]:
        found = re.match(r"^(?:data/runs|reports/figures)/([^/]+)/", path)
        if found and found.group(1) in PAPERS:
            return found.group(1)
    return None


def _plan(workdir: Path, *args: str) -> tuple[dict[str, int], dict[str, set[str]]]:
    """A dry run's jobs (rule -> count, from "Job stats") and reasons (reason -> rules)."""
    proc = snakemake(workdir, "--dry-run", *args)
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}, {}
    jobs = {}
    for line in text.split("Job stats:", 1)[1].strip().splitlines()[2:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        jobs[parts[0]] = int(parts[1])
    reasons, reason = {}, None
    for line in text.split("\nReasons:", 1)[1].splitlines()[2:]:
        if line.startswith("        "):
            reasons[reason] |= {name.strip() for name in line.split(",")}
        elif line.startswith("    ") and line.rstrip().endswith(":"):
            reason = line.strip().rstrip(":")
            reasons[reason] = set()
        else:
            break
    return jobs, reasons


@pytest.fixture(scope="module")
def finished(smoke_run, tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    """A copy of the finished smoke run, mtimes and .snakemake records kept; and its rules."""
    workdir = tmp_path_factory.mktemp("provenance") / "run"
    shutil.copytree(smoke_run, workdir, symlinks=True)
    shutil.rmtree(workdir / ".snakemake" / "locks", ignore_errors=True)
    assert _plan(workdir, *SMOKE) == ({}, {}), "a finished smoke run should have nothing left to do"
    return workdir, _rules(workdir, "config/smoke.yaml")


def _trained_papers(rules: dict[str, dict]) -> set[str]:
    return {p for r in rules.values() if (p := _paper_of(r)) and
            any(o.startswith("data/runs/") for o in r["outputs"])}


def _check_only(paper: str, jobs: dict[str, int], rules: dict[str, dict]) -> None:
    assert any(_paper_of(rules[name]) == paper for name in jobs), f"no {paper} job reruns: {jobs}"
    others = {name for name in jobs if _paper_of(rules[name]) not in (paper, None)}
    assert not others, f"a change to {paper} reruns jobs of other papers: {sorted(others)}"
    data = {name for name in jobs if name.startswith(("download", "prepare"))}
    assert not data, f"a change to {paper} reruns data jobs: {sorted(data)}"


def _first_epochs_key(section, path=()):
    """Path to the first integer setting named like ``*epochs*`` in a config section."""
    if isinstance(section, dict):
        for key, value in section.items():
            if "epochs" in key and isinstance(value, int) and not isinstance(value, bool):
                return path + (key,)
            found = _first_epochs_key(value, path + (key,))
            if found:
                return found
    return None


def test_config_change_reruns_only_that_paper(finished):
    workdir, rules = finished
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    smoke = yaml.safe_load((workdir / "config" / "smoke.yaml").read_text())
    changed = None
    for paper in sorted(_trained_papers(rules)):
        key = _first_epochs_key({**config.get(paper, {}), **(smoke.get(paper) or {})})
        if key:
            changed = (paper, key)
            break
    assert changed is not None, "no paper in the smoke DAG has an *epochs* setting to change"
    paper, key = changed
    merged = {**config[paper], **(smoke.get(paper) or {})}
    value = merged
    for part in key:
        value = value[part]
    override = value_at = {}
    for part in key[:-1]:
        value_at[part] = {}
        value_at = value_at[part]
    value_at[key[-1]] = value + 1
    (workdir / "config" / "changed.yaml").write_text(yaml.safe_dump({paper: override}))

    jobs, reasons = _plan(workdir, *SMOKE, "config/changed.yaml")
    _check_only(paper, jobs, rules)
    triggered = reasons.get("params have changed since last execution", set())
    assert triggered, f"no job reruns for changed params after {paper}.{'.'.join(key)} changed: {reasons}"
    assert all(_paper_of(rules[name]) == paper for name in triggered), triggered


def test_code_change_reruns_only_what_imports_it(finished):
    workdir, rules = finished
    for paper in sorted(_trained_papers(rules)):
        mine = {f for r in rules.values() if _paper_of(r) == paper for f in r["inputs"]}
        theirs = {f for r in rules.values() if _paper_of(r) != paper for f in r["inputs"]}
        modules = sorted(f for f in mine - theirs if f.startswith("src/dlgm/") and f.endswith(".py"))
        if modules:
            break
    else:
        pytest.fail("no source module is used by one paper's rules only")
    edited = workdir / modules[0]  # Snakemake compares checksums: a touch alone reruns nothing
    edited.write_text(edited.read_text() + "\n# an edit\n")
    later = time.time() + 5
    os.utime(edited, (later, later))
    jobs, reasons = _plan(workdir, *SMOKE)
    _check_only(paper, jobs, rules)
    triggered = reasons.get("updated input files", set())
    assert triggered and all(_paper_of(rules[name]) == paper for name in triggered), (modules[0], reasons)


def test_report_environment_names_code_versions_device_and_config_of_each_run(smoke_run):
    page = (smoke_run / "reports" / "index.html").read_text()
    assert 'id="environment"' in page, "the report has no run environment section"
    section = html.unescape(page.split('id="environment"', 1)[1])
    rows = section.split("<tr>")[2:]
    records = [json.loads(p.read_text()) for p in sorted((smoke_run / "data" / "runs").glob("**/metrics.json"))]
    assert records, "the smoke run wrote no metrics.json"
    # runs folded into a summary (the TIMIT-sample folds) are named by the summary, whose row is checked
    summarised = {v for rec in records for v in rec.get("extra", {}).get("runs", [])}
    assert all(any(r["variant"] == v for r in records) for v in summarised), summarised
    for rec in records:
        if rec["variant"] in summarised:
            continue
        wanted = [rec["config_hash"], rec["device"], rec["versions"]["dlgm"], rec["versions"]["torch"],
                  rec["versions"]["python"]]
        assert any(all(w in row for w in wanted) and f">{rec['variant']}<" in row for row in rows), (
            f"no environment row for {rec['paper']}/{rec['variant']} seed {rec['seed']} with {wanted}")


def test_a_run_records_the_code_version_it_started_with(monkeypatch):
    """A checkout that moves on while a long run trains must not be named as that run's code."""
    from dlgm import runinfo

    runinfo.code_version.cache_clear()
    monkeypatch.setattr(runinfo.subprocess, "run", lambda *a, **k: type("Out", (), {"stdout": "abc1234\n"})())
    runinfo.start_run(0)
    monkeypatch.setattr(runinfo.subprocess, "run", lambda *a, **k: type("Out", (), {"stdout": "def5678-dirty\n"})())
    assert runinfo.versions()["dlgm"] == "abc1234"
    runinfo.code_version.cache_clear()
    assert runinfo.versions()["dlgm"] == "def5678-dirty"
    runinfo.code_version.cache_clear()


def test_a_cpu_device_is_named_by_its_processor(tmp_path, monkeypatch):
    """A timing depends on the processor, not only on its architecture: the device names the model."""
    from dlgm import runinfo

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu\n"
                    "processor\t: 1\nmodel name\t: AMD EPYC 9R14\n")
    assert runinfo.cpu_model(info) == "AMD EPYC 9R14"
    monkeypatch.setattr(runinfo.platform, "processor", lambda: "")
    monkeypatch.setattr(runinfo.platform, "machine", lambda: "aarch64")
    assert runinfo.cpu_model(tmp_path / "absent") == "aarch64"  # no /proc (macOS, Windows): the architecture
    (tmp_path / "arm").write_text("processor\t: 0\nBogoMIPS\t: 50.00\n")  # many ARM kernels give no model name
    assert runinfo.cpu_model(tmp_path / "arm") == "aarch64"
    monkeypatch.setattr(runinfo, "cpu_model", lambda: "AMD EPYC 9R14")
    monkeypatch.setattr(runinfo.torch, "get_num_threads", lambda: 2)
    assert runinfo.device_name(torch.device("cpu")) == "cpu (AMD EPYC 9R14, aarch64, 2 threads)"
    monkeypatch.setattr(runinfo, "cpu_model", lambda: "aarch64")
    assert runinfo.device_name(torch.device("cpu")) == "cpu (aarch64, 2 threads)"
