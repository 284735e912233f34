"""`python -m dlgm nn_crf ...`: Collobert et al. (2011) window network, NN+WLL and NN+SLL.

train  one task and likelihood: processed train/valid/test splits -> model.pt, metrics.json, curve
plot   transition matrices, F1 per chunk/entity type, learning curves, WLL vs SLL
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from dlgm.atomic import torch_load, torch_save
from dlgm.cli import params_json
from dlgm.metrics import write_metrics
from dlgm.nlp.batches import encode
from dlgm.nlp.features import Vocabulary
from dlgm.nlp.tags import convert
from dlgm.nlp.train import fit, predict, score, write_curve
from dlgm.nlp.window import WindowNetwork
from dlgm.runinfo import start_run

log = logging.getLogger("dlgm")
KINDS = ("chunk", "pos")  # chunk: F1 over chunks/entities (IOB/IOBES tags); pos: per-word accuracy
LIKELIHOODS = ("wll", "sll")
NEEDED = ("window", "word_dim", "caps_dim", "hidden", "dictionary_size", "digits_to_zero", "min_count",
          "tag_scheme", "epochs", "lr", "lr_fan_in", "lr_decay", "batch_size", "eval_batch_size", "train_limit",
          "eval_limit")


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train and score one window network (WLL or SLL)")
    p.add_argument("--params", type=params_json, required=True, help="network and training settings (JSON)")
    p.add_argument("--kind", choices=KINDS, required=True)
    p.add_argument("--likelihood", choices=LIKELIHOODS, required=True)
    p.add_argument("--variant", required=True, help="metrics variant name, e.g. chunk_sll")
    p.add_argument("--train", required=True)
    p.add_argument("--valid", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--model", required=True, help="model.pt to write")
    p.add_argument("--metrics", required=True, help="metrics.json to write")
    p.add_argument("--curve", required=True, help="curve.csv to write (one row per epoch)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.set_defaults(func=cmd_train)

    from dlgm.nlp.plots import register_plot

    register_plot(subparsers)


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
    missing = [k for k in NEEDED if k not in cfg]
    if missing:
        raise ValueError(f"--params lacks {missing}")
    device, _ = start_run(args.seed, args.device, args.threads)
    started = time.perf_counter()
    run_dir = Path(args.metrics).parent
    limits = {"train": cfg["train_limit"], "valid": cfg["eval_limit"], "test": cfg["eval_limit"]}
    splits = {name: load_split(getattr(args, name), args.kind, limits[name]) for name in limits}

    train_tags = splits["train"]["tags"]
    if args.kind == "chunk":
        train_tags = [convert(t, cfg["tag_scheme"]) for t in train_tags]
    tag_names = sorted({t for sentence in train_tags for t in sentence})
    vocab = Vocabulary.build(splits["train"]["words"], cfg["dictionary_size"], cfg["digits_to_zero"],
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
    rows = fit(model, train, lambda: evaluate("valid")[headline], cfg,
               checkpoint=run_dir / "checkpoint.pt", curve=Path(args.curve), run_config=run_config)
    write_curve(rows, args.curve)  # again: a resumed run that had no epoch left wrote none
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
