"""Figures of the DBM section: fantasy particles, AIS convergence, training curves.

Each function takes labelled data and returns ``(figure, caption)``; ``dlgm dbm plot`` reads the
run files and saves the figures."""
from __future__ import annotations

from typing import Sequence

import torch

from dlgm.figures import plt


def fantasy_particles_figure(grids: Sequence[tuple[str, torch.Tensor]]) -> tuple["plt.Figure", str]:
    """One mosaic per model of its particles ([n, 784] probabilities; the first 100 are shown)."""
    fig, axes = plt.subplots(1, len(grids), figsize=(4.5 * len(grids), 4.8), squeeze=False)
    for ax, (label, particles) in zip(axes[0], grids):
        imgs = particles[:100].reshape(-1, 28, 28)
        n = imgs.shape[0]
        side = int(n**0.5)
        while side * side > n:
            side -= 1
        mosaic = imgs[: side * side].reshape(side, side, 28, 28).permute(0, 2, 1, 3).reshape(side * 28, side * 28)
        ax.imshow(mosaic.numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(label)
        ax.axis("off")
    return fig, ("Fantasy particles of the trained DBMs: p(v | h1) of the persistent Markov chains at the end of "
                 "joint training (SH09, Figure 4 shows the same for MNIST).")


def ais_convergence_figure(curves: Sequence[tuple[str, Sequence[dict], float | None]]) -> tuple["plt.Figure", str]:
    """log Z with its +-3 sd bars against the number of intermediate distributions, one line per
    model (rows with temperatures, log_z, log_z_low (None: -inf), log_z_high), and the model's
    reverse-AIS log Z (or None) as a triangle at the full schedule."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for label, curve, reverse in curves:
        k = [c["temperatures"] for c in curve]
        z = [c["log_z"] for c in curve]
        lo = [c["log_z"] - c["log_z_low"] if c["log_z_low"] is not None else 0.0 for c in curve]
        hi = [c["log_z_high"] - c["log_z"] for c in curve]
        line = ax.errorbar(k, z, yerr=[lo, hi], marker="o", capsize=3, label=label)
        if reverse is not None:
            ax.plot([k[-1]], [reverse], marker="v", linestyle="none", color=line.lines[0].get_color(),
                    label=f"{label}, reverse AIS")
    _finish(ax, legend_size=8, xscale="log", xlabel="number of intermediate distributions (inverse temperatures)",
            ylabel="AIS estimate of log Z")
    return fig, ("AIS estimates of log Z against the length of the annealing schedule (100 runs; bars are "
                 "log(Z +- 3 sd) of the estimate). Estimates that still move with more temperatures have not "
                 "converged (SM08 Section 4.2, SH09 Section 4). Triangles: reverse AIS over the full schedule "
                 "from the model's own chains, which errs high where forward AIS errs low; log Z lies between "
                 "when the chains have reached the model.")


def training_curves_figure(curves: Sequence[tuple[str, Sequence[dict]]]) -> tuple["plt.Figure", str]:
    """Reconstruction error (RBMs, joint DBM training) or loss per epoch, one line per curve (rows
    as EpochLoop writes them, values as numbers or CSV strings)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for label, rows in curves:
        if not rows:
            continue
        key = "recon_error" if "recon_error" in rows[0] else "loss"
        ax.plot([int(r["epoch"]) for r in rows], [float(r[key]) for r in rows], label=f"{label} ({key})")
    _finish(ax, legend_size=7, xlabel="epoch", ylabel="per-epoch training value", yscale="log")
    return fig, ("Training curves: mean squared reconstruction error per image for the CD-k RBMs and the joint "
                 "DBM training (visible probabilities from the mean-field h1), cross-entropy for discriminative "
                 "fine-tuning.")


def _finish(ax, legend_size: int, **settings) -> None:
    ax.set(**settings)
    ax.legend(fontsize=legend_size)
    ax.grid(alpha=0.3)
