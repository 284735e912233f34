"""Figures of the DBM section: fantasy particles, AIS convergence, training curves."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from dlgm.atomic import torch_load

from dlgm.figures import plt, save_figure


def _label(path: str) -> str:
    """``data/runs/dbm/<variant>/seed<N>/...`` -> ``<variant> seed<N>``."""
    parts = Path(path).parts
    return f"{parts[-3]} {parts[-2]}" if len(parts) >= 3 else Path(path).stem


def fantasy_particles(inputs: list[str], out: str) -> None:
    """Grid of p(v | h1) of the persistent chains of each trained DBM (one row block per model)."""
    grids = []
    for path in inputs:
        saved = torch_load(path)
        if "fantasy" not in saved:
            raise KeyError(f"{path}: no 'fantasy' particles (written by `dlgm dbm train`)")
        grids.append((_label(path), saved["fantasy"][:100].reshape(-1, 28, 28)))
    fig, axes = plt.subplots(1, len(grids), figsize=(4.5 * len(grids), 4.8), squeeze=False)
    for ax, (label, imgs) in zip(axes[0], grids):
        n = imgs.shape[0]
        side = int(n**0.5)
        while side * side > n:
            side -= 1
        mosaic = imgs[: side * side].reshape(side, side, 28, 28).permute(0, 2, 1, 3).reshape(side * 28, side * 28)
        ax.imshow(mosaic.numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(label)
        ax.axis("off")
    save_figure(fig, out, "Fantasy particles of the trained DBMs: p(v | h1) of the persistent Markov "
                          "chains at the end of joint training (SH09, Figure 4 shows the same for MNIST).")


def ais_convergence(inputs: list[str], out: str) -> None:
    """log Z with its +-3 sd bars against the number of intermediate distributions."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for path in inputs:
        record = json.loads(Path(path).read_text())
        curve = record.get("ais_curve") or record.get("extra", {}).get("ais_curve")
        if not curve:
            raise KeyError(f"{path}: no 'ais_curve' entry")
        k = [c["temperatures"] for c in curve]
        z = [c["log_z"] for c in curve]
        lo = [c["log_z"] - c["log_z_low"] if c["log_z_low"] is not None else 0.0 for c in curve]
        hi = [c["log_z_high"] - c["log_z"] for c in curve]
        ax.errorbar(k, z, yerr=[lo, hi], marker="o", capsize=3, label=_label(path))
    ax.set_xscale("log")
    ax.set_xlabel("number of intermediate distributions (inverse temperatures)")
    ax.set_ylabel("AIS estimate of log Z")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, out, "AIS estimates of log Z against the length of the annealing schedule (100 runs; "
                          "bars are log(Z +- 3 sd) of the estimate). Estimates that still move with more "
                          "temperatures have not converged (SM08 Section 4.2, SH09 Section 4).")


def training_curves(inputs: list[str], out: str) -> None:
    """Reconstruction error (joint DBM training and RBMs) or loss per epoch, one line per curve file."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for path in inputs:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            continue
        key = "recon_error" if "recon_error" in rows[0] else "loss"
        ax.plot([int(r["epoch"]) for r in rows], [float(r[key]) for r in rows],
                label=f"{_label(path)} {Path(path).stem.removeprefix('curve').lstrip('_') or 'rbm'} ({key})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("per-epoch training value")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    save_figure(fig, out, "Training curves: mean squared reconstruction error per image for the CD-k RBMs "
                          "and the joint DBM training (visible probabilities from the mean-field h1), "
                          "cross-entropy for discriminative fine-tuning.")
