"""Shared fixtures: the repository root, the data mirror, and one smoke run of the whole DAG."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("DLGM_DATA_MIRROR", REPO.parent / "shared" / "data"))
if not MIRROR.is_absolute():
    MIRROR = (REPO / MIRROR).resolve()
PIPELINE_FILES = ("Snakefile", "workflow", "config", "src")


def require_mirror() -> Path:
    if not (MIRROR / "mnist").is_dir():
        pytest.skip(f"data mirror not found at {MIRROR} (set DLGM_DATA_MIRROR)")
    return MIRROR


def copy_pipeline(dest: Path) -> Path:
    """A fresh working copy of the pipeline (no data/ or reports/), as a user's clone would be."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PIPELINE_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def snakemake(workdir: Path, *args: str, timeout: int = 900, env: dict | None = None,
              check: bool = True) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir`` with the mirror set; on failure show its output and the rule logs."""
    # No PYTHONPATH here: the Snakefile itself makes jobs import the copy's src/ (test_pipeline.py).
    full_env = {**os.environ, "DLGM_DATA_MIRROR": str(MIRROR), **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=workdir, env=full_env,
        capture_output=True, text=True, timeout=timeout,
    )
    if check and proc.returncode != 0:
        logs = "\n".join(
            f"--- {p}\n{p.read_text()[-3000:]}" for p in sorted(workdir.glob("**/*.log"))
            if ".snakemake" not in p.parts
        )
        pytest.fail(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n"
                    f"{proc.stderr[-8000:]}\n{logs[-12000:]}")
    return proc


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors and sequential recursions: OpenMP threads only add overhead (and spin on a
    shared CPU). Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """The whole DAG on config/smoke.yaml, once per test session; returns its working directory."""
    require_mirror()
    workdir = copy_pipeline(tmp_path_factory.mktemp("smoke"))
    # a checkout of its own, so that each job's git describe tells which src/ it imported
    git = ["git", "-C", str(workdir), "-c", "user.name=dlgm-test", "-c", "user.email=test@dlgm.invalid"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "smoke copy"]):
        subprocess.run(git + args, check=True, capture_output=True)
    # every job's log also lists the modules it imported (tests/test_code_inputs.py reads them)
    snakemake(workdir, "--cores", "2", "--configfile", "config/smoke.yaml", env={"PYTHONPROFILEIMPORTTIME": "1"})
    return workdir
