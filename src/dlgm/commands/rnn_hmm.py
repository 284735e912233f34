"""`python -m dlgm rnn_hmm ...`: GMM-HMM, hybrid DBLSTM-HMM, full-sum hybrid and CTC on FSDD / TIMIT,
the summary over cross-validation folds, and the figures.

gmm-hmm   Baum-Welch GMM-HMM; writes --model, --alignments (frame state targets), --example
hybrid    BLSTM on the GMM-HMM alignments (or hand labels), decoded with scaled likelihoods through the HMM
fullsum   the same BLSTM trained by the transcript HMM's full-sum likelihood (--hybrid: from that trained
          hybrid's weights), decoded as the hybrid
ctc       BLSTM trained with CTC over phones; greedy and prefix-beam decoding
folds     mean and spread over folds of one system's metrics (one metrics.json out)
plot      spectrogram with the Viterbi state path, PER by system, phone confusion

Every file a command reads or writes is named on its command line (the rule's inputs and outputs);
checkpoints and curves go beside --metrics (dlgm.training.RunLoops). With ``--interim OUT`` a
network system's command trains nothing: it takes the run's latest checkpoints (written by the same
command line, which may still be running), decodes its net best on dev as the finished run would,
and writes only OUT, a metrics record whose extra.interim says how many epochs each stage had done.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from dlgm.atomic import torch_load, torch_save
from dlgm.cli import add_command, start
from dlgm.metrics import write_metrics
from dlgm.training import RunLoops, resume_identity

log = logging.getLogger("dlgm")


def register(subparsers) -> None:
    def system(name, func, help_text, *paths, optional=()):
        p = add_command(subparsers, name, func, help_text, "data", *paths, "metrics", "model", optional=optional)
        p.add_argument("--variant", required=True, help="e.g. fsdd_hybrid")

    system("gmm-hmm", cmd_gmm_hmm, "train the GMM-HMM by Baum-Welch, align, decode", "alignments", "example")
    system("hybrid", cmd_hybrid, "train the hybrid DBLSTM-HMM on the GMM-HMM alignments and decode",
           "gmm", "alignments", "extras", optional=("interim",))
    system("fullsum", cmd_fullsum, "train the BLSTM by the full-sum HMM likelihood and decode as the hybrid",
           "gmm", "alignments", "extras", optional=("hybrid", "interim"))
    system("ctc", cmd_ctc, "train the CTC BLSTM and decode", "extras", optional=("interim",))
    p = add_command(subparsers, "folds", cmd_folds, "mean and spread over folds of one system's runs", "metrics+",
                    "out", run=False)
    p.add_argument("--variant", required=True, help="e.g. timit_sample_hybrid")
    add_command(subparsers, "plot", cmd_plot, "figures of the speech section", "metrics+", "example", "extras+",
                "state-path", "per-by-system", "phone-confusion", run=False)


def _start(args, code: str, inputs=()):
    """Device, corpus and the stage loops of one system's run (checkpoints beside --metrics)."""
    from dlgm.speech.corpus import corpus_files, load_corpus

    device, _ = start(args)
    corpus = load_corpus(args.data, utterance_cmvn=bool(args.params.get("utterance_cmvn", False)))
    run_dir = Path(args.metrics).parent
    interim = bool(getattr(args, "interim", None))
    if not interim:
        run_dir.mkdir(parents=True, exist_ok=True)
    identity = resume_identity({**args.params, "seed": args.seed}, [*corpus_files(args.data), *inputs], code=code)
    log.info("%s seed %d: %s", args.variant, args.seed, {s: len(corpus.splits[s]["feats"]) for s in ("train", "dev", "test")})
    return corpus, device, RunLoops(run_dir, identity, frozen=interim), time.perf_counter()


def _finish(args, metrics, device, started, loops: RunLoops, *artefacts) -> None:
    """Save the artefacts ((path, object) pairs) and write --metrics; with --interim, only the interim record."""
    log.info("%s: %s", args.variant, {k: round(v, 4) for k, v in metrics.items()})
    record = dict(paper="rnn_hmm", variant=args.variant, seed=args.seed, split="test", metrics=metrics,
                  wall_seconds=time.perf_counter() - started, device=device, config=args.params)
    if getattr(args, "interim", None):
        write_metrics(args.interim, **record, extra={"interim": [_stage_progress(loop) for loop in loops.made]})
        return
    for path, obj in artefacts:
        torch_save(obj, path)
    write_metrics(args.metrics, **record)


def _stage_progress(loop) -> dict:
    """How far a stage had trained at the checkpoint an interim evaluation read, and its best dev epoch."""
    out = {"stage": loop.stage, "epochs_done": len(loop.rows), "epochs": loop.epochs}
    dev = [row for row in loop.rows if "dev_loss" in row]
    if dev:
        best = min(dev, key=lambda row: row["dev_loss"])
        out.update(best_dev_epoch=best["epoch"], best_dev_loss=best["dev_loss"])
    return out


