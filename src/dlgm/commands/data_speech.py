"""``python -m dlgm data prepare-fsdd | prepare-timit | prepare-timit-sample`` (the data group's speech
commands; see dlgm.cli.MODULES)."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dlgm.cli import add_command

log = logging.getLogger("dlgm.data")


def register(subparsers) -> None:
    add_command(subparsers, "prepare-fsdd", run_prepare_fsdd,
                "FSDD recordings -> connected-digit train/dev/test.pt (123-dim fbank), meta.json, counts.json "
                "(--params: data.fsdd as fsdd, data.speech_features as features; --speakers: the mirror's "
                "speakers.tsv)", "archive", "speakers", "out", run=False)
    add_command(subparsers, "prepare-timit", run_prepare_timit,
                "TIMIT (LDC93S1) tree -> standard train/dev/core-test .pt with frame phone labels, meta.json, "
                "counts.json (--timit: config data.timit_path; --meta: folder with phones.60-48-39.map, "
                "dev_spk.list, test_spk.list)", "timit", "meta", "out", run=False)
    add_command(subparsers, "prepare-timit-sample", run_prepare_timit_sample,
                "NLTK's TIMIT sample -> speaker-disjoint fold<k>/{train,dev,test}.pt, meta.json, counts.json "
                "(--archive: timit_sample.tar.gz or a folder in NLTK's or LDC's layout; --meta: folder with "
                "phones.60-48-39.map)", "archive", "meta", "out", run=False)


def run_prepare_fsdd(args: argparse.Namespace) -> None:
    from dlgm.data.fsdd import prepare_fsdd

    counts = prepare_fsdd(Path(args.archive), Path(args.speakers), Path(args.out), args.params.get("fsdd", {}),
                          args.params.get("features"))
    log.info("FSDD: %s", {name: c["utterances"] for name, c in counts.items()})


def run_prepare_timit(args: argparse.Namespace) -> None:
    from dlgm.data.timit import prepare_timit

    counts = prepare_timit(Path(args.timit), Path(args.meta), Path(args.out), args.params.get("features"))
    log.info("TIMIT: %s", {name: c["utterances"] for name, c in counts.items()})


def run_prepare_timit_sample(args: argparse.Namespace) -> None:
    from dlgm.data.timit_sample import prepare_timit_sample

    counts = prepare_timit_sample(Path(args.archive), Path(args.meta), Path(args.out), args.params.get("timit_sample"),
                                  args.params.get("features"))
    log.info("timit_sample: %s", {fold: {s: c["utterances"] for s, c in split.items()} for fold, split in counts.items()})
