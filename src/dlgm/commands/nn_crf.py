"""`python -m dlgm nn_crf ...`: Collobert et al. (2011) window network, NN+WLL and NN+SLL.

train  one task and likelihood: processed train/valid/test splits -> model.pt, metrics.json, curve
plot   transition matrices, F1 per chunk/entity type, learning curves, WLL vs SLL
"""
from __future__ import annotations

import csv
import itertools
import logging
import time
from pathlib import Path

from dlgm.atomic import torch_load, torch_save
from dlgm.cli import add_command, start
from dlgm.metrics import write_metrics
from dlgm.nlp.batches import encode
from dlgm.nlp.features import Vocabulary
from dlgm.nlp.tags import convert
from dlgm.nlp.train import fit, predict, score
from dlgm.nlp.window import WindowNetwork
from dlgm.training import RunLoops, resume_identity

log = logging.getLogger("dlgm")
KINDS = ("chunk", "pos")  # chunk: F1 over chunks/entities (IOB/IOBES tags); pos: per-word accuracy
LIKELIHOODS = ("wll", "sll")


def register(subparsers) -> None:
    p = add_command(subparsers, "train", cmd_train, "train and score one window network (WLL or SLL)",
                    "train", "valid", "test", "model", "metrics", "curve")
    p.add_argument("--kind", choices=KINDS, required=True)
    p.add_argument("--likelihood", choices=LIKELIHOODS, required=True)
    p.add_argument("--variant", required=True, help="metrics variant name, e.g. chunk_sll")
    p.add_argument("--dictionary-from", nargs="*", default=[],
                   help="processed training splits of other corpora whose words the dictionary also counts")
    add_command(subparsers, "plot", cmd_plot, "figures of the window network runs (--metrics, --models and "
                "--curves name the same runs in the same order)", "metrics+", "models+", "curves+", "papers",
                "transitions", "per-type-f1", "learning-curves", "wll-vs-sll", run=False)


