"""``python -m dlgm data ...``: download and prepare the datasets (rules in workflow/rules/data.smk)."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dlgm.cli import add_command

log = logging.getLogger("dlgm.data")
CATALOGUE = "config/datasets.yaml"


def register(subparsers) -> None:
    p = add_command(subparsers, "download", run_download, "fetch one file: $DLGM_DATA_MIRROR/<dataset>/<file> "
                    "first, then the upstream URLs; verify sha256 (--params: the file's catalogue entry)",
                    "dataset", "file", "out", run=False)
    p.add_argument("--catalogue", default=CATALOGUE, help=f"read the entry from here without --params ({CATALOGUE})")
    p.add_argument("--attempts", type=int, default=3, help="tries per source for passing failures")
    add_command(subparsers, "prepare-mnist", run_prepare_mnist, "IDX files -> train/valid/train_full/test.pt + "
                "counts.json (--raw: the folder with the four MNIST .gz files)", "raw", "out", run=False)
    p = add_command(subparsers, "prepare-text", run_prepare_text, "CoNLL-2000 / CoNLL-2003 / PTB sample / full WSJ "
                    "-> <split>.pt + counts.json (--raw: for wsj_pos the Treebank-3 root)", "raw", "out", run=False)
    p.add_argument("--corpus", required=True, choices=["conll2000", "conll2003", "ptb_pos", "wsj_pos"])


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

    entry = args.params or catalogue_entry(args.catalogue, args.dataset, args.file)
    source = download(args.dataset, args.file, entry, Path(args.out), attempts=args.attempts)
    log.info("%s <- %s", args.out, source)


def run_prepare_mnist(args: argparse.Namespace) -> None:
    from dlgm.data.mnist import prepare_mnist

    counts = prepare_mnist(Path(args.raw), Path(args.out), valid_size=args.params["mnist_valid_size"])
    log.info("MNIST: %s", {name: c["n"] for name, c in counts.items()})


def run_prepare_text(args: argparse.Namespace) -> None:
    from dlgm.data.text import prepare_text

    counts = prepare_text(args.corpus, Path(args.raw), Path(args.out), args.params)
    log.info("%s: %s", args.corpus, {name: c["sentences"] for name, c in counts.items()})
