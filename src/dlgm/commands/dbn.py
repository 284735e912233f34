"""`python -m dlgm dbn ...`: the DBN rules' commands (files in, files out; algorithms in dlgm.dbn).

greedy    HOT06 greedy stack with the labelled associative memory  -> greedy.pt
updown    up-down fine-tuning of a greedy DBN, then on all 60,000   -> model.pt, metrics.json
pretrain  HS06 unlabelled CD-1 stack                                -> pretrained.pt
finetune  backprop classifier from a pretrained stack or from random weights (baseline)
plot      samples with each label clamped, filters, misclassified digits, training curves
"""
from __future__ import annotations

import copy
import csv
import logging
import time
from pathlib import Path

import torch

from dlgm.atomic import torch_load, torch_save
from dlgm.cli import add_command, start
from dlgm.data.mnist import load_processed as load_mnist
from dlgm.metrics import write_metrics
from dlgm.training import RunLoops, resume_identity

log = logging.getLogger("dlgm")
N_LABELS = 10


def register(subparsers) -> None:
    add_command(subparsers, "greedy", cmd_greedy, "HOT06 greedy training of the labelled DBN",
                "train", "valid", "test", "out")
    p = add_command(subparsers, "updown", cmd_updown, "HOT06 up-down fine-tuning; metrics of the greedy and final nets",
                    "greedy", "train", "train-full", "valid", "test", "model", "metrics")
    p.add_argument("--variant", required=True, help="metrics variant name (updown or an ablation of it)")
    add_command(subparsers, "pretrain", cmd_pretrain, "HS06 greedy CD-1 pretraining of an unlabelled stack",
                "train", "out")
    p = add_command(subparsers, "finetune", cmd_finetune,
                    "backprop fine-tuning (from --pretrained) or the random-init baseline (without it)",
                    "train", "valid", "test", "model", "metrics", optional=("pretrained",))
    p.add_argument("--variant", required=True, help="metrics variant name (backprop, baseline or an ablation)")
    add_command(subparsers, "plot", cmd_plot, "DBN figures: samples with each label clamped, filters, "
                "misclassified digits, training curves (the curve_*.csv of each of --run-dirs)",
                "updown-model", "pretrained", "test", "run-dirs+", "samples", "filters", "misclassified", "curves")


def _error(pred: torch.Tensor, labels: torch.Tensor) -> float:
    return float((pred != labels).float().mean())


def _loops(args, run_dir, inputs, command: str) -> RunLoops:
    """The stages of one command: checkpoints in ``run_dir``, resumed only under the same config,
    seed, input files and code."""
    return RunLoops(Path(run_dir), resume_identity({**args.params, "seed": args.seed}, inputs,
                                                   code=f"dlgm.commands.dbn:{command}"))


# -- HOT06 -------------------------------------------------------------------------------------
def cmd_greedy(args) -> None:
    from dlgm.dbn.greedy import greedy_classify, train_labelled_dbn

    cfg = args.params
    device, gen = start(args)
    x, y = load_mnist(args.train, device, limit=cfg["train_images"])
    loops = _loops(args, Path(args.out).parent, [args.train], "cmd_greedy")
    t0 = time.perf_counter()
    rbms, top = train_labelled_dbn(cfg["sizes"], cfg["top_size"], N_LABELS, x, y, cfg["greedy"], gen, loops,
                                   init_std=cfg["greedy"]["init_std"])
    errors = {}
    for split, path in (("valid", args.valid), ("test", args.test)):
        xs, ys = load_mnist(path, device)
        errors[f"greedy_{split}_error"] = _error(greedy_classify(rbms, top, xs), ys)
    log.info("greedy DBN: %s", errors)
    torch_save({"sizes": cfg["sizes"], "top_size": cfg["top_size"], "rbms": [r.state_dict() for r in rbms],
                "top": top.state_dict(), "metrics": errors, "wall_seconds": time.perf_counter() - t0}, args.out)


def load_stack(path, device):
    """The greedily trained RBMs of greedy.pt or pretrained.pt (bottom first), the labelled top RBM
    (greedy.pt; None for pretrained.pt) and the file's other entries."""
    from dlgm.boltzmann.rbm import RBM
    from dlgm.dbn.labelled import LabelledRBM

    blob = torch_load(path)
    sizes = blob["sizes"]
    rbms = []
    for (n_in, n_out), state in zip(zip(sizes[:-1], sizes[1:]), blob["rbms"]):
        rbm = RBM(n_in, n_out)
        rbm.load_state_dict(state)
        rbms.append(rbm.to(device))
    top = None
    if "top" in blob:
        top = LabelledRBM(sizes[-1], N_LABELS, blob["top_size"])
        top.load_state_dict(blob["top"])
        top = top.to(device)
    return rbms, top, blob


