"""The one epoch loop every model trains with.

It owns what the four papers' loops would otherwise copy: resuming from the last checkpoint
(model and optimizer state, RNG streams, epoch, curve), a finiteness check once per epoch that
stops with an error naming the stage and epoch, a progress line per epoch (loss, rate, time left)
and the curve file (one row per epoch). The model code supplies ``epoch_fn(epoch) -> dict``.

Fault tolerance: a checkpoint is written atomically (temporary name, then rename), so a SIGKILL at
any moment leaves either the previous checkpoint or the new one; a rerun continues after the last
saved epoch and, because every RNG stream is restored, ends with the same numbers as an
uninterrupted run. A checkpoint that cannot be read (e.g. truncated by a full disk) is set aside
with a warning and training starts again; temporary files of a killed write are removed.
"""
from __future__ import annotations

import csv
import glob
import hashlib
import io
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from dlgm.atomic import torch_load, torch_save, write_text
from dlgm.epoch_log import resumed_epoch_line
from dlgm.provenance import code_digest
from dlgm.timefmt import duration
from dlgm.runinfo import config_hash

log = logging.getLogger("dlgm")


class TrainingDiverged(RuntimeError):
    """Raised when a loss, metric or parameter becomes NaN or infinite."""


def _rng_state() -> dict:
    """Every global RNG stream as tensors and plain numbers (checkpoints load with weights_only=True)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    numpy_state = {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                   "has_gauss": int(has_gauss), "cached": float(cached)}
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class EpochLoop:
    """Run ``epochs`` epochs of ``epoch_fn`` for one training stage.

    stage: a name used in messages and file names (e.g. ``rbm1``, ``finetune``).
    state: objects with ``state_dict``/``load_state_dict`` (modules, optimizers, schedulers) or
        plain tensors (restored in place) that make up everything needed to resume.
    checkpoint: file for resume state (``RunLoops`` names it); a checkpoint written under another
        identity (or by another stage) is ignored. Give each stage of a multi-stage trainer its own
        file: a finished stage then resumes as "done" and restores the RNG state it ended with.
    curve: CSV file; rows for all completed epochs are rewritten atomically after each epoch.
    identity: what a checkpoint must match to be resumed, normally ``resume_identity(...)``.
    checkpoint_every: save after every N epochs (and always after the last). ``None`` takes the
        environment variable ``DLGM_CHECKPOINT_EVERY``, else 1. The interval does not change
        results and is not part of the identity: changing it keeps existing checkpoints usable.
    generators: extra ``torch.Generator`` objects whose state must survive a resume.
    frozen: resume from the checkpoint and train no further (an interim look at a run that another
        process is still training): nothing is written or removed, and a checkpoint that is missing,
        unreadable or of another identity is an error instead of a fresh start.
    """

    stage: str
    epochs: int
    state: Mapping[str, Any]
    checkpoint: Path | None = None
    curve: Path | None = None
    identity: Any = None
    checkpoint_every: int | None = None
    generators: Mapping[str, torch.Generator] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    frozen: bool = False

    def __post_init__(self) -> None:
        if self.checkpoint_every is None:
            env = os.environ.get("DLGM_CHECKPOINT_EVERY", "1")
            self.checkpoint_every = int(env) if env.strip().isdigit() else env
        if not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 1:
            raise ValueError(f"{self.stage}: checkpoint_every must be a positive integer, "
                             f"got {self.checkpoint_every!r}")
        if self.frozen and self.checkpoint is None:
            raise ValueError(f"{self.stage}: a frozen loop needs the checkpoint it resumes from")

    def run(self, epoch_fn: Callable[[int], Mapping[str, Any]]) -> list[dict]:
        start = self._resume()
        if self.frozen:
            return self.rows
        if self.curve is not None and self.rows:  # a rerun that finds every epoch done still writes its curve
            self._write_curve()
        started = time.perf_counter()
        for epoch in range(start, self.epochs):
            t0 = time.perf_counter()
            values = {k: _to_float(v) for k, v in epoch_fn(epoch).items()}
            self._check_finite(epoch, values)
            row = {"stage": self.stage, "epoch": epoch + 1, **values, "seconds": time.perf_counter() - t0}
            self.rows.append(row)
            self._report(epoch, row, started, start)
            if self.curve is not None:
                self._write_curve()
            last = epoch + 1 == self.epochs
            if self.checkpoint is not None and ((epoch + 1) % self.checkpoint_every == 0 or last):
                self._save(epoch + 1)
        return self.rows

    # -- resume -------------------------------------------------------------------------------
    def _resume(self) -> int:
        if self.checkpoint is None:
            return 0
        path = Path(self.checkpoint)
        if self.frozen:  # the run's own process may be writing its next checkpoint: touch nothing
            return self._resume_frozen(path)
        _remove_stale_temporaries(path)
        if not path.exists():
            return 0
        try:
            saved = _read_checkpoint(path)
        except Exception as err:  # truncated or foreign file: keep it for inspection, start over
            aside = path.with_name(path.name + ".unreadable")
            os.replace(path, aside)
            log.warning("%s: checkpoint %s could not be read (%s: %s); moved to %s, starting at epoch 1",
                        self.stage, path, type(err).__name__, err, aside.name)
            return 0
        if not self._same_run(saved):
            log.info("%s: ignoring checkpoint %s written for another config, input or code", self.stage,
                     self.checkpoint)
            return 0
        return self._restore(saved)

    def _resume_frozen(self, path: Path) -> int:
        if not path.exists():
            raise FileNotFoundError(f"{self.stage}: no checkpoint {path}: the run has not finished an epoch of this stage")
        try:
            saved = _read_checkpoint(path)
        except Exception as err:
            raise ValueError(f"{self.stage}: checkpoint {path} cannot be read ({type(err).__name__}: {err})") from None
        if not self._same_run(saved):
            raise ValueError(f"{self.stage}: checkpoint {path} was written for another config, input or code than "
                             "this command's; look at a run with the checkout and config it is training with")
        return self._restore(saved)

    def _same_run(self, saved: Mapping[str, Any]) -> bool:
        return saved.get("identity") == self._identity_hash() and saved.get("stage") == self.stage

    def _restore(self, saved: Mapping[str, Any]) -> int:
        for name, obj in self.state.items():
            _load_into(obj, saved["state"][name])
        for name, gen in self.generators.items():
            gen.set_state(saved["generators"][name])
        _set_rng_state(saved["rng"])
        self.rows = list(saved["rows"])
        log.info("%s: resumed from %s after epoch %d; the epochs before, as the checkpoint recorded them:",
                 self.stage, self.checkpoint, saved["epoch"])
        # Snakemake deletes a job's log before rerunning it: the log of a resumed run keeps every epoch
        for row in self.rows:
            log.info("%s", resumed_epoch_line(_progress(self.stage, row, self.epochs), row["seconds"]))
        return int(saved["epoch"])

    def _save(self, epoch: int) -> None:
        torch_save(
            {
                "stage": self.stage,
                "epoch": epoch,
                "identity": self._identity_hash(),
                "state": {name: _state_of(obj) for name, obj in self.state.items()},
                "generators": {name: gen.get_state() for name, gen in self.generators.items()},
                "rng": _rng_state(),
                "rows": self.rows,
            },
            self.checkpoint,
        )

    def _identity_hash(self) -> str:
        return config_hash(self.identity)

    # -- checks and progress ------------------------------------------------------------------
    def _check_finite(self, epoch: int, values: Mapping[str, float]) -> None:
        for key, value in values.items():
            if not math.isfinite(value):
                raise TrainingDiverged(f"{self.stage}: {key} is {value} at epoch {epoch + 1}")
        for name, obj in self.state.items():
            for pname, tensor in _tensors_of(obj):
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    raise TrainingDiverged(
                        f"{self.stage}: parameter {name}.{pname} is not finite at epoch {epoch + 1}"
                    )

    def _report(self, epoch: int, row: Mapping[str, Any], started: float, first: int) -> None:
        done = epoch + 1 - first
        per_epoch = (time.perf_counter() - started) / done
        left = per_epoch * (self.epochs - epoch - 1)
        log.info("%s | %.2fs/epoch, %s left", _progress(self.stage, row, self.epochs), per_epoch, duration(left))

    def _write_curve(self) -> None:
        keys: list[str] = []
        for row in self.rows:
            keys += [k for k in row if k not in keys]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.curve, buf.getvalue())


def resume_identity(config: Any, inputs: Sequence[str | os.PathLike] = (), code: str | None = None) -> dict:
    """What a checkpoint must match to be resumed, the one rule for every command: the run's config,
    the bytes of its input files, and the source of what the command runs (``code``: an entry such
    as ``"dlgm.commands.dbm:cmd_train"``, the same file set as the rule's code inputs; see
    dlgm.provenance). Snakemake reruns a rule whose config, input or code changed; resuming the old
    checkpoint would then hand back the old model. A rerun after a kill matches and resumes."""
    return {"config": config, "inputs": [file_digest(p) for p in inputs],
            "code": code_digest(code) if code else None}


def file_digest(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class RunLoops:
    """Makes the EpochLoop of each stage of one run: every stage checkpoints to
    ``<run_dir>/checkpoint_<stage>.pt`` and writes ``<run_dir>/curve_<stage>.csv`` (or the path
    ``curves`` gives for that stage) under one identity. Without ``run_dir`` nothing is written
    (tests, notebooks). Algorithms take one of these and call it; they never name files.
    ``frozen``: every stage resumes from its checkpoint and trains no further (EpochLoop.frozen);
    ``made`` lists the loops in the order the run asked for them."""

    run_dir: Path | None = None
    identity: Any = None
    curves: Mapping[str, Path] = field(default_factory=dict)
    frozen: bool = False
    made: list[EpochLoop] = field(default_factory=list)

    def __call__(self, stage: str, epochs: int, state: Mapping[str, Any],
                 generators: Mapping[str, torch.Generator] | None = None, curve: bool = True) -> EpochLoop:
        """``curve=False``: a loop whose epochs are slices of one computation (AIS) writes no curve."""
        if self.run_dir is None:  # frozen, this loop has no checkpoint to resume: EpochLoop refuses it
            loop = EpochLoop(stage, epochs, state, generators=generators or {}, frozen=self.frozen)
        else:
            run_dir = Path(self.run_dir)
            loop = EpochLoop(stage, epochs, state, checkpoint=run_dir / f"checkpoint_{stage}.pt",
                             curve=Path(self.curves.get(stage, run_dir / f"curve_{stage}.csv")) if curve else None,
                             identity=self.identity, generators=generators or {}, frozen=self.frozen)
        self.made.append(loop)
        return loop


def _progress(stage: str, row: Mapping[str, Any], epochs: int) -> str:
    """An epoch's line in the log: ``stage epoch i/n key=value ...``."""
    shown = " ".join(f"{k}={v:.5g}" for k, v in row.items() if k not in ("stage", "epoch", "seconds"))
    return f"{stage} epoch {row['epoch']}/{epochs} {shown}"


def _read_checkpoint(path: Path) -> dict:
    saved = torch_load(path)
    if not isinstance(saved, dict) or "epoch" not in saved:
        raise ValueError("not an EpochLoop checkpoint")
    return saved


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporary files that a write of ``path`` killed mid-way left (see dlgm.atomic)."""
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            stale.unlink(missing_ok=True)


def _to_float(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().cpu())
    return float(value)


def _state_of(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    return obj.state_dict()


def _load_into(obj: Any, saved: Any) -> None:
    if isinstance(obj, torch.Tensor):
        with torch.no_grad():
            obj.copy_(saved.to(obj.device))
    else:
        obj.load_state_dict(saved)


def _tensors_of(obj: Any):
    if isinstance(obj, torch.Tensor):
        yield "", obj
    elif isinstance(obj, torch.nn.Module):
        yield from obj.state_dict().items()
