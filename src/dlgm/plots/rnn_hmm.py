"""Figures of the speech section: Viterbi state path over a spectrogram, error rates by system, phone confusion.

Each function takes what the runs wrote (already read) and returns ``(figure, caption)``; the
command layer (dlgm.commands.rnn_hmm) reads the files and saves through dlgm.figures.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np
import torch

from dlgm.figures import plt


def state_path_figure(example: dict, paths: dict[str, torch.Tensor]) -> tuple["plt.Figure", str]:
    """``example``: the GMM-HMM's test utterance (feats, aligned_states, decoded_states, phones,
    states_per_phone, hand_phones where the corpus has hand labels); ``paths``: system name -> that
    utterance's per-frame phone id from the system's decoding (-1 = CTC blank)."""
    feats = example["feats"].float().numpy()
    k, phones = example["states_per_phone"], example["phones"]
    rows = {}
    if "hand_phones" in example:
        rows["hand labels"] = example["hand_phones"]
    rows["GMM-HMM forced alignment"] = example["aligned_states"] // k
    if "decoded_states" in example:
        rows["gmm_hmm"] = example["decoded_states"] // k
    rows.update(paths)
    fig, axes = plt.subplots(1 + len(rows), 1, figsize=(12, 2.5 + 0.55 * len(rows)), sharex=True,
                             gridspec_kw={"height_ratios": [4] + [1] * len(rows)})
    axes[0].imshow(feats[:, :40].T, origin="lower", aspect="auto", cmap="magma")
    axes[0].set_ylabel("mel band")
    for ax, (name, row) in zip(axes[1:], rows.items()):
        row = row.long().numpy()[: len(feats)]
        ax.imshow(np.where(row < 0, np.nan, row)[None], aspect="auto", cmap="tab20", vmin=0, vmax=len(phones),
                  interpolation="nearest")
        starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
        for s in starts:
            if row[s] >= 0:
                ax.text(s, 0, phones[row[s]], fontsize=6, va="center")
        ax.set_yticks([0], [name], fontsize=7)
    axes[-1].set_xlabel("frame (10 ms)")
    return fig, ("A test utterance's log-mel spectrogram (top) and, per row, the phone of every frame: the hand "
                 "labels (TIMIT), the GMM-HMM's forced alignment to the transcript, and each system's Viterbi "
                 "path through the phone loop (CTC: its best label per frame, blanks empty). Rows: "
                 + ", ".join(rows) + ".")


def per_figure(records: Sequence[dict]) -> tuple["plt.Figure", str]:
    """``records``: the metrics.json records of every system and seed."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for rec in records:
        for key in ("test_per", "test_der"):
            if rec["metrics"].get(key) is not None:
                values[rec["variant"]][key].append(rec["metrics"][key])
    variants = sorted(values)
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(variants)), 3.5))
    width = 0.4
    for j, key in enumerate(("test_per", "test_der")):
        means = [100 * np.mean(values[v][key]) if values[v][key] else np.nan for v in variants]
        ax.bar(np.arange(len(variants)) + (j - 0.5) * width, means, width, label=key.replace("test_", "").upper())
    ax.set_xticks(np.arange(len(variants)), variants, rotation=20)
    ax.set_ylabel("test error (%)")
    ax.legend()
    return fig, "Test phone error rate (PER) and digit error rate (DER, FSDD) of each system, mean over seeds."


def confusion_figure(confusion: torch.Tensor, phones: Sequence[str]) -> tuple["plt.Figure", str]:
    """``confusion[reference, decoded]``: frame counts of the hybrid system on the test set."""
    conf = confusion.double().numpy()
    rates = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(0.25 * len(phones) + 3, 0.25 * len(phones) + 2.5))
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(phones)), phones, rotation=90, fontsize=6)
    ax.set_yticks(range(len(phones)), phones, fontsize=6)
    ax.set_xlabel("decoded phone")
    ax.set_ylabel("reference phone")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return fig, ("Frame-level phone confusion of the hybrid DBLSTM-HMM on the test set (rows normalised): "
                 "decoded phone against the reference (TIMIT labels, or the GMM-HMM forced alignment for FSDD).")
