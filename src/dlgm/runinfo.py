"""What a run used: device, package versions, code version, config hash, seeding."""
from __future__ import annotations

import hashlib
import json
import platform
import random
import subprocess
from contextlib import contextmanager
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

import dlgm
from dlgm.allocator import keep_freed_memory

_PACKAGES = ("torch", "numpy", "scipy", "snakemake", "kaldi-native-fbank", "seqeval", "editdistance")


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` means CUDA when present, else CPU; the same code runs on both."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


@contextmanager
def one_cpu_thread(device: torch.device):
    """Torch limited to one CPU thread inside (nothing changes on other devices); the setting is
    process-wide, so it is restored on the way out."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@cache  # read once per process: every metrics.json and benchmark row names the device
def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The processor's model name as Linux reports it, else what ``platform`` knows (often only
    the architecture): the speed of MKL's products and of the random generator depends on the
    processor, so a measured time names it."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """e.g. "NVIDIA H200", "cpu (AMD EPYC, x86_64, 2 threads)"."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model, arch = cpu_model(), platform.machine()
    label = model if model == arch or not arch else f"{model}, {arch}"
    return f"cpu ({label}, {torch.get_num_threads()} threads)"


@cache
def code_version() -> str:
    """``git describe`` of the checkout the package runs from, else the package version. Read once
    per process (``start_run`` reads it first), so that a run records the code it started with,
    not a later checkout it is still running beside."""
    root = Path(dlgm.__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=root, capture_output=True, text=True, timeout=10, check=True,
        )
        return out.stdout.strip() or dlgm.__version__
    except (OSError, subprocess.SubprocessError):
        return dlgm.__version__


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "dlgm": code_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def config_hash(config: Any) -> str:
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch generator for code that wants its own stream."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def start_run(seed: int, device: str = "auto", threads: int = 0) -> tuple[torch.device, torch.Generator]:
    """What every training command does first: CPU threads (0 = torch's default), the heap kept
    in the process (``dlgm.allocator``), the device, every seed; returns the device and a
    generator on it seeded with ``seed``."""
    code_version()
    keep_freed_memory()
    if threads:
        torch.set_num_threads(threads)
    chosen = pick_device(device)
    seed_everything(seed)
    return chosen, torch.Generator(device=chosen).manual_seed(seed)
