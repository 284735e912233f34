"""`python -m dlgm dbm ...`: RBMs with AIS (SM08) and deep Boltzmann machines (SH09) on MNIST.

Commands (one per Snakemake rule in workflow/rules/dbm.smk):
  rbm        train a CD-k RBM, estimate log Z by AIS, write metrics.json (SM08 Table 1 rows)
  pretrain   greedy pretraining with the modified RBMs, composed into a DBM
  train      joint training (mean-field + persistent chains)
  ais        AIS log Z of the DBM with its diagnostics, mean-field bounds, per-image estimate and RAISE
             (also of an RBM's weights: the reference RBMs evaluated again)
  finetune   discriminative fine-tuning; writes the run's metrics.json (with the AIS numbers)
  plot       fantasy particles, log Z against the number of temperatures, training curves
"""
from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path

import torch

from dlgm.atomic import torch_load, torch_save, write_json
from dlgm.cli import add_command, start
from dlgm.data.mnist import load_processed as load_mnist
from dlgm.metrics import write_metrics
from dlgm.training import RunLoops, resume_identity

log = logging.getLogger("dlgm")
MNIST_CLASSES = 10


def register(subparsers) -> None:
    add_command(subparsers, "rbm", cmd_rbm, "train a CD-k RBM and estimate its log Z by AIS", "train", "test",
                "model", "metrics", "curve").add_argument("--variant", required=True)
    add_command(subparsers, "pretrain", cmd_pretrain, "greedy pretraining of a DBM", "train", "out")
    add_command(subparsers, "train", cmd_train, "joint training of a DBM", "init", "train", "out", "curve")
    add_command(subparsers, "ais", cmd_ais, "AIS log Z and log-probability bounds of a DBM (or of an RBM's weights)", "model", "train",
                "test", "out")
    add_command(subparsers, "finetune", cmd_finetune, "discriminative fine-tuning of a DBM", "model", "ais",
                "train", "test", "metrics", "curve").add_argument("--variant", required=True)
    add_command(subparsers, "plot", cmd_plot, "DBM figures: fantasy particles (--models: dbm.pt), AIS convergence "
                "(--ais: ais.json or an RBM's metrics.json), training curves (--curves: curve CSVs)",
                "models+", "ais+", "curves+", "fantasy-particles", "ais-convergence", "training-curves", run=False)


# -- helpers -----------------------------------------------------------------------------------
def _load_dbm(path: str, device: torch.device):
    """A DBM file (`_save_dbm`), or an RBM's weights (`dbm rbm`'s model) as a one-hidden-layer DBM, so
    that `dbm ais` evaluates the reference RBMs and DBMs alike."""
    from dlgm.boltzmann.ais import rbm_as_dbm
    from dlgm.boltzmann.dbm import DBM
    from dlgm.boltzmann.rbm import RBM

    saved = torch_load(path)
    if isinstance(saved, dict) and {"W", "b_vis", "b_hid"} <= saved.keys():
        rbm = RBM(*saved["W"].shape)
        rbm.load_state_dict(saved)
        return rbm_as_dbm(rbm).to(device), {}
    if not isinstance(saved, dict) or not {"sizes", "state"} <= saved.keys():
        keys = sorted(saved)[:8] if isinstance(saved, dict) else type(saved).__name__
        raise ValueError(f"{path}: neither a DBM file (keys 'sizes', 'state') nor an RBM's weights "
                         f"(W, b_vis, b_hid); found {keys}")
    dbm = DBM(saved["sizes"], n_labels=saved.get("n_labels", 0))
    dbm.load_state_dict(saved["state"])
    return dbm.to(device), saved


def _save_dbm(dbm, path: str, **extra) -> None:
    """{"sizes", "state", ...}; "n_labels" only for a model with label units, so that the files of
    unsupervised models keep their format."""
    labels = {"n_labels": dbm.n_labels} if dbm.n_labels else {}
    torch_save({"sizes": dbm.sizes, **labels, "state": {k: v.cpu() for k, v in dbm.state_dict().items()}, **extra},
               path)


