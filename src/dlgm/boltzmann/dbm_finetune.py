"""Discriminative fine-tuning of a network initialised from a DBM (SH09, Section 3.3, Figure 3).

The mean-field posterior of the DBM is computed once per image; its layers above the first hidden
layer are fixed extra inputs: hidden layer l receives h_{l-1} W[l-1] (bottom-up, learned) plus
q_{l+1} W[l]^T (top-down from the fixed posterior, through the same learned weights), the top layer
only bottom-up input. For the 2-layer DBM this is the paper's network: inputs v and q(h2|v), hidden
layers of 500 and 1000 units, then a 10-way softmax.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import nn

from dlgm import backprop
from dlgm.boltzmann.dbm import DBM
from dlgm.boltzmann.batches import momentum_at, shuffled_batches
from dlgm.training import EpochLoop, RunLoops


class DBMClassifier(nn.Module):
    def __init__(self, dbm: DBM, n_classes: int, init_std: float = 0.01, generator: torch.Generator | None = None):
        super().__init__()
        self.weights = nn.ParameterList(nn.Parameter(w.detach().clone()) for w in dbm.weights)
        self.biases = nn.ParameterList(nn.Parameter(b.detach().clone()) for b in dbm.biases[1:])
        top = dbm.sizes[-1]
        w = torch.randn(n_classes, top, generator=generator, dtype=dbm.weights[0].dtype) * init_std
        self.out = nn.Linear(top, n_classes).to(dbm.weights[0].device)
        with torch.no_grad():
            self.out.weight.copy_(w.to(self.out.weight.device))
            self.out.bias.zero_()

    def graph(self, q: list[torch.Tensor]) -> list[backprop.Layer]:
        """The net for dlgm.backprop, with the fixed posteriors ``q`` (all rows) as inputs."""
        L = len(self.weights)
        layers = [backprop.Layer(self.biases[l - 1], (backprop.Term(l - 1, self.weights[l - 1], False),)
                                 + ((backprop.Term(q[l - 1], self.weights[l], True),) if l < L else ()))
                  for l in range(1, L + 1)]
        return layers + [backprop.Layer(self.out.bias, (backprop.Term(L, self.out.weight, True),))]

    def forward(self, v: torch.Tensor, q: list[torch.Tensor]) -> torch.Tensor:
        """Class scores; ``q`` = mean-field posteriors of hidden layers 2..L for the rows of ``v``."""
        h, L = v, len(self.weights)
        for l in range(1, L + 1):
            total = torch.addmm(self.biases[l - 1], h, self.weights[l - 1])
            if l < L:
                total = torch.addmm(total, q[l - 1], self.weights[l].t())
            h = torch.sigmoid(total)
        return self.out(h)


@torch.no_grad()
def posterior_features(dbm: DBM, v: torch.Tensor, iterations: int, chunk: int = 10000) -> list[torch.Tensor]:
    """Mean-field posteriors of hidden layers 2..L (the fixed extra inputs), computed in chunks. Label
    units, if the model has them, are left free (q(y) in the mean-field): test labels are unknown."""
    parts = [dbm.mean_field(v[i : i + chunk], iterations)[2 : dbm.n_layers + 1] for i in range(0, v.shape[0], chunk)]
    return [torch.cat([p[k] for p in parts]) for k in range(dbm.n_layers - 1)]


def finetune(
    net: DBMClassifier,
    v: torch.Tensor,
    q: list[torch.Tensor],
    labels: torch.Tensor,
    cfg: Mapping[str, Any],
    generator: torch.Generator,
    loops: Callable[..., EpochLoop] = RunLoops(),
) -> list[dict]:
    """Mini-batch SGD with momentum on the cross-entropy (the paper used conjugate gradients), stepped
    by dlgm.backprop."""
    opt = torch.optim.SGD(net.parameters(), lr=cfg["lr"], momentum=cfg["momentum_final"],
                          weight_decay=cfg["weight_cost"], foreach=True)
    graph = net.graph(q)
    loop = loops("finetune", cfg["epochs"], {"net": net, "opt": opt}, {"sampler": generator})

    def epoch_fn(epoch: int) -> dict:
        for group in opt.param_groups:
            group["momentum"] = momentum_at(cfg, epoch)
        batches = shuffled_batches(v.shape[0], cfg["batch_size"], generator, v.device)
        loss_sum = torch.zeros((), device=v.device)
        wrong = torch.zeros((), device=v.device)
        for idx in batches:
            loss, scores = backprop.sgd_step(graph, opt, v[idx], labels[idx], rows=idx)
            loss_sum += loss
            wrong += (scores.argmax(1) != labels[idx]).sum()
        return {"loss": loss_sum / len(batches), "train_error": wrong / batches.numel()}

    return loop.run(epoch_fn)


@torch.no_grad()
def error_rate(net: DBMClassifier, v: torch.Tensor, q: list[torch.Tensor], labels: torch.Tensor,
               chunk: int = 10000) -> float:
    wrong = sum(
        (net(v[i : i + chunk], [x[i : i + chunk] for x in q]).argmax(1) != labels[i : i + chunk]).sum()
        for i in range(0, v.shape[0], chunk)
    )
    return float(wrong) / v.shape[0]