def load_split(path: str, kind: str, limit: int = 0) -> dict:
    """A processed split; ``limit`` > 0 keeps its first ``limit`` sentences (smoke runs)."""
    data = torch_load(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of sentence lists, got {type(data).__name__}")
    for key in ("words", "tags"):
        if key not in data:
            raise ValueError(f"{path}: missing key {key!r} (expected words and tags lists)")
    if len(data["words"]) != len(data["tags"]):
        raise ValueError(f"{path}: {len(data['words'])} sentences of words but {len(data['tags'])} of tags")
    if kind == "chunk" and "tags_iob1" in data:
        data["gold"] = data["tags_iob1"]  # score against the original encoding (conlleval reads IOB1)
    else:
        data["gold"] = data["tags"]
    if limit:
        data = {key: value[:limit] for key, value in data.items()}
    return data


def cmd_train(args) -> None:
    cfg = args.params
    device, _ = start(args)
    started = time.perf_counter()
    run_dir = Path(args.metrics).parent
    limits = {"train": cfg["train_limit"], "valid": cfg["eval_limit"], "test": cfg["eval_limit"]}
    splits = {name: load_split(getattr(args, name), args.kind, limits[name]) for name in limits}

    train_tags = splits["train"]["tags"]
    if args.kind == "chunk":
        train_tags = [convert(t, cfg["tag_scheme"]) for t in train_tags]
    tag_names = sorted({t for sentence in train_tags for t in sentence})
    own = "own" in cfg["dictionary_from"]  # the run's own training words count towards the dictionary
    corpora = len(cfg["dictionary_from"]) - own
    if corpora != len(args.dictionary_from):
        raise ValueError(f"dictionary_from {cfg['dictionary_from']} names {corpora} "
                         f"corpora but --dictionary-from gives {len(args.dictionary_from)} files")
    counted = [load_split(p, args.kind)["words"] for p in args.dictionary_from]
    if own:
        counted.insert(0, splits["train"]["words"])
    vocab = Vocabulary.build(itertools.chain.from_iterable(counted), cfg["dictionary_size"], cfg["digits_to_zero"],
                             cfg["min_count"])
    log.info("%s: %d training sentences, dictionary %d words, %d tags, device %s", args.variant,
             len(train_tags), len(vocab), len(tag_names), device)
    train = encode(splits["train"]["words"], vocab, device, train_tags, {t: i for i, t in enumerate(tag_names)},
                   name=args.train)
    encoded = {name: encode(splits[name]["words"], vocab, device, name=getattr(args, name))
               for name in ("valid", "test")}
    model = WindowNetwork(len(vocab), len(tag_names), window=cfg["window"], word_dim=cfg["word_dim"],
                          caps_dim=cfg["caps_dim"], hidden=cfg["hidden"],
                          sentence_level=args.likelihood == "sll").to(device)

    def evaluate(name: str) -> dict:
        predicted = [[tag_names[i] for i in s] for s in predict(model, encoded[name], cfg["eval_batch_size"])]
        return score(args.kind, splits[name]["gold"], predicted)

    headline = "f1" if args.kind == "chunk" else "accuracy"
    run_config = {**cfg, "kind": args.kind, "likelihood": args.likelihood, "seed": args.seed}
    identity = resume_identity(run_config, [args.train, args.valid, args.test], code="dlgm.commands.nn_crf:cmd_train")
    rows = fit(model, train, lambda: evaluate("valid")[headline], cfg,
               RunLoops(run_dir, identity, curves={"train": Path(args.curve)}))
    results = {name: evaluate(name) for name in ("valid", "test")}
    metrics = {f"{name}_{key}": value for name, r in results.items() for key, value in r.items()
               if key in ("f1", "accuracy")}
    best_epoch = max(rows, key=lambda r: r["valid"])["epoch"]
    torch_save({"state_dict": model.state_dict(), "vocab": vocab.words, "digits_to_zero": vocab.digits_to_zero,
                "tags": tag_names, "config": run_config}, args.model)
    extra = {"best_epoch": best_epoch, "epochs": len(rows), "tags": tag_names,
             "per_type_test": results["test"].get("per_type", {})}
    write_metrics(args.metrics, paper="nn_crf", variant=args.variant, seed=args.seed, split="test",
                  metrics=metrics, wall_seconds=time.perf_counter() - started, device=device,
                  config=run_config, extra=extra)
    log.info("%s: %s (best epoch %d)", args.variant,
             " ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())), best_epoch)


def cmd_plot(args) -> None:
    import yaml

    from dlgm.figures import save_figure
    from dlgm.metrics import read_metrics
    from dlgm.plots.nn_crf import curves_figure, per_type_figure, transitions_figure, wll_vs_sll_figure

    if not len(args.metrics) == len(args.models) == len(args.curves):
        raise ValueError(f"--metrics, --models and --curves must name the same runs in the same order "
                         f"(got {len(args.metrics)}, {len(args.models)} and {len(args.curves)} files)")
    records = [read_metrics(p) for p in args.metrics]
    with open(args.papers) as handle:
        rows = yaml.safe_load(handle)["nn_crf"]["rows"]
    paper_value = {r["variant"]: r["paper_value"] for r in rows if r.get("paper_value") is not None}
    first_seed = {}  # variant -> (record, model file, curve file) of its lowest seed
    for run in sorted(zip(records, args.models, args.curves), key=lambda run: run[0]["seed"]):
        first_seed.setdefault(run[0]["variant"], run)
    runs = {variant: record for variant, (record, _, _) in first_seed.items()}
    transitions = {}
    for variant, (_, model, _) in first_seed.items():
        if variant.endswith("_sll"):
            saved = torch_load(model)
            transitions[variant] = (saved["state_dict"]["crf.transitions"], saved["tags"])
    curves = {}
    for variant, (_, _, curve) in first_seed.items():
        with open(curve, newline="") as handle:
            curves[variant] = list(csv.DictReader(handle))
    figures = ((transitions_figure(transitions), args.transitions), (per_type_figure(runs), args.per_type_f1),
               (curves_figure(curves, runs), args.learning_curves),
               (wll_vs_sll_figure(records, paper_value), args.wll_vs_sll))
    for (fig, caption), path in figures:
        save_figure(fig, path, caption)