def _train_labels(cfg: dict, train_x: torch.Tensor, train_y: torch.Tensor) -> torch.Tensor | None:
    """One-hot training labels when the run attaches label units (`dbm.labels`), else None."""
    from dlgm.boltzmann.labels import one_hot

    return one_hot(train_y, MNIST_CLASSES, train_x.dtype) if cfg.get("labels", False) else None


def _begin(args):
    """What every training command does first: its start time, the run setup (device, seeded
    generator) and the training images (at most ``train_limit``) with their labels."""
    started = time.perf_counter()
    device, gen = start(args)
    return started, device, gen, load_mnist(args.train, device, args.params.get("train_limit"))


def _loops(out: str, identity: dict, inputs: list, command: str, **curves) -> RunLoops:
    """The resumable loops of a command whose outputs go beside ``out``."""
    return RunLoops(Path(out).parent, resume_identity(identity, inputs, code=f"dlgm.commands.dbm:{command}"),
                    curves=curves)


# -- commands ----------------------------------------------------------------------------------
def cmd_rbm(args) -> None:
    from dlgm.boltzmann.ais import rbm_as_dbm
    from dlgm.boltzmann.dbm_train import train_rbm
    from dlgm.boltzmann.likelihood import evaluate
    from dlgm.boltzmann.rbm import RBM

    cfg = args.params
    started, device, gen, (train_x, _) = _begin(args)
    test_x, test_y = load_mnist(args.test, device)
    rbm_cfg = {**cfg["rbm"], "cd_k": cfg["cd_k"]}
    rbm = RBM(784, rbm_cfg["n_hidden"], init_std=rbm_cfg["init_std"],
              generator=torch.Generator().manual_seed(args.seed)).to(device)
    stage = f"rbm_cd{cfg['cd_k']}"
    # the training settings alone: a change of `ais` reruns the rule, which then evaluates the trained RBM again
    trained_by = {"rbm": rbm_cfg, "train_limit": cfg.get("train_limit")}
    train_rbm(rbm, train_x, rbm_cfg, gen, _loops(args.model, trained_by, [args.train], "cmd_rbm", **{stage: args.curve}),
              stage=stage)
    torch_save({k: v.cpu() for k, v in rbm.state_dict().items()}, args.model)
    metrics, extra = evaluate(rbm_as_dbm(rbm), train_x, test_x, cfg["ais"], gen, f"RBM {args.variant} seed {args.seed}",
                              log, test_labels=test_y, loops=_loops(args.model, cfg, [args.train, args.test], "cmd_rbm"))
    write_metrics(args.metrics, paper="dbm", variant=args.variant, seed=args.seed, split="test", metrics=metrics,
                  wall_seconds=time.perf_counter() - started, device=device, config=cfg, extra=extra)


def cmd_pretrain(args) -> None:
    from dlgm.boltzmann.dbm_train import pretrain_dbm
    from dlgm.cd_schedule import layer_ramps

    cfg = args.params
    started, device, gen, (train_x, train_y) = _begin(args)
    sizes = cfg["model"]["sizes"]
    epochs = cfg["model"]["pretrain_epochs"]
    if len(epochs) != len(sizes) - 1:
        raise ValueError(f"model.pretrain_epochs has {len(epochs)} entries for {len(sizes) - 1} RBMs")
    ramps = layer_ramps(cfg["pretrain"]["cd_ramp_every"], len(epochs))
    layer_cfgs = [{**cfg["pretrain"], "epochs": e, "cd_ramp_every": r} for e, r in zip(epochs, ramps)]
    dbm, rows = pretrain_dbm(train_x, sizes, layer_cfgs, gen, args.seed,
                             _loops(args.out, cfg, [args.train], "cmd_pretrain"),
                             labels=_train_labels(cfg, train_x, train_y))
    _save_dbm(dbm, args.out, rows=rows, wall_seconds=time.perf_counter() - started)


def cmd_train(args) -> None:
    from dlgm.boltzmann.dbm_train import train_dbm

    cfg = args.params
    started, device, gen, (train_x, train_y) = _begin(args)
    dbm, _ = _load_dbm(args.init, device)
    loops = _loops(args.out, cfg, [args.init, args.train], "cmd_train", dbm=args.curve)
    _, chains = train_dbm(dbm, train_x, {**cfg["joint"], "epochs": cfg["model"]["epochs"]}, gen, loops,
                          labels=_train_labels(cfg, train_x, train_y))
    with torch.no_grad():  # what the fantasy particles look like: p(v | h1) of each chain
        samples = torch.sigmoid(dbm.layer_input(chains, 0)).cpu()
    _save_dbm(dbm, args.out, fantasy=samples, wall_seconds=time.perf_counter() - started)


