"""Kill-and-resume: a training process SIGKILLed mid-epoch, rerun, ends exactly where an
uninterrupted run with the same seed ends (CPU).

The trainer is this file run as a script (``python tests/test_resume.py OUT ...``): an EpochLoop
with everything a real trainer carries across a resume (a module with dropout drawing on the
global RNG, an Adam optimizer's moments, a shuffling generator, a persistent tensor updated by
sampling), writing its metrics through dlgm.metrics like every rule does.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

EPOCHS = 6
EVERY = 2  # checkpoint interval in epochs: the kill in epoch 5 must fall back to epoch 4


def train(out: Path, seed: int, stall_at: int | None) -> None:
    """Train the toy model; if ``stall_at`` is given, announce that epoch and hang inside it."""
    import logging

    from dlgm.metrics import write_metrics
    from dlgm.runinfo import seed_everything
    from dlgm.training import EpochLoop

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    config = {"seed": seed, "epochs": EPOCHS, "lr": 0.01, "checkpoint_every": EVERY}
    gen = seed_everything(seed)
    x = torch.randn(512, 10, generator=gen)
    y = (x[:, :3].sum(1) > 0).long()
    model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                                torch.nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    chains = torch.zeros(8, 10)  # stands in for persistent Gibbs chains (plain tensor state)
    shuffle = torch.Generator().manual_seed(seed + 1)

    def epoch_fn(epoch: int) -> dict:
        model.train()
        total = torch.zeros(())
        for idx in torch.randperm(512, generator=shuffle).split(64):
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.detach()
            chains.copy_(torch.bernoulli(torch.sigmoid(chains + x[idx[:8]])))
        if epoch == stall_at:  # mid-epoch: parameters already moved, epoch not finished
            (out / f"in_epoch_{epoch + 1}").touch()
            time.sleep(600)
        return {"loss": total / 8, "chain_mean": chains.mean()}

    loop = EpochLoop("toy", EPOCHS, {"model": model, "opt": opt, "chains": chains},
                     checkpoint=out / "checkpoint.pt", curve=out / "curve.csv", identity=config,
                     generators={"shuffle": shuffle})
    rows = loop.run(epoch_fn)
    model.eval()
    with torch.no_grad():
        error = (model(x).argmax(1) != y).float().mean()
    write_metrics(out / "metrics.json", paper="dbn", variant="toy", seed=seed, split="train",
                  metrics={"error_rate": error, "loss": rows[-1]["loss"],
                           "chain_mean": rows[-1]["chain_mean"]},
                  wall_seconds=0.0, device="cpu", config=config)
    torch.save(model.state_dict(), out / "model.pt")


def _start(out: Path, stall_at: int | None = None) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, __file__, str(out), "0"] + ([] if stall_at is None else [str(stall_at)])
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen) -> str:
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    return output


def _comparable(out: Path) -> dict:
    record = json.loads((out / "metrics.json").read_text())
    return {k: record[k] for k in ("metrics", "config", "config_hash", "seed")}


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    """The uninterrupted run both tests compare with."""
    out = tmp_path_factory.mktemp("resume") / "whole"
    _finish(_start(out))
    return out


def test_sigkill_mid_epoch_then_rerun_equals_uninterrupted(tmp_path, whole):

    killed = tmp_path / "killed"
    proc = _start(killed, stall_at=4)  # hangs inside epoch 5, after the epoch-4 checkpoint
    deadline = time.monotonic() + 60
    while not (killed / "in_epoch_5").exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "trainer never reached epoch 5"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "metrics.json").exists()
    saved = torch.load(killed / "checkpoint.pt", weights_only=True)
    assert saved["epoch"] == 4  # interval 2: epochs 2 and 4 were saved, epoch 5 was not

    log = _finish(_start(killed))
    assert "resumed from" in log and "after epoch 4" in log
    ran = [line for line in log.splitlines() if line.startswith("toy epoch ") and "before the resume" not in line]
    assert [line.split()[2] for line in ran] == ["5/6", "6/6"]  # only the missing epochs ran
    assert "toy epoch 3/6" in log  # and the log still shows the epochs before the kill
    assert _comparable(killed) == _comparable(whole)
    whole_state = torch.load(whole / "model.pt")
    for name, tensor in torch.load(killed / "model.pt").items():
        assert torch.equal(tensor, whole_state[name]), name
    curve = (killed / "curve.csv").read_text().splitlines()
    assert [line.split(",")[1] for line in curve[1:]] == ["1", "2", "3", "4", "5", "6"]


def test_unreadable_checkpoint_and_killed_write_start_over(tmp_path, whole):
    """A truncated checkpoint and the temporary file of a killed write must not stop a rerun."""
    out = tmp_path / "damaged"
    out.mkdir()
    good = (whole / "checkpoint.pt").read_bytes()
    (out / "checkpoint.pt").write_bytes(good[: len(good) // 2])
    (out / ".checkpoint.pt.abc123.tmp").write_bytes(good[:100])
    log = _finish(_start(out))
    assert "could not be read" in log
    assert (out / "checkpoint.pt.unreadable").exists()
    assert not (out / ".checkpoint.pt.abc123.tmp").exists()
    assert _comparable(out) == _comparable(whole)


def test_interval_is_not_part_of_the_identity(tmp_path):
    from dlgm.training import EpochLoop

    model = torch.nn.Linear(2, 1)
    saves = []
    loop = EpochLoop("s", 7, {"m": model}, checkpoint=tmp_path / "c.pt", identity={"lr": 1}, checkpoint_every=3)
    loop._save = lambda epoch: saves.append(epoch)  # record when the loop decides to save
    loop.run(lambda epoch: {"loss": 0.0})
    assert saves == [3, 6, 7]  # every 3 epochs and always the last
    assert loop._identity_hash() == EpochLoop("s", 7, {}, identity={"lr": 1})._identity_hash()
    with pytest.raises(ValueError, match="checkpoint_every must be a positive integer"):
        EpochLoop("s", 3, {}, checkpoint_every=0)


def test_interval_from_the_environment_unless_given(monkeypatch):
    from dlgm.training import EpochLoop

    monkeypatch.setenv("DLGM_CHECKPOINT_EVERY", "5")
    assert EpochLoop("s", 9, {}).checkpoint_every == 5
    assert EpochLoop("s", 9, {}, checkpoint_every=3).checkpoint_every == 3
    monkeypatch.setenv("DLGM_CHECKPOINT_EVERY", "often")
    with pytest.raises(ValueError, match="got 'often'"):
        EpochLoop("s", 9, {})


NN_CRF_RUN = "data/runs/nn_crf/chunk_sll/seed0"


def test_killed_pipeline_rule_resumes_to_the_same_metrics(tmp_path):
    """The same through Snakemake with a real training rule (NN+SLL chunking, smoke config with
    more epochs): snakemake and its job SIGKILLed after a few epochs, `--unlock`, rerun with
    `--rerun-incomplete`; the rule resumes from its checkpoint and ends with the same metrics."""
    from conftest import copy_pipeline, require_mirror, snakemake
    from test_slurm import reuse_prepared_data

    require_mirror()
    whole = copy_pipeline(tmp_path / "whole")
    killed = copy_pipeline(tmp_path / "killed")
    for workdir in (whole, killed):
        (workdir / "config" / "resume.yaml").write_text("nn_crf: {epochs: 12}\n")
    args = [f"{NN_CRF_RUN}/metrics.json", "--cores", "1", "--configfile", "config/smoke.yaml",
            "config/resume.yaml"]
    snakemake(whole, *args)
    reuse_prepared_data(whole, killed)

    proc = subprocess.Popen([sys.executable, "-m", "snakemake", *args], cwd=killed,
                            env={**os.environ, **_mirror_env()}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    curve, deadline = killed / NN_CRF_RUN / "curve.csv", time.monotonic() + 300
    while not (curve.exists() and len(curve.read_text().splitlines()) >= 4):  # 3 epochs done
        assert proc.poll() is None, "snakemake ended before it could be killed"
        assert time.monotonic() < deadline, "the rule never got to its third epoch"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # snakemake and the job, as a lost node would
    proc.wait(timeout=30)
    assert not (killed / NN_CRF_RUN / "metrics.json").exists(), "killed too late: the rule had finished"

    snakemake(killed, "--unlock", *args)
    snakemake(killed, "--rerun-incomplete", *args)
    log = (killed / NN_CRF_RUN / "log_train.txt").read_text()
    assert "resumed from" in log, log[-2000:]
    assert _comparable(killed / NN_CRF_RUN) == _comparable(whole / NN_CRF_RUN)


def _mirror_env() -> dict:
    from conftest import MIRROR

    return {"DLGM_DATA_MIRROR": str(MIRROR)}


if __name__ == "__main__":
    train(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)