def load_updown(path, device):
    """The up-down DBN saved by ``updown`` (model.pt) and its file's other entries."""
    from dlgm.boltzmann.rbm import RBM
    from dlgm.dbn.labelled import LabelledRBM
    from dlgm.dbn.updown import UpDownDBN

    blob = torch_load(path)
    sizes = blob["sizes"]
    rbms = [RBM(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    dbn = UpDownDBN(rbms, LabelledRBM(sizes[-1], N_LABELS, blob["top_size"]))
    dbn.load_state_dict(blob["state"])
    return dbn.to(device), blob


def cmd_updown(args) -> None:
    from dlgm.dbn.greedy import batches_for
    from dlgm.dbn.updown import UpDownDBN, UpDownVelocity, gibbs_iterations, updown_epoch

    cfg = args.params
    ud = cfg["updown"]
    device, gen = start(args)
    t0 = time.perf_counter()
    rbms, top, greedy = load_stack(args.greedy, device)
    dbn = UpDownDBN(rbms, top).to(device)
    loops = _loops(args, Path(args.model).parent, [args.greedy, args.train, args.train_full], "cmd_updown")
    x, y = load_mnist(args.train, device, limit=cfg["train_images"])
    xv, yv = load_mnist(args.valid, device)
    lr = {"generative": ud["lr_generative"], "recognition": ud["lr_recognition"], "top": ud["lr_top"]}
    batch_cfg = {"batch_size": ud["batch_size"], "balanced_batches": ud["balanced_batches"]}
    # plain steps (HOT06 Appendix B) unless momentum or weight cost is set; the velocities then resume with the net
    state = {"dbn": dbn}
    if ud["momentum"] or ud["weight_cost"]:
        state["velocity"] = UpDownVelocity(dbn, ud["momentum"], ud["weight_cost"])
    # HOT06 Sec. 6 tests the net of the 44,000-image phase that was best on the validation images,
    # then trains that one on all 60,000; the best so far resumes with the rest
    best = {"best_dbn": copy.deepcopy(dbn), "best_valid_error": torch.tensor(float("inf")),
            "best_epoch": torch.tensor(0)}

    def phase(xs, ys, first_epoch, keep_best):
        def epoch_fn(epoch):
            k = gibbs_iterations(ud["gibbs_schedule"], first_epoch + epoch)
            err = updown_epoch(dbn, xs, ys, batches_for(batch_cfg, ys, gen), k, lr, gen, state.get("velocity"))
            valid = (dbn.classify(xv) != yv).float().mean()
            if keep_best and float(valid) < float(best["best_valid_error"]):
                best["best_dbn"].load_state_dict(dbn.state_dict())
                best["best_valid_error"].fill_(float(valid))
                best["best_epoch"].fill_(epoch + 1)
            return {"recon_error": err, "gibbs_k": k, "valid_error": valid}
        return epoch_fn

    loops("updown", ud["epochs"], {**state, **best}, {"gen": gen}).run(phase(x, y, 0, keep_best=True))
    valid_error = _error(dbn.classify(xv), yv)
    if not ud["epochs"]:  # greedy-only runs: the greedy net is the one chosen on validation
        best["best_valid_error"].fill_(valid_error)
    train_error = _error(dbn.classify(x), y)
    xt, yt = load_mnist(args.test, device)
    best_net = best["best_dbn"]
    chosen = {"best_valid_error": float(best["best_valid_error"]), "best_epoch": int(best["best_epoch"]),
              "best_valid_test_error": _error(best_net.classify(xt), yt)}
    if ud["full_epochs"] > 0:  # HOT06: then trained on all 60,000 images
        dbn.load_state_dict(best_net.state_dict())
        xf, yf = load_mnist(args.train_full, device)
        loops("updown_full", ud["full_epochs"], state, {"gen": gen}).run(phase(xf, yf, ud["epochs"], keep_best=False))
    pred = dbn.classify(xt)
    metrics = {"test_error": _error(pred, yt), "valid_error": valid_error, "train_error": train_error,
               **chosen, **greedy["metrics"]}
    log.info("up-down DBN: %s", metrics)
    torch_save({"sizes": greedy["sizes"], "top_size": greedy["top_size"], "state": dbn.state_dict(),
                "test_pred": pred.cpu()}, args.model)
    write_metrics(args.metrics, paper="dbn", variant=args.variant, seed=args.seed, split="test", metrics=metrics,
                  wall_seconds=greedy["wall_seconds"] + time.perf_counter() - t0, device=device, config=cfg)


# -- HS06 and the baseline ---------------------------------------------------------------------
def cmd_pretrain(args) -> None:
    from dlgm.dbn.greedy import train_stack

    cfg = args.params
    device, gen = start(args)
    x, y = load_mnist(args.train, device, limit=cfg.get("train_images"))
    t0 = time.perf_counter()
    rbms = train_stack(cfg["sizes"], x, y, cfg["pretrain"], gen, _loops(args, Path(args.out).parent, [args.train],
                                                                          "cmd_pretrain"))
    torch_save({"sizes": cfg["sizes"], "rbms": [r.state_dict() for r in rbms],
                "wall_seconds": time.perf_counter() - t0}, args.out)


def cmd_finetune(args) -> None:
    from dlgm.boltzmann.batches import shuffled_batches
    from dlgm.dbn.finetune import DeepClassifier, make_optimizer, predict, train_epoch

    cfg = args.params
    ft = cfg["finetune"]
    device, gen = start(args)
    cpu_gen = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    pre_seconds = 0.0
    if args.pretrained:
        rbms, _, blob = load_stack(args.pretrained, device)
        pre_seconds = blob["wall_seconds"]
        net = DeepClassifier.from_rbms(rbms, N_LABELS, cpu_gen).to(device)
    else:
        net = DeepClassifier(cfg["sizes"], N_LABELS, cpu_gen, init_std=ft["init_std"]).to(device)
    opt, sched = make_optimizer(net, ft)
    x, y = load_mnist(args.train, device, limit=cfg.get("train_images"))
    xv, yv = load_mnist(args.valid, device)
    inputs = [args.pretrained, args.train] if args.pretrained else [args.train]
    loops = _loops(args, Path(args.model).parent, inputs, "cmd_finetune")

    def epoch_fn(epoch):
        batches = shuffled_batches(x.shape[0], ft["batch_size"], gen, device)
        loss = train_epoch(net, opt, x, y, batches, top_only=epoch < ft["top_only_epochs"])
        sched.step()
        return {"train_loss": loss, "valid_error": (predict(net, xv) != yv).float().mean()}

    loops("finetune", ft["epochs"], {"net": net, "opt": opt, "sched": sched}, {"gen": gen}).run(epoch_fn)
    xt, yt = load_mnist(args.test, device)
    pred = predict(net, xt)
    metrics = {"test_error": _error(pred, yt), "valid_error": _error(predict(net, xv), yv),
               "train_error": _error(predict(net, x), y)}
    log.info("%s: %s", args.variant, metrics)
    torch_save({"sizes": cfg["sizes"], "state": net.state_dict(), "test_pred": pred.cpu()}, args.model)
    write_metrics(args.metrics, paper="dbn", variant=args.variant, seed=args.seed, split="test", metrics=metrics,
                  wall_seconds=pre_seconds + time.perf_counter() - t0, device=device, config=cfg)


# -- figures -----------------------------------------------------------------------------------
def cmd_plot(args) -> None:
    from dlgm.figures import save_figure
    from dlgm.plots import dbn as plots

    cfg = args.params
    device, gen = start(args)
    dbn, blob = load_updown(args.updown_model, device)
    labels = torch.arange(N_LABELS, device=device).repeat_interleave(cfg["samples_per_label"])
    generated = dbn.sample_digits(labels, cfg["sample_gibbs_steps"], gen).cpu().numpy()
    rbms, _, _ = load_stack(args.pretrained, device)
    x, y = load_mnist(args.test, device)
    runs = {Path(run_dir).parent.name: _read_curves(Path(run_dir)) for run_dir in args.run_dirs}
    for (fig, caption), out in (
        (plots.samples_figure(generated, cfg["samples_per_label"], cfg["sample_gibbs_steps"]), args.samples),
        (plots.filters_figure(rbms[0].W.detach().cpu().numpy()), args.filters),
        (plots.misclassified_figure(x.cpu().numpy(), y.cpu().numpy(), blob["test_pred"].numpy()),
         args.misclassified),
        (plots.curves_figure(runs), args.curves),
    ):
        save_figure(fig, out, caption)


def _read_curves(run_dir: Path) -> dict[str, list[dict]]:
    """stage -> rows of every ``curve_<stage>.csv`` in ``run_dir`` (RunLoops' naming)."""
    curves = {}
    for path in sorted(run_dir.glob("curve_*.csv")):
        with open(path, newline="") as handle:
            curves[path.stem.removeprefix("curve_")] = list(csv.DictReader(handle))
    return curves