def cmd_ais(args) -> None:
    from dlgm.boltzmann.likelihood import evaluate

    cfg = args.params
    started, device, gen, (train_x, _) = _begin(args)
    test_x, test_y = load_mnist(args.test, device)
    dbm, _ = _load_dbm(args.model, device)
    metrics, extra = evaluate(dbm, train_x, test_x, cfg["ais"], gen, f"DBM {args.model}", log, test_labels=test_y,
                              loops=_loops(args.out, cfg, [args.model, args.train, args.test], "cmd_ais"))
    log.info("log Z %.3f, test log-prob bound %.3f, train %.3f", metrics["log_z"], metrics["test_logprob"],
             metrics["train_logprob"])
    write_json(args.out, {"metrics": metrics, "extra": extra, "wall_seconds": time.perf_counter() - started})


def cmd_finetune(args) -> None:
    from dlgm.boltzmann.dbm_finetune import DBMClassifier, error_rate, finetune, posterior_features

    cfg = args.params
    started, device, gen, (train_x, train_y) = _begin(args)
    test_x, test_y = load_mnist(args.test, device)
    dbm, saved = _load_dbm(args.model, device)
    ais_result = json.loads(Path(args.ais).read_text())
    ft = cfg["finetune"]
    q_train = posterior_features(dbm, train_x, ft["mean_field_iterations"])
    q_test = posterior_features(dbm, test_x, ft["mean_field_iterations"])
    net = DBMClassifier(dbm, MNIST_CLASSES, generator=torch.Generator().manual_seed(args.seed))
    finetune(net, train_x, q_train, train_y, ft, gen,
             _loops(args.metrics, {"finetune": ft, "train_limit": cfg.get("train_limit")}, [args.model, args.train],
                    "cmd_finetune", finetune=args.curve))
    test_error = error_rate(net, test_x, q_test, test_y)
    log.info("test error %.4f", test_error)
    metrics = {**ais_result["metrics"], "test_error": test_error}
    wall = time.perf_counter() - started + ais_result["wall_seconds"] + saved.get("wall_seconds", 0.0)
    write_metrics(args.metrics, paper="dbm", variant=args.variant, seed=args.seed, split="test", metrics=metrics,
                  wall_seconds=wall, device=device, config=cfg, extra=ais_result["extra"])


def cmd_plot(args) -> None:
    from dlgm.figures import save_figure
    from dlgm.plots import dbm as plots

    particles = []
    for path in args.models:
        saved = torch_load(path)
        if "fantasy" not in saved:
            raise KeyError(f"{path}: no 'fantasy' particles (written by `dlgm dbm train`)")
        particles.append((_run_label(path), saved["fantasy"]))
    ais_curves = []
    for path in args.ais:
        record = json.loads(Path(path).read_text())
        curve = record.get("ais_curve") or record.get("extra", {}).get("ais_curve")
        if not curve:
            raise KeyError(f"{path}: no 'ais_curve' entry")
        ais_curves.append((_run_label(path), curve, record.get("metrics", {}).get("log_z_reverse")))
    training = []
    for path in args.curves:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        stage = Path(path).stem.removeprefix("curve").lstrip("_") or "rbm"
        training.append((f"{_run_label(path)} {stage}", rows))
    for (fig, caption), out in ((plots.fantasy_particles_figure(particles), args.fantasy_particles),
                                (plots.ais_convergence_figure(ais_curves), args.ais_convergence),
                                (plots.training_curves_figure(training), args.training_curves)):
        save_figure(fig, out, caption)


def _run_label(path: str) -> str:
    """``data/runs/dbm/<variant>/seed<N>/...`` -> ``<variant> seed<N>``."""
    parts = Path(path).parts
    return f"{parts[-3]} {parts[-2]}" if len(parts) >= 3 else Path(path).stem
