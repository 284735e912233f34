"""Greedy layer-wise training of a stack of RBMs with CD-k (HOT06 Section 4; HS06's rbm.m).

``loops(stage, epochs, state, generators)`` (a ``dlgm.training.RunLoops``) returns each stage's
``EpochLoop`` (the caller decides where checkpoints and curves go); each layer is one stage, so a
killed run resumes inside the layer it was training and skips the finished ones.
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch
import torch.nn.functional as F

from dlgm.boltzmann.batches import momentum_at, shuffled_batches
from dlgm.boltzmann.rbm import RBM, MomentumSGD, cd_epoch, rbm_params
from dlgm.dbn.data import balanced_batches
from dlgm.dbn.labelled import LabelledRBM


def batches_for(cfg: Mapping, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    if cfg.get("balanced_batches", False):
        return balanced_batches(labels, cfg["batch_size"], generator)
    return shuffled_batches(labels.shape[0], cfg["batch_size"], generator, labels.device)


@torch.no_grad()
def up_pass(rbms, x: torch.Tensor, chunk: int = 10000) -> torch.Tensor:
    """Deterministic up-pass: hidden probabilities of the top RBM in ``rbms`` (chunked for memory)."""
    outs = []
    for start in range(0, x.shape[0], chunk):
        h = x[start:start + chunk]
        for rbm in rbms:
            h = rbm.hidden_probs(h)
        outs.append(h)
    return torch.cat(outs) if outs else x


def train_rbm(rbm: RBM, data: torch.Tensor, labels: torch.Tensor, cfg: Mapping, generator: torch.Generator,
              loops: Callable, stage: str) -> list[dict]:
    """Train one RBM on ``data`` for cfg['epochs'] epochs of CD-k with momentum and weight cost."""
    sgd = MomentumSGD(rbm_params(rbm)).to(data.device)

    def epoch_fn(epoch: int):
        batches = batches_for(cfg, labels, generator)
        err = cd_epoch(rbm, sgd, data, batches, lr=cfg["lr"], momentum=momentum_at(cfg, epoch),
                       weight_cost=cfg["weight_cost"], k=cfg.get("cd_k", 1), generator=generator,
                       mean_field_reconstruction=cfg.get("mean_field_reconstruction", False))
        return {"recon_error": err}

    return loops(stage, cfg["epochs"], {"rbm": rbm, "sgd": sgd}, {"gen": generator}).run(epoch_fn)


def train_labelled_top(top: LabelledRBM, data: torch.Tensor, labels: torch.Tensor, cfg: Mapping,
                       generator: torch.Generator, loops: Callable, stage: str = "top") -> list[dict]:
    """CD-k training of the associative memory with the labels clamped in its visible layer."""
    params = top.params()
    sgd = MomentumSGD(params).to(data.device)
    onehot = F.one_hot(labels, top.n_labels).to(data.dtype)

    def epoch_fn(epoch: int):
        batches = batches_for(cfg, labels, generator)
        err = torch.zeros((), device=data.device)
        for idx in batches:
            grads, e = top.cd_statistics(data[idx], onehot[idx], cfg.get("cd_k", 1), generator,
                                         cfg.get("mean_field_reconstruction", False))
            sgd.step(params, grads, cfg["lr"], momentum_at(cfg, epoch), cfg["weight_cost"])
            err += e
        return {"recon_error": err / len(batches)}

    return loops(stage, cfg["epochs"], {"top": top, "sgd": sgd}, {"gen": generator}).run(epoch_fn)


def train_stack(sizes: list[int], x: torch.Tensor, labels: torch.Tensor, cfg: Mapping, generator: torch.Generator,
                loops: Callable, init_std: float = 0.01) -> list[RBM]:
    """Greedy unlabelled stack sizes[0]-sizes[1]-...; each layer trains on the hidden probabilities
    of the one below (as HS06's code does)."""
    rbms: list[RBM] = []
    data = x
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        rbm = RBM(n_in, n_out, init_std=init_std, generator=None).to(x.device)
        with torch.no_grad():
            rbm.W.copy_(torch.randn(n_in, n_out, generator=generator, device=x.device) * init_std)
        train_rbm(rbm, data, labels, cfg, generator, loops, stage=f"rbm{i + 1}")
        rbms.append(rbm)
        data = up_pass([rbm], data)
    return rbms


def train_labelled_dbn(sizes: list[int], top_size: int, n_labels: int, x: torch.Tensor, labels: torch.Tensor,
                       cfg: Mapping, generator: torch.Generator, loops: Callable, init_std: float = 0.01):
    """HOT06's greedy DBN: an unlabelled stack sizes[0]-...-sizes[-1], then the labelled top RBM
    (sizes[-1] + n_labels) - top_size. Returns (rbms, top)."""
    rbms = train_stack(sizes, x, labels, cfg, generator, loops, init_std)
    top = LabelledRBM(sizes[-1], n_labels, top_size, init_std=init_std).to(x.device)
    with torch.no_grad():
        top.rbm.W.copy_(torch.randn(sizes[-1], top_size, generator=generator, device=x.device) * init_std)
        top.U.copy_(torch.randn(n_labels, top_size, generator=generator, device=x.device) * init_std)
    train_labelled_top(top, up_pass(rbms, x), labels, cfg, generator, loops)
    return rbms, top


@torch.no_grad()
def greedy_classify(rbms, top: LabelledRBM, x: torch.Tensor, chunk: int = 5000) -> torch.Tensor:
    """Deterministic up-pass, then arg min of the top RBM's free energy over the labels."""
    return torch.cat([top.classify(up_pass(rbms, x[s:s + chunk])) for s in range(0, x.shape[0], chunk)])
