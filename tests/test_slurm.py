"""The SLURM path against a real SLURM (started by .ci/slurm_up.sh), not a mock.

A tiny workflow and then one training chain of each paper's smoke config run with ``--executor
slurm`` and the profile in workflow/profiles/slurm; every remote job must show up in SLURM's own
records (squeue history and the slurmctld log), and its metrics must equal the local smoke run's.
The node has no GPU, so every rule's ``gpu`` request is overridden to 0. Without a running
slurmctld these tests skip.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO, copy_pipeline, snakemake

PROFILE = "workflow/profiles/slurm"
SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+)")
# Settings for the one-node CI cluster: no accounts, no sacct (squeue keeps finished jobs for
# MinJobAge=600 s), quick first status check, no resubmission (a failure should show at once).
CI_SLURM = ["--slurm-no-account", "--slurm-status-command", "squeue",
            "--slurm-init-seconds-before-status-checks", "2", "--retries", "0", "--latency-wait", "10"]


def _slurm_down_reason() -> str | None:
    if not shutil.which("sbatch") or not shutil.which("scontrol"):
        return "SLURM client tools not installed (run .ci/slurm_up.sh as root)"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "scontrol ping got no answer in 30 s (start SLURM with .ci/slurm_up.sh)"
    if "UP" not in ping.stdout:
        return f"slurmctld is not running (start it with .ci/slurm_up.sh): {ping.stdout.strip()}"
    return None


def _need_slurm() -> None:
    reason = _slurm_down_reason()
    if reason:
        pytest.skip(reason)


def _slurm_config() -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=True).stdout
    return dict(re.findall(r"^(\w+)\s+= (.*)$", out, flags=re.M))


def _assert_went_through_sbatch(output: str, workdir: Path, expected_jobs: int) -> list[str]:
    """Every job snakemake says it submitted is in squeue's history (COMPLETED, our workdir)
    and in the slurmctld log as a batch submission."""
    ids = SUBMITTED.findall(output)
    assert len(ids) == expected_jobs, f"expected {expected_jobs} sbatch submissions, saw {ids}:\n{output[-4000:]}"
    rows = subprocess.run(["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i|%T|%Z"],
                          capture_output=True, text=True, check=True).stdout.split()
    seen = {i: (state, wd) for i, state, wd in (row.split("|") for row in rows)}
    for job in ids:
        assert job in seen, f"SLURM job {job} missing from squeue history (MinJobAge too low?)"
        state, wd = seen[job]
        assert state == "COMPLETED" and Path(wd).resolve() == workdir.resolve(), (job, state, wd)
    ctld_log = Path(_slurm_config()["SlurmctldLogFile"]).read_text()
    for job in ids:
        assert f"_slurm_rpc_submit_batch_job: JobId={job} " in ctld_log, f"job {job} not in slurmctld log"
    return ids


def _cancel_jobs_of(workdir: Path) -> None:
    """scancel what a failed or timed-out run left queued, so the next test finds an empty node."""
    rows = subprocess.run(["squeue", "-h", "-o", "%i|%Z"], capture_output=True, text=True).stdout.split()
    left = [i for i, wd in (row.split("|", 1) for row in rows) if Path(wd).resolve() == workdir.resolve()]
    if left:
        subprocess.run(["scancel", *left], check=False)


def _rules(workdir: Path, *configfiles: str) -> dict[str, dict]:
    """name -> {local, gpu, mem_mb, runtime, outputs, inputs, logs, shell} of every rule, read with Snakemake's own parser.

    Snakemake has no public call for "is this rule local"; Workflow._localrules is its record
    (snakemake is pinned <10 in pyproject.toml).
    """
    script = textwrap.dedent("""
        import json, sys
        from pathlib import Path
        from snakemake.api import SnakemakeApi
        from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings, StorageSettings
        with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
            wf = api.workflow(resource_settings=ResourceSettings(), storage_settings=StorageSettings(),
                              config_settings=ConfigSettings(configfiles=[Path(p) for p in sys.argv[1:]]),
                              snakefile=Path("Snakefile"), workdir=Path("."))._workflow
            show = lambda r, k: (lambda v: v if isinstance(v, (int, float, str)) else "dynamic")(
                r.resources[k].value if hasattr(r.resources[k], "value") else r.resources[k]) if k in r.resources else None
            print(json.dumps({r.name: {"local": r.name in wf._localrules or r.norun,
                                       "gpu": show(r, "gpu"), "mem_mb": show(r, "mem_mb"),
                                       "runtime": show(r, "runtime"),
                                       "outputs": [str(o) for o in r.output],
                                       "inputs": [str(i) for i in r.input if isinstance(i, str)],
                                       "logs": [str(f) for f in r.log], "shell": r.shellcmd or ""}
                              for r in wf.rules}))
    """)
    proc = subprocess.run([sys.executable, "-c", script, *configfiles], cwd=workdir,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_profile_sends_training_to_slurm_with_a_gpu_and_keeps_the_rest_local():
    rules = _rules(REPO, "config/smoke.yaml")
    for name, rule in rules.items():
        outputs = rule["outputs"]
        # a training run is per seed; a summary over runs (rnn_hmm_folds) only averages, locally
        trains = any(o.startswith("data/runs/") and o.endswith("metrics.json") and "{seed}" in o for o in outputs)
        if trains:
            assert not rule["local"], f"training rule {name} is a localrule: it would not reach SLURM"
            assert rule["gpu"] not in (None, 0), f"training rule {name} requests no gpu (resources: gpu=1)"
            assert rule["mem_mb"] and rule["runtime"], f"training rule {name} lacks mem_mb or runtime"
        elif name.startswith(("download", "plot", "report")) or any(o.startswith("reports/") for o in outputs):
            assert rule["local"], f"{name} should be `localrule: True` (runs where snakemake runs)"


def test_tiny_workflow_goes_through_sbatch(tmp_path):
    _need_slurm()
    (tmp_path / "Snakefile").write_text(textwrap.dedent("""
        rule all:
            input: expand("out/{s}.txt", s=[0, 1])
        rule job:
            output: "out/{s}.txt"
            resources: gpu=1, mem_mb=200, runtime=5
            threads: 1
            shell: "echo $SLURM_JOB_ID $SLURM_CPUS_PER_TASK > {output}"
    """))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "snakemake", "--workflow-profile", str(REPO / PROFILE), *CI_SLURM,
             "--set-resources", "job:gpu=0"],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )
    finally:
        _cancel_jobs_of(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    ids = _assert_went_through_sbatch(proc.stdout + proc.stderr, tmp_path, expected_jobs=2)
    written = sorted((tmp_path / "out" / f"{s}.txt").read_text().split()[0] for s in (0, 1))
    assert written == sorted(ids)  # each output was made inside its own SLURM job


TIMING = re.compile(r"seconds|time|date")


def comparable(record: dict) -> dict:
    """A metrics.json without what legitimately differs between two runs of the same config:
    wall_seconds, finished, device, the code version string, and timings anywhere inside "extra"."""
    record = {k: v for k, v in record.items() if k not in ("wall_seconds", "finished", "device")}
    record["versions"] = {k: v for k, v in record.get("versions", {}).items() if k != "dlgm"}
    if "extra" in record:
        record["extra"] = _without_timings(record["extra"])
    return record


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if not TIMING.search(k)}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def metrics_of(workdir: Path) -> dict[str, dict]:
    return {str(p.relative_to(workdir)): comparable(json.loads(p.read_text()))
            for p in sorted((workdir / "data" / "runs").glob("**/metrics.json"))}


def reuse_prepared_data(source: Path, dest: Path) -> None:
    """Downloads and processed tensors of an earlier run (mtimes kept: Snakemake sees them as done)."""
    for sub in ("raw", "processed"):
        if (source / "data" / sub).is_dir():
            shutil.copytree(source / "data" / sub, dest / "data" / sub, dirs_exist_ok=True)


# One training chain of each paper, upstream jobs included: 9 SLURM jobs of 8 remote rules. All 36
# remote jobs of the smoke DAG took 430-480 s through the one-node SLURM here and over 900 s in CI;
# the other remote rules differ from these only in their shell command (which the local smoke run
# runs) and their resources (checked above).
CHAINS = {
    "data/runs/dbn/backprop/seed0/metrics.json": {"dbn_pretrain", "dbn_finetune"},
    "data/runs/dbm/dbm2/seed0/metrics.json": {"dbm_pretrain", "dbm_train", "dbm_ais", "dbm_finetune"},
    "data/runs/nn_crf/chunk_sll/seed0/metrics.json": {"nn_crf_train"},
    "data/runs/rnn_hmm/fsdd_hybrid/seed0/metrics.json": {"rnn_hmm_gmm_hmm", "rnn_hmm_hybrid"},
}


def test_paper_chains_through_slurm_equal_the_local_smoke_run(tmp_path, smoke_run):
    _need_slurm()
    workdir = copy_pipeline(tmp_path / "slurm")
    reuse_prepared_data(smoke_run, workdir)  # data rules are local anyway; this test is about the remote ones
    rules = _rules(workdir, "config/smoke.yaml")
    remote = sorted(name for name, rule in rules.items() if not rule["local"])
    # CPU-only node: no GPUs to give; at most 2 threads and 1 GB each, like the local smoke run.
    overrides = [f"{name}:{key}" for name in remote for key in ("gpu=0", "mem_mb=1000")]
    try:
        proc = snakemake(workdir, "--workflow-profile", PROFILE, "--configfile", "config/smoke.yaml",
                         *CI_SLURM, "--jobs", "4", "--max-threads", "2", "--set-resources", *overrides,
                         "--", *CHAINS, timeout=840)
    finally:
        _cancel_jobs_of(workdir)
    output = proc.stdout + proc.stderr
    ran_remotely = re.findall(r"^rule (\S+):$", output, flags=re.M)  # local jobs print "localrule"
    assert sorted(ran_remotely) == sorted(set().union(*CHAINS.values())) and set(ran_remotely) <= set(remote), (
        ran_remotely, remote)
    _assert_went_through_sbatch(output, workdir, expected_jobs=len(ran_remotely))
    local, remote_metrics = metrics_of(smoke_run), metrics_of(workdir)
    assert set(CHAINS) <= remote_metrics.keys() <= local.keys()
    for path, record in remote_metrics.items():
        assert record == local[path], f"{path} differs between the SLURM run and the local run"
