"""Figures of the nn_crf section: SLL transition matrices, F1 per chunk/entity type, learning
curves, and WLL vs SLL against the paper. Reads only run outputs (metrics.json, model.pt, curve)."""
from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from dlgm.atomic import torch_load

from dlgm.figures import plt, save_figure

TASK_TITLES = {"chunk": "CoNLL-2000 chunking", "ner": "CoNLL-2003 NER", "pos_ptb": "PTB sample POS",
               "pos_wsj": "WSJ POS"}


def register_plot(subparsers) -> None:
    p = subparsers.add_parser("plot", help="figures of the window network runs")
    p.add_argument("--metrics", nargs="+", required=True, help="metrics.json of every run")
    p.add_argument("--papers", required=True, help="config/papers.yaml (paper values for WLL vs SLL)")
    p.add_argument("--out-dir", required=True, help="reports/figures/nn_crf")
    p.set_defaults(func=cmd_plot)


def _task(variant: str) -> tuple[str, str]:
    task, _, likelihood = variant.rpartition("_")
    return task, likelihood


def _headline(record: dict) -> tuple[str, float]:
    m = record["metrics"]
    return ("F1", m["test_f1"]) if "test_f1" in m else ("accuracy", m["test_accuracy"])


def cmd_plot(args) -> None:
    import yaml

    out = Path(args.out_dir)
    records = [(Path(p), json.loads(Path(p).read_text())) for p in args.metrics]
    papers = yaml.safe_load(Path(args.papers).read_text())["nn_crf"]["rows"]
    paper_value = {r["variant"]: r["paper_value"] for r in papers if r.get("paper_value") is not None}
    first_seed = {}
    for path, rec in sorted(records, key=lambda pr: pr[1]["seed"]):
        first_seed.setdefault(rec["variant"], (path, rec))
    plot_transitions(first_seed, out / "transitions.png")
    plot_per_type(first_seed, out / "per_type_f1.png")
    plot_curves(first_seed, out / "learning_curves.png")
    plot_wll_vs_sll(records, paper_value, out / "wll_vs_sll.png")


def plot_transitions(runs: dict, path: Path) -> None:
    sll = sorted(v for v in runs if v.endswith("_sll"))
    fig, axes = plt.subplots(1, max(len(sll), 1), figsize=(5.5 * max(len(sll), 1), 5), squeeze=False)
    for ax, variant in zip(axes[0], sll):
        saved = torch_load(runs[variant][0].parent / "model.pt")
        trans = saved["state_dict"]["crf.transitions"].numpy()
        names = saved["tags"]
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
    save_figure(fig, path, "Learned transition scores A[i, j] (tag i followed by tag j) of the NN+SLL "
                "models, first seed, learned from data alone (no tag-scheme constraint is built in). Red: "
                "transitions the data favours (B-X or I-X followed by I-X or E-X of the same type); blue: "
                "transitions it penalises.")


def plot_per_type(runs: dict, path: Path) -> None:
    tasks = sorted({_task(v)[0] for v, (_, r) in runs.items() if r.get("extra", {}).get("per_type_test")})
    fig, axes = plt.subplots(1, max(len(tasks), 1), figsize=(7 * max(len(tasks), 1), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        variants = [v for v in (f"{task}_wll", f"{task}_sll") if v in runs]
        types = sorted({t for v in variants for t in runs[v][1]["extra"]["per_type_test"]})
        width = 0.8 / max(len(variants), 1)
        for k, variant in enumerate(variants):
            per = runs[variant][1]["extra"]["per_type_test"]
            ax.bar(np.arange(len(types)) + k * width, [100 * per.get(t, {}).get("f1", 0.0) for t in types],
                   width, label=variant.rpartition("_")[2].upper())
        ax.set_xticks(np.arange(len(types)) + width * (len(variants) - 1) / 2, types, rotation=45)
        ax.set_ylabel("test F1 (%)")
        ax.set_title(TASK_TITLES.get(task, task))
        ax.legend()
    if not tasks:
        axes[0][0].text(0.5, 0.5, "no chunk/NER run", ha="center")
    save_figure(fig, path, "Test F1 per chunk type (CoNLL-2000) and entity type (CoNLL-2003 testb), "
                "NN+WLL vs NN+SLL, first seed (conlleval rules via seqeval).")


def plot_curves(runs: dict, path: Path) -> None:
    by_task = defaultdict(list)
    for variant in sorted(runs):
        by_task[_task(variant)[0]].append(variant)
    fig, axes = plt.subplots(1, max(len(by_task), 1), figsize=(5 * max(len(by_task), 1), 3.8), squeeze=False)
    for ax, (task, variants) in zip(axes[0], sorted(by_task.items())):
        for variant in variants:
            curve = runs[variant][0].parent / "curve.csv"
            if not curve.exists():
                continue
            rows = list(csv.DictReader(curve.open()))
            ax.plot([int(r["epoch"]) for r in rows], [100 * float(r["valid"]) for r in rows],
                    label=variant.rpartition("_")[2].upper())
        label, _ = _headline(runs[variants[0]][1])
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"validation {label} (%)")
        ax.set_title(TASK_TITLES.get(task, task))
        ax.legend()
    save_figure(fig, path, "Validation score per epoch (the model of the best epoch is kept), first seed.")


def plot_wll_vs_sll(records: list, paper_value: dict, path: Path) -> None:
    scores = defaultdict(list)
    for _, rec in records:
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
    save_figure(fig, path, "Test score of the word-level (WLL) and sentence-level (SLL, CRF) likelihood, "
                "mean over seeds; black marks: Collobert et al. 2011, Table 4 (no mark: no paper value).")
