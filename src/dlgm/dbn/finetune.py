"""Discriminative fine-tuning of a pretrained stack (HS06) and the randomly initialised baseline.

The network is sizes[0]-...-sizes[-1]-n_classes with logistic hidden units and a softmax output,
the pretrained RBMs giving the hidden layers' weights and biases (HS06's backpropclassify.m).
HS06 minimised the cross-entropy with conjugate gradients; here SGD with momentum (or Adam) is used.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from dlgm import backprop
from dlgm.boltzmann.rbm import RBM


class DeepClassifier(nn.Module):
    def __init__(self, sizes: list[int], n_classes: int, generator: torch.Generator | None = None,
                 init_std: float = 0.01):
        super().__init__()
        dims = list(sizes) + [n_classes]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        with torch.no_grad():
            for layer in self.layers:
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * init_std)
                layer.bias.zero_()

    @classmethod
    def from_rbms(cls, rbms: list[RBM], n_classes: int, generator: torch.Generator | None = None,
                  init_std: float = 0.01) -> "DeepClassifier":
        sizes = [rbms[0].n_visible] + [r.n_hidden for r in rbms]
        net = cls(sizes, n_classes, generator, init_std)
        with torch.no_grad():
            for layer, rbm in zip(net.layers, rbms):
                layer.weight.copy_(rbm.W.t())
                layer.bias.copy_(rbm.b_hid)
        return net

    def graph(self) -> list[backprop.Layer]:
        return [backprop.Layer(layer.bias, (backprop.Term(k, layer.weight, True),))
                for k, layer in enumerate(self.layers)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = torch.sigmoid(layer(x))
        return self.layers[-1](x)


def train_epoch(net: DeepClassifier, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                batches: torch.Tensor, top_only: bool = False) -> torch.Tensor:
    """One epoch of mini-batch cross-entropy; ``top_only`` trains just the output layer (HS06's code
    does that for its first epochs so that the random softmax weights do not wreck the pretrained
    features). SGD runs through dlgm.backprop, other optimisers through autograd. Returns the mean
    training loss (a device tensor)."""
    total = torch.zeros((), device=x.device)
    if backprop.supports(opt):
        graph, start = net.graph(), len(net.layers) if top_only else 1
        for idx in batches:
            total += backprop.sgd_step(graph, opt, x[idx], y[idx], train_from=start)[0]
        opt.zero_grad(set_to_none=True)
        opt.step()  # without gradients a no-op; the learning-rate scheduler then knows a step was taken
        return total / len(batches)
    for i, layer in enumerate(net.layers):
        layer.requires_grad_(not top_only or i == len(net.layers) - 1)
    net.train()
    for idx in batches:
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach()
    net.requires_grad_(True)
    return total / len(batches)


@torch.no_grad()
def predict(net: DeepClassifier, x: torch.Tensor, chunk: int = 10000) -> torch.Tensor:
    net.eval()
    return torch.cat([net(x[s:s + chunk]).argmax(1) for s in range(0, x.shape[0], chunk)])


def make_optimizer(net: DeepClassifier, cfg: Mapping) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The optimiser (foreach: a few multi-tensor kernels per step; fused SGD breaks when the first
    epochs train only the top layer, its momentum buffers then exist for some parameters only) and
    its per-epoch rate decay."""
    if cfg["optimizer"] == "adam":  # the random-init baseline: SGD barely moves a deep logistic net
        opt = torch.optim.Adam(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"], foreach=True)
    elif cfg["optimizer"] == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                              weight_decay=cfg["weight_decay"], foreach=True)
    else:
        raise ValueError(f"finetune.optimizer must be 'sgd' or 'adam', got {cfg['optimizer']!r}")
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg["lr_decay"])
    return opt, sched
