"""``python -m dlgm data prepare-fsdd | prepare-timit | prepare-timit-sample`` (the data group's speech
commands; see dlgm.cli.MODULES)."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dlgm.cli import params_json

log = logging.getLogger("dlgm.data")


def register(subparsers) -> None:
    cmd = subparsers.add_parser(
        "prepare-fsdd",
        help="FSDD recordings -> connected-digit train/dev/test.pt (123-dim fbank), meta.json, counts.json",
    )
    cmd.add_argument("--archive", required=True, type=Path, help="fsdd-v1.0.10-recordings.tar.gz")
    cmd.add_argument("--speakers", required=True, type=Path, help="speakers.tsv of the FSDD mirror")
    cmd.add_argument("--out", required=True, type=Path)
    cmd.add_argument("--params", type=params_json, default={},
                     help='{"fsdd": config data.fsdd, "features": config data.speech_features}')
    cmd.set_defaults(func=run_prepare_fsdd)

    cmd = subparsers.add_parser(
        "prepare-timit",
        help="TIMIT (LDC93S1) tree -> standard train/dev/core-test .pt with frame phone labels, meta.json, counts.json",
    )
    cmd.add_argument("--timit", required=True, type=Path, help="local LDC93S1 root (config data.timit_path)")
    cmd.add_argument("--meta", required=True, type=Path, help="folder with phones.60-48-39.map, dev_spk.list, test_spk.list")
    cmd.add_argument("--out", required=True, type=Path)
    cmd.add_argument("--params", type=params_json, default={}, help='{"features": config data.speech_features}')
    cmd.set_defaults(func=run_prepare_timit)

    cmd = subparsers.add_parser(
        "prepare-timit-sample",
        help="NLTK's TIMIT sample -> speaker-disjoint fold<k>/{train,dev,test}.pt, meta.json, counts.json",
    )
    cmd.add_argument("--archive", required=True, type=Path,
                     help="timit_sample.tar.gz (or a folder with the corpus in NLTK's or LDC's layout)")
    cmd.add_argument("--meta", required=True, type=Path, help="folder with phones.60-48-39.map")
    cmd.add_argument("--out", required=True, type=Path, help="folder to hold fold0/, fold1/, ...")
    cmd.add_argument("--params", type=params_json, default={},
                     help='{"timit_sample": config data.timit_sample, "features": config data.speech_features}')
    cmd.set_defaults(func=run_prepare_timit_sample)


def run_prepare_fsdd(args: argparse.Namespace) -> None:
    from dlgm.data.fsdd import prepare_fsdd

    counts = prepare_fsdd(args.archive, args.speakers, args.out, args.params.get("fsdd", {}),
                          args.params.get("features"))
    log.info("FSDD: %s", {name: c["utterances"] for name, c in counts.items()})


def run_prepare_timit(args: argparse.Namespace) -> None:
    from dlgm.data.timit import prepare_timit

    counts = prepare_timit(args.timit, args.meta, args.out, args.params.get("features"))
    log.info("TIMIT: %s", {name: c["utterances"] for name, c in counts.items()})


def run_prepare_timit_sample(args: argparse.Namespace) -> None:
    from dlgm.data.timit_sample import prepare_timit_sample

    counts = prepare_timit_sample(args.archive, args.meta, args.out, args.params.get("timit_sample"),
                                  args.params.get("features"))
    log.info("timit_sample: %s", {fold: {s: c["utterances"] for s, c in split.items()} for fold, split in counts.items()})
