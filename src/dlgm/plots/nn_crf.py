"""Figures of the nn_crf section: SLL transition matrices, F1 per chunk/entity type, learning
curves, and WLL vs SLL against the paper.

Each function takes what the runs wrote (already read; runs keyed by variant, first seed) and
returns ``(figure, caption)``; the command layer (dlgm.commands.nn_crf) reads the files and saves
through dlgm.figures.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Mapping, Sequence

import numpy as np
import torch

from dlgm.figures import plt

TASK_TITLES = {"chunk": "CoNLL-2000 chunking", "ner": "CoNLL-2003 NER", "pos_ptb": "PTB sample POS",
               "pos_wsj": "WSJ POS"}


def _task(variant: str) -> tuple[str, str]:
    task, _, likelihood = variant.rpartition("_")
    return task, likelihood


def _headline(record: dict) -> tuple[str, float]:
    m = record["metrics"]
    return ("F1", m["test_f1"]) if "test_f1" in m else ("accuracy", m["test_accuracy"])


def transitions_figure(transitions: Mapping[str, tuple[torch.Tensor, Sequence[str]]]) -> tuple["plt.Figure", str]:
    """``transitions``: SLL variant -> (its CRF's transition scores A[i, j], the tag names)."""
    sll = sorted(transitions)
    fig, axes = plt.subplots(1, max(len(sll), 1), figsize=(5.5 * max(len(sll), 1), 5), squeeze=False)
    for ax, variant in zip(axes[0], sll):
        scores, names = transitions[variant]
        trans = scores.numpy()
        lim = float(np.abs(trans).max()) or 1.0
        im = ax.imshow(trans, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"{TASK_TITLES.get(_task(variant)[0], variant)}: A[i, j]")
        if len(names) <= 50:
            ax.set_xticks(range(len(names)), names, rotation=90, fontsize=5)
            ax.set_yticks(range(len(names)), names, fontsize=5)
        ax.set_xlabel("next tag j")
        ax.set_ylabel("tag i")
        fig.colorbar(im, ax=ax, shrink=0.7)
    if not sll:
        axes[0][0].text(0.5, 0.5, "no SLL run", ha="center")
    return fig, ("Learned transition scores A[i, j] (tag i followed by tag j) of the NN+SLL "
                 "models, first seed, learned from data alone (no tag-scheme constraint is built in). Red: "
                 "transitions the data favours (B-X or I-X followed by I-X or E-X of the same type); blue: "
                 "transitions it penalises.")


def per_type_figure(runs: Mapping[str, dict]) -> tuple["plt.Figure", str]:
    """``runs``: variant -> its metrics record (``extra.per_type_test`` holds the F1 per type)."""
    tasks = sorted({_task(v)[0] for v, r in runs.items() if r.get("extra", {}).get("per_type_test")})
    fig, axes = plt.subplots(1, max(len(tasks), 1), figsize=(7 * max(len(tasks), 1), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        variants = [v for v in (f"{task}_wll", f"{task}_sll") if v in runs]
        types = sorted({t for v in variants for t in runs[v]["extra"]["per_type_test"]})
        width = 0.8 / max(len(variants), 1)
        for k, variant in enumerate(variants):
            per = runs[variant]["extra"]["per_type_test"]
            ax.bar(np.arange(len(types)) + k * width, [100 * per.get(t, {}).get("f1", 0.0) for t in types],
                   width, label=variant.rpartition("_")[2].upper())
        ax.set_xticks(np.arange(len(types)) + width * (len(variants) - 1) / 2, types, rotation=45)
        ax.set_ylabel("test F1 (%)")
        ax.set_title(TASK_TITLES.get(task, task))
        ax.legend()
    if not tasks:
        axes[0][0].text(0.5, 0.5, "no chunk/NER run", ha="center")
    return fig, ("Test F1 per chunk type (CoNLL-2000) and entity type (CoNLL-2003 testb), "
                 "NN+WLL vs NN+SLL, first seed (conlleval rules via seqeval).")


def curves_figure(curves: Mapping[str, Sequence[Mapping[str, str]]],
                  runs: Mapping[str, dict]) -> tuple["plt.Figure", str]:
    """``curves``: variant -> its curve rows (``epoch``, ``valid``); ``runs``: variant -> metrics record."""
    by_task = defaultdict(list)
    for variant in sorted(runs):
        by_task[_task(variant)[0]].append(variant)
    fig, axes = plt.subplots(1, max(len(by_task), 1), figsize=(5 * max(len(by_task), 1), 3.8), squeeze=False)
    for ax, (task, variants) in zip(axes[0], sorted(by_task.items())):
        for variant in variants:
            rows = curves[variant]
            ax.plot([int(r["epoch"]) for r in rows], [100 * float(r["valid"]) for r in rows],
                    label=variant.rpartition("_")[2].upper())
        label, _ = _headline(runs[variants[0]])
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"validation {label} (%)")
        ax.set_title(TASK_TITLES.get(task, task))
        ax.legend()
    return fig, "Validation score per epoch (the model of the best epoch is kept), first seed."


def wll_vs_sll_figure(records: Sequence[dict], paper_value: Mapping[str, float]) -> tuple["plt.Figure", str]:
    """``records``: the metrics record of every run (all seeds); ``paper_value``: variant -> paper's score."""
    scores = defaultdict(list)
    for rec in records:
        scores[rec["variant"]].append(_headline(rec)[1])
    tasks = sorted({_task(v)[0] for v in scores})
    fig, ax = plt.subplots(figsize=(1.8 + 1.8 * len(tasks), 4))
    for k, likelihood in enumerate(("wll", "sll")):
        xs = np.arange(len(tasks)) + (k - 0.5) * 0.38
        means = [100 * np.mean(scores.get(f"{t}_{likelihood}", [np.nan])) for t in tasks]
        ax.bar(xs, means, 0.36, label=f"NN+{likelihood.upper()} (ours)")
        paper = [100 * paper_value.get(f"{t}_{likelihood}", np.nan) for t in tasks]
        ax.scatter(xs, paper, marker="_", s=400, color="black", zorder=3,
                   label="paper" if k == 0 else None)
    ax.set_xticks(np.arange(len(tasks)), [TASK_TITLES.get(t, t) for t in tasks], rotation=15)
    ax.set_ylabel("test F1 / accuracy (%)")
    finite = [100 * v for vs in scores.values() for v in vs] + [100 * v for v in paper_value.values()]
    ax.set_ylim(max(min(finite) - 5, 0), 100)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig, ("Test score of the word-level (WLL) and sentence-level (SLL, CRF) likelihood, "
                 "mean over seeds; black marks: Collobert et al. 2011, Table 4 (no mark: no paper value).")