def cmd_gmm_hmm(args) -> None:
    from dlgm.speech.systems import run_gmm_hmm

    corpus, device, loops, started = _start(args, "dlgm.commands.rnn_hmm:cmd_gmm_hmm")
    metrics, out = run_gmm_hmm(corpus, args.params, device, loops)
    _finish(args, metrics, device, started, loops,
            (args.model, {"hmm": {k: v.cpu() for k, v in out["model"].items()}, "phones": corpus.phones}),
            (args.alignments, out["alignments"]), (args.example, out["example"]))


def cmd_hybrid(args) -> None:
    from dlgm.speech.systems import run_hybrid

    corpus, device, loops, started = _start(args, "dlgm.commands.rnn_hmm:cmd_hybrid", [args.gmm, args.alignments])
    gmm_state = torch_load(args.gmm)["hmm"]
    alignments = torch_load(args.alignments)
    metrics, out = run_hybrid(corpus, args.params, device, loops, args.seed, gmm_state, alignments)
    _finish(args, metrics, device, started, loops, (args.model, _weights(out)),
            (args.extras, {"confusion": out["confusion"], "phones": out["phones"], "example_path": out["example_path"],
                           "variant": args.variant}))


def _weights(out: dict) -> dict:
    return {"model": {k: v.cpu() for k, v in out["model"].items()}, "priors": out["priors"]}


def cmd_fullsum(args) -> None:
    from dlgm.speech.systems import run_fullsum

    hybrid = _hybrid_weights(args.hybrid) if args.hybrid else None  # the trained hybrid's model.pt (init_from_hybrid)
    starts = [args.hybrid] if args.hybrid else []
    corpus, device, loops, started = _start(args, "dlgm.commands.rnn_hmm:cmd_fullsum", [args.gmm, args.alignments, *starts])
    metrics, out = run_fullsum(corpus, args.params, device, loops, args.seed, torch_load(args.gmm)["hmm"],
                               torch_load(args.alignments), hybrid)
    log.info("%s: the phone most occupied in training (train_top_phone_share %.3f): %s", args.variant,
             metrics["train_top_phone_share"], out["top_phone"])
    _finish(args, metrics, device, started, loops, (args.model, _weights(out)),
            (args.extras, {"example_path": out["example_path"], "variant": args.variant}))


def _hybrid_weights(path: str) -> dict:
    saved = torch_load(path)
    if not isinstance(saved, dict) or not isinstance(saved.get("model"), dict) or "priors" not in saved:
        raise ValueError(f"--hybrid {path}: not a hybrid's model.pt (no 'model' state and 'priors')")
    return saved


def cmd_ctc(args) -> None:
    from dlgm.speech.systems import run_ctc

    corpus, device, loops, started = _start(args, "dlgm.commands.rnn_hmm:cmd_ctc")
    metrics, out = run_ctc(corpus, args.params, device, loops, args.seed)
    _finish(args, metrics, device, started, loops, (args.model, {"model": {k: v.cpu() for k, v in out["model"].items()}}),
            (args.extras, {"example_frames": out["example_frames"], "variant": args.variant}))


def cmd_folds(args) -> None:
    from dlgm.metrics import read_metrics
    from dlgm.speech.scoring import fold_summary

    records = [read_metrics(f) for f in args.metrics]
    metrics = fold_summary([r["metrics"] for r in records])
    write_metrics(args.out, paper="rnn_hmm", variant=args.variant, seed=min(r["seed"] for r in records), split="test",
                  metrics=metrics, wall_seconds=sum(r["wall_seconds"] for r in records), device=records[0]["device"],
                  config=records[0]["config"], extra={"runs": [r["variant"] for r in records]})


def cmd_plot(args) -> None:
    from dlgm.figures import save_figure
    from dlgm.metrics import read_metrics
    from dlgm.plots.rnn_hmm import confusion_figure, per_figure, state_path_figure

    example = torch_load(args.example)
    k = example["states_per_phone"]
    paths, confusion = {}, None
    for path in args.extras:  # the hybrid's first
        extras = torch_load(path)
        paths[extras["variant"]] = extras["example_frames"] if "example_frames" in extras else extras["example_path"] // k
        if confusion is None and "confusion" in extras:
            confusion = extras
    if confusion is None:
        raise ValueError(f"--extras: none of {args.extras} holds the hybrid's confusion")
    figures = ((state_path_figure(example, paths), args.state_path),
               (per_figure([read_metrics(f) for f in args.metrics]), args.per_by_system),
               (confusion_figure(confusion["confusion"], confusion["phones"]), args.phone_confusion))
    for (fig, caption), path in figures:
        save_figure(fig, path, caption)


