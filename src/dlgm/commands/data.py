"""``python -m dlgm data ...``: download and prepare the datasets (rules in workflow/rules/data.smk)."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dlgm.cli import params_json

log = logging.getLogger("dlgm.data")
CATALOGUE = "config/datasets.yaml"


def register(subparsers) -> None:
    cmd = subparsers.add_parser(
        "download",
        help="fetch one file: $DLGM_DATA_MIRROR/<dataset>/<file> first, then the upstream URLs; verify sha256",
    )
    cmd.add_argument("--dataset", required=True)
    cmd.add_argument("--file", required=True, help="file name as in config/datasets.yaml")
    cmd.add_argument("--out", required=True, type=Path)
    cmd.add_argument("--params", type=params_json, help="the file's catalogue entry (the rule passes it)")
    cmd.add_argument("--catalogue", default=CATALOGUE, help=f"read the entry from here without --params ({CATALOGUE})")
    cmd.add_argument("--attempts", type=int, default=3, help="tries per source for passing failures")
    cmd.set_defaults(func=run_download)

    cmd = subparsers.add_parser("prepare-mnist", help="IDX files -> train/valid/train_full/test.pt + counts.json")
    cmd.add_argument("--raw", required=True, type=Path, help="folder with the four MNIST .gz files")
    cmd.add_argument("--out", required=True, type=Path)
    cmd.add_argument("--params", type=params_json, default={}, help='{"mnist_valid_size": 10000}')
    cmd.set_defaults(func=run_prepare_mnist)

    cmd = subparsers.add_parser(
        "prepare-text", help="CoNLL-2000 / CoNLL-2003 / PTB sample / full WSJ -> <split>.pt + counts.json"
    )
    cmd.add_argument("--corpus", required=True, choices=["conll2000", "conll2003", "ptb_pos", "wsj_pos"])
    cmd.add_argument("--raw", required=True, type=Path, help="raw folder (for wsj_pos: the Treebank-3 root)")
    cmd.add_argument("--out", required=True, type=Path)
    cmd.add_argument("--params", type=params_json, default={}, help="the config's data section")
    cmd.set_defaults(func=run_prepare_text)


def catalogue_entry(path: str, dataset: str, name: str) -> dict:
    import yaml

    with open(path) as handle:
        catalogue = yaml.safe_load(handle)
    if dataset not in catalogue:
        raise KeyError(f"{path}: no dataset {dataset!r} (have {', '.join(catalogue)})")
    files = catalogue[dataset].get("files", {})
    if name not in files:
        raise KeyError(f"{path}: dataset {dataset!r} has no file {name!r} (have {', '.join(files)})")
    return files[name]


def run_download(args: argparse.Namespace) -> None:
    from dlgm.data.download import download

    entry = args.params if args.params is not None else catalogue_entry(args.catalogue, args.dataset, args.file)
    source = download(args.dataset, args.file, entry, args.out, attempts=args.attempts)
    log.info("%s <- %s", args.out, source)


def run_prepare_mnist(args: argparse.Namespace) -> None:
    from dlgm.data.mnist import prepare_mnist

    counts = prepare_mnist(args.raw, args.out, valid_size=args.params.get("mnist_valid_size", 10000))
    log.info("MNIST: %s", {name: c["n"] for name, c in counts.items()})


def run_prepare_text(args: argparse.Namespace) -> None:
    from dlgm.data.text import prepare_text

    counts = prepare_text(args.corpus, args.raw, args.out, args.params)
    log.info("%s: %s", args.corpus, {name: c["sentences"] for name, c in counts.items()})
