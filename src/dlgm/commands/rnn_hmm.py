"""`python -m dlgm rnn_hmm ...`: GMM-HMM, hybrid DBLSTM-HMM and CTC on FSDD / TIMIT, and the figures.

gmm-hmm   Baum-Welch GMM-HMM; writes model.pt, alignments.pt (frame state targets), example.pt
hybrid    BLSTM on the GMM-HMM alignments, decoded with scaled likelihoods through the HMM
ctc       BLSTM trained with CTC over phones; greedy and prefix-beam decoding
plot      spectrogram with the Viterbi state path, PER by system, phone confusion
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from dlgm.atomic import torch_load, torch_save
from dlgm.cli import params_json
from dlgm.metrics import write_metrics
from dlgm.runinfo import start_run

log = logging.getLogger("dlgm")


def _common(parser, needs_gmm: bool = False) -> None:
    parser.add_argument("--params", type=params_json, required=True, help="the system's config section (JSON)")
    parser.add_argument("--data", required=True, help="processed corpus folder ({train,dev,test}.pt + meta.json)")
    parser.add_argument("--variant", required=True, help="e.g. fsdd_hybrid")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", required=True, help="metrics.json to write; the run folder is its parent")
    if needs_gmm:
        parser.add_argument("--gmm", required=True, help="the GMM-HMM run folder (model.pt, alignments.pt)")


def register(subparsers) -> None:
    for name, func, needs_gmm in (("gmm-hmm", _gmm_hmm, False), ("hybrid", _hybrid, True), ("ctc", _ctc, False)):
        p = subparsers.add_parser(name, help=func.__doc__)
        _common(p, needs_gmm)
        p.set_defaults(func=func)
    p = subparsers.add_parser("plot", help=_plot.__doc__)
    p.add_argument("--metrics", nargs="+", required=True, help="metrics.json of every system to compare")
    p.add_argument("--gmm", required=True, help="a GMM-HMM run folder (example.pt)")
    p.add_argument("--hybrid", required=True, help="a hybrid run folder (extras.pt with the confusion)")
    p.add_argument("--figures", required=True, help="folder for the PNGs and captions")
    p.add_argument("--prefix", default="", help="file name prefix, e.g. fsdd_")
    p.set_defaults(func=_plot)


def _start(args):
    from dlgm.speech.corpus import load_corpus

    device, _ = start_run(args.seed, args.device, args.threads)
    corpus = load_corpus(args.data, utterance_cmvn=bool(args.params.get("utterance_cmvn", False)))
    run_dir = Path(args.out).parent
    run_dir.mkdir(parents=True, exist_ok=True)
    log.info("%s seed %d on %s: %s", args.variant, args.seed, device,
             {s: len(corpus.splits[s]["feats"]) for s in ("train", "dev", "test")})
    return corpus, device, run_dir, time.perf_counter()


def _finish(args, metrics, device, started) -> None:
    log.info("%s: %s", args.variant, {k: round(v, 4) for k, v in metrics.items()})
    write_metrics(args.out, paper="rnn_hmm", variant=args.variant, seed=args.seed, split="test", metrics=metrics,
                  wall_seconds=time.perf_counter() - started, device=device, config=args.params)


def _gmm_hmm(args) -> None:
    """Train the GMM-HMM by Baum-Welch, align, decode."""
    from dlgm.speech.systems import run_gmm_hmm

    corpus, device, run_dir, started = _start(args)
    metrics, out = run_gmm_hmm(corpus, args.params, device, run_dir, args.seed)
    torch_save({"hmm": {k: v.cpu() for k, v in out["model"].items()}, "phones": corpus.phones}, run_dir / "model.pt")
    torch_save(out["alignments"], run_dir / "alignments.pt")
    torch_save(out["example"], run_dir / "example.pt")
    _finish(args, metrics, device, started)


def _hybrid(args) -> None:
    """Train the hybrid DBLSTM-HMM on the GMM-HMM alignments and decode."""
    from dlgm.speech.systems import run_hybrid

    corpus, device, run_dir, started = _start(args)
    gmm = Path(args.gmm)
    gmm_state = torch_load(gmm / "model.pt")["hmm"]
    alignments = torch_load(gmm / "alignments.pt")
    metrics, out = run_hybrid(corpus, args.params, device, run_dir, args.seed, gmm_state, alignments)
    torch_save({"model": {k: v.cpu() for k, v in out["model"].items()}, "priors": out["priors"]}, run_dir / "model.pt")
    torch_save({"confusion": out["confusion"], "phones": out["phones"]}, run_dir / "extras.pt")
    _finish(args, metrics, device, started)


def _ctc(args) -> None:
    """Train the CTC BLSTM and decode."""
    from dlgm.speech.systems import run_ctc

    corpus, device, run_dir, started = _start(args)
    metrics, out = run_ctc(corpus, args.params, device, run_dir, args.seed)
    torch_save({"model": {k: v.cpu() for k, v in out["model"].items()}}, run_dir / "model.pt")
    _finish(args, metrics, device, started)


def _plot(args) -> None:
    """Figures of the speech section."""
    from dlgm.speech.plots import confusion_figure, per_figure, state_path_figure

    out, pre = Path(args.figures), args.prefix
    state_path_figure(torch_load(Path(args.gmm) / "example.pt"), out / f"{pre}state_path.png")
    per_figure(args.metrics, out / f"{pre}per_by_system.png")
    confusion_figure(torch_load(Path(args.hybrid) / "extras.pt"), out / f"{pre}phone_confusion.png")
