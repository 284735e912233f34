"""``python -m dlgm <group> <command> ...``: the one place where data, models and report meet.

Each group lives in ``dlgm.commands.<group>`` (the data group also in ``data_speech``), and each of
its modules exposes ``register(subparsers)``; every command gets its hyperparameters as JSON
(``--params``) from the Snakemake rule's params, declared once through ``add_command``.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys

GROUPS = {
    "data": "download and prepare the datasets",
    "dbn": "deep belief nets (Hinton, Osindero & Teh 2006; Hinton & Salakhutdinov 2006)",
    "dbm": "deep Boltzmann machines and AIS (Salakhutdinov & Hinton 2009)",
    "rnn_hmm": "GMM-HMM, hybrid BLSTM-HMM and CTC speech recognition (Graves et al. 2013)",
    "nn_crf": "window network with word- and sentence-level likelihood (Collobert et al. 2011)",
    "report": "gather metrics and figures into reports/index.html",
}


# a group whose commands live in more than one module (so that one rule's code inputs stay small)
MODULES = {"data": ("dlgm.commands.data", "dlgm.commands.data_speech")}


def params_json(text: str) -> dict:
    """argparse type for ``--params``: a JSON object, with an error that shows what was wrong."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"--params is not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--params must be a JSON object")
    return value


def add_command(subparsers, name: str, func, help_text: str, *paths: str, optional: tuple[str, ...] = (),
                run: bool = True) -> argparse.ArgumentParser:
    """One subcommand, the same way for every group: ``--params`` (the rule's config as JSON; the
    config schema is the only check of its keys), with ``run`` also ``--seed``, ``--device`` and
    ``--threads``, and a required ``--<path>`` for each of ``paths`` (``optional``: may be left out).
    A path name may end in ``+`` for one or more paths (``--inputs a b c``)."""
    p = subparsers.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--params", type=params_json, default={}, help="the rule's config section as JSON")
    if run:
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
        p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    for path in paths:
        many = path.endswith("+")
        p.add_argument(f"--{path.rstrip('+')}", required=True, nargs="+" if many else None)
    for path in optional:
        p.add_argument(f"--{path}", default=None)
    p.set_defaults(func=func)
    return p


def start(args: argparse.Namespace):
    """What every training command does first (threads, device, seeds); returns (device, generator)."""
    from dlgm.runinfo import device_name, start_run

    device, gen = start_run(args.seed, args.device, args.threads)
    logging.getLogger("dlgm").info("device %s, seed %d", device_name(device), args.seed)
    return device, gen


def _requested_group(argv: list[str]) -> str | None:
    """The group named on the command line, if any (its module is the only one worth importing)."""
    words = [arg for arg in argv if not arg.startswith("-")]
    return words[0] if words and words[0] in GROUPS else None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The full parser; given ``argv`` naming a group, only that group's module is imported, so that
    a data job does not pay for importing every model's code (seconds per job)."""
    wanted = _requested_group(argv) if argv is not None else None
    parser = argparse.ArgumentParser(prog="python -m dlgm", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP")
    for name, help_text in GROUPS.items():
        group = groups.add_parser(name, help=help_text, description=help_text)
        if wanted in (None, name):
            commands = group.add_subparsers(dest="command", required=True, metavar="COMMAND")
            for module in MODULES.get(name, (f"dlgm.commands.{name}",)):
                importlib.import_module(module).register(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    try:
        args.func(args)
    except Exception as err:  # one clear line for the rule's log, then a non-zero exit
        logging.getLogger("dlgm").error("%s: %s", type(err).__name__, err)
        if args.verbose:
            raise
        sys.exit(1)
