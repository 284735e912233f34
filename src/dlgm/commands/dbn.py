"""`python -m dlgm dbn ...`: the DBN rules' commands (files in, files out; algorithms in dlgm.dbn).

greedy    HOT06 greedy stack with the labelled associative memory  -> greedy.pt
updown    up-down fine-tuning of a greedy DBN, then on all 60,000   -> model.pt, metrics.json
pretrain  HS06 unlabelled CD-1 stack                                -> pretrained.pt
finetune  backprop classifier from a pretrained stack or from random weights (baseline)
plot      samples with each label clamped, filters, misclassified digits, training curves
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
from dlgm.training import RunLoops, resume_identity

log = logging.getLogger("dlgm")
N_LABELS = 10


def register(subparsers) -> None:
    def command(name, func, help_text):
        p = subparsers.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--params", type=params_json, required=True, help="the rule's config section as JSON")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--device", default="auto")
        p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
        p.set_defaults(func=func)
        return p

    p = command("greedy", cmd_greedy, "HOT06 greedy training of the labelled DBN")
    p.add_argument("--train", required=True)
    p.add_argument("--valid", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--out", required=True, help="greedy.pt")

    p = command("updown", cmd_updown, "HOT06 up-down fine-tuning; metrics of the greedy and final nets")
    p.add_argument("--greedy", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--train-full", required=True)
    p.add_argument("--valid", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--metrics", required=True)

    p = command("pretrain", cmd_pretrain, "HS06 greedy CD-1 pretraining of an unlabelled stack")
    p.add_argument("--train", required=True)
    p.add_argument("--out", required=True, help="pretrained.pt")

    p = command("finetune", cmd_finetune, "backprop fine-tuning (pretrained) or the random-init baseline")
    p.add_argument("--variant", required=True, help="metrics variant name (backprop or baseline)")
    p.add_argument("--pretrained", default=None, help="pretrained.pt; omitted = random initialisation")
    p.add_argument("--train", required=True)
    p.add_argument("--valid", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--metrics", required=True)

    from dlgm.dbn.plots import register_plot

    register_plot(subparsers)


# -- shared plumbing --------------------------------------------------------------------------
def _setup(args) -> tuple[torch.device, torch.Generator]:
    return start_run(args.seed, args.device, args.threads)


def _error(pred: torch.Tensor, labels: torch.Tensor) -> float:
    return float((pred != labels).float().mean())


def _require(cfg: dict, *keys: str) -> None:
    missing = [k for k in keys if k not in cfg]
    if missing:
        raise KeyError(f"--params lacks {missing} (see the dbn section of workflow/schemas/config.schema.yaml)")


# -- HOT06 -------------------------------------------------------------------------------------
def cmd_greedy(args) -> None:
    from dlgm.data.mnist import load_processed as load_mnist
    from dlgm.dbn.greedy import greedy_classify, train_labelled_dbn

    cfg = args.params
    _require(cfg, "greedy", "sizes", "top_size", "train_images")
    device, gen = _setup(args)
    x, y = load_mnist(args.train, device, limit=cfg["train_images"])
    run_dir = Path(args.out).parent
    make_loop = RunLoops(run_dir, resume_identity({**cfg, "seed": args.seed}, [args.train],
                                                  code="dlgm.commands.dbn:cmd_greedy"))
    t0 = time.perf_counter()
    rbms, top = train_labelled_dbn(cfg["sizes"], cfg["top_size"], N_LABELS, x, y, cfg["greedy"], gen, make_loop)
    errors = {}
    for split, path in (("valid", args.valid), ("test", args.test)):
        xs, ys = load_mnist(path, device)
        errors[f"greedy_{split}_error"] = _error(greedy_classify(rbms, top, xs), ys)
    log.info("greedy DBN: %s", errors)
    torch_save({"sizes": cfg["sizes"], "top_size": cfg["top_size"], "rbms": [r.state_dict() for r in rbms],
                "top": top.state_dict(), "metrics": errors, "wall_seconds": time.perf_counter() - t0}, args.out)


def load_greedy(path, device):
    from dlgm.boltzmann.rbm import RBM
    from dlgm.dbn.labelled import LabelledRBM

    blob = torch_load(path)
    sizes = blob["sizes"]
    rbms = []
    for (n_in, n_out), state in zip(zip(sizes[:-1], sizes[1:]), blob["rbms"]):
        rbm = RBM(n_in, n_out)
        rbm.load_state_dict(state)
        rbms.append(rbm.to(device))
    top = LabelledRBM(sizes[-1], N_LABELS, blob["top_size"])
    top.load_state_dict(blob["top"])
    return rbms, top.to(device), blob


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
    from dlgm.data.mnist import load_processed as load_mnist
    from dlgm.dbn.greedy import batches_for
    from dlgm.dbn.updown import UpDownDBN, gibbs_iterations, updown_epoch

    cfg = args.params
    _require(cfg, "updown", "train_images")
    ud = cfg["updown"]
    device, gen = _setup(args)
    t0 = time.perf_counter()
    rbms, top, greedy = load_greedy(args.greedy, device)
    dbn = UpDownDBN(rbms, top).to(device)
    run_dir = Path(args.model).parent
    make_loop = RunLoops(run_dir, resume_identity({**cfg, "seed": args.seed}, [args.greedy, args.train, args.train_full],
                                                  code="dlgm.commands.dbn:cmd_updown"))
    x, y = load_mnist(args.train, device, limit=cfg["train_images"])
    xv, yv = load_mnist(args.valid, device)
    lr = {"generative": ud["lr_generative"], "recognition": ud["lr_recognition"], "top": ud["lr_top"]}
    batch_cfg = {"batch_size": ud["batch_size"], "balanced_batches": ud["balanced_batches"]}

    def phase(xs, ys, first_epoch):
        def epoch_fn(epoch):
            k = gibbs_iterations(ud["gibbs_schedule"], first_epoch + epoch)
            err = updown_epoch(dbn, xs, ys, batches_for(batch_cfg, ys, gen), k, lr, gen)
            valid = (dbn.classify(xv) != yv).float().mean()
            return {"recon_error": err, "gibbs_k": k, "valid_error": valid}
        return epoch_fn

    make_loop("updown", ud["epochs"], {"dbn": dbn}, {"gen": gen}).run(phase(x, y, 0))
    valid_error = _error(dbn.classify(xv), yv)
    train_error = _error(dbn.classify(x), y)
    if ud["full_epochs"] > 0:  # HOT06: then trained on all 60,000 images
        xf, yf = load_mnist(args.train_full, device)
        make_loop("updown_full", ud["full_epochs"], {"dbn": dbn}, {"gen": gen}).run(phase(xf, yf, ud["epochs"]))
    xt, yt = load_mnist(args.test, device)
    pred = dbn.classify(xt)
    metrics = {"test_error": _error(pred, yt), "valid_error": valid_error, "train_error": train_error,
               **greedy["metrics"]}
    log.info("up-down DBN: %s", metrics)
    torch_save({"sizes": greedy["sizes"], "top_size": greedy["top_size"], "state": dbn.state_dict(),
                "test_pred": pred.cpu()}, args.model)
    write_metrics(args.metrics, paper="dbn", variant="updown", seed=args.seed, split="test", metrics=metrics,
                  wall_seconds=greedy["wall_seconds"] + time.perf_counter() - t0, device=device, config=cfg)


# -- HS06 and the baseline ---------------------------------------------------------------------
def cmd_pretrain(args) -> None:
    from dlgm.data.mnist import load_processed as load_mnist
    from dlgm.dbn.greedy import train_stack

    cfg = args.params
    _require(cfg, "pretrain", "sizes")
    device, gen = _setup(args)
    x, y = load_mnist(args.train, device, limit=cfg.get("train_images"))
    t0 = time.perf_counter()
    make_loop = RunLoops(Path(args.out).parent, resume_identity({**cfg, "seed": args.seed}, [args.train],
                                                                code="dlgm.commands.dbn:cmd_pretrain"))
    rbms = train_stack(cfg["sizes"], x, y, cfg["pretrain"], gen, make_loop)
    torch_save({"sizes": cfg["sizes"], "rbms": [r.state_dict() for r in rbms],
                "wall_seconds": time.perf_counter() - t0}, args.out)


def load_stack(path, device):
    from dlgm.boltzmann.rbm import RBM

    blob = torch_load(path)
    rbms = []
    for (n_in, n_out), state in zip(zip(blob["sizes"][:-1], blob["sizes"][1:]), blob["rbms"]):
        rbm = RBM(n_in, n_out)
        rbm.load_state_dict(state)
        rbms.append(rbm.to(device))
    return rbms, blob


def cmd_finetune(args) -> None:
    from dlgm.data.mnist import load_processed as load_mnist
    from dlgm.dbn.data import shuffled_batches
    from dlgm.dbn.finetune import DeepClassifier, make_optimizer, predict, train_epoch

    cfg = args.params
    _require(cfg, "finetune", "sizes")
    ft = cfg["finetune"]
    device, gen = _setup(args)
    cpu_gen = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    pre_seconds = 0.0
    if args.pretrained:
        rbms, blob = load_stack(args.pretrained, device)
        pre_seconds = blob["wall_seconds"]
        net = DeepClassifier.from_rbms(rbms, N_LABELS, cpu_gen).to(device)
    else:
        net = DeepClassifier(cfg["sizes"], N_LABELS, cpu_gen, init_std=ft["init_std"]).to(device)
    opt, sched = make_optimizer(net, ft)
    x, y = load_mnist(args.train, device, limit=cfg.get("train_images"))
    xv, yv = load_mnist(args.valid, device)
    inputs = [args.pretrained, args.train] if args.pretrained else [args.train]
    make_loop = RunLoops(Path(args.model).parent, resume_identity({**cfg, "seed": args.seed}, inputs,
                                                                  code="dlgm.commands.dbn:cmd_finetune"))

    def epoch_fn(epoch):
        batches = shuffled_batches(x.shape[0], ft["batch_size"], gen, device)
        loss = train_epoch(net, opt, x, y, batches, top_only=epoch < ft["top_only_epochs"])
        sched.step()
        return {"train_loss": loss, "valid_error": (predict(net, xv) != yv).float().mean()}

    make_loop("finetune", ft["epochs"], {"net": net, "opt": opt, "sched": sched}, {"gen": gen}).run(epoch_fn)
    xt, yt = load_mnist(args.test, device)
    pred = predict(net, xt)
    metrics = {"test_error": _error(pred, yt), "valid_error": _error(predict(net, xv), yv),
               "train_error": _error(predict(net, x), y)}
    log.info("%s: %s", args.variant, metrics)
    torch_save({"sizes": cfg["sizes"], "state": net.state_dict(), "test_pred": pred.cpu()}, args.model)
    write_metrics(args.metrics, paper="dbn", variant=args.variant, seed=args.seed, split="test", metrics=metrics,
                  wall_seconds=pre_seconds + time.perf_counter() - t0, device=device, config=cfg)
