"""Backpropagation for the logistic classifiers that fine-tune DBNs and DBMs, written out so that each
weight gradient is one matrix product accumulated straight into SGD's momentum buffer (``addmm_``
with beta = momentum): no autograd graph, no gradient tensors, no separate pass over gradients.

It is torch.optim.SGD's step (dampening 0, no Nesterov) and keeps its state where SGD does
(``opt.state[p]["momentum_buffer"]``), so checkpoints and resumes are those of SGD; the tests check
it against autograd + torch.optim.SGD.

A net is a list of layers. Layer k (1-based) adds to its bias a sum of terms ``x W^T`` (``transposed``:
nn.Linear's [out, in] weights) or ``x W``, where x is the net's input (source 0), the output of a
lower layer (source 1..k-1; each output feeds one term) or a fixed tensor whose rows go with the
input's (the DBM's mean-field posteriors). Hidden layers are logistic; the last layer gives softmax
class scores.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Term:
    source: int | torch.Tensor  # 0: the net's input; k >= 1: the output of layer k; a tensor: fixed rows
    weight: torch.Tensor
    transposed: bool  # input @ weight.T (weight [out, in]) rather than input @ weight


@dataclass(frozen=True)
class Layer:
    bias: torch.Tensor
    terms: tuple[Term, ...]


def supports(opt: torch.optim.Optimizer) -> bool:
    """Whether ``sgd_step`` can stand in for ``opt.step()``: one parameter group of plain SGD."""
    if type(opt) is not torch.optim.SGD or len(opt.param_groups) != 1:
        return False
    group = opt.param_groups[0]
    return group["dampening"] == 0 and not group["nesterov"] and not group["maximize"]


@torch.no_grad()
def sgd_step(layers: list[Layer], opt: torch.optim.SGD, x: torch.Tensor, labels: torch.Tensor,
             rows: torch.Tensor | None = None, train_from: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of ``opt`` on the mean cross-entropy of ``x`` (fixed inputs: their ``rows``); only the
    parameters of layers ``train_from``.. train. Returns (loss, class scores), device tensors."""
    group = opt.param_groups[0]
    lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
    outs = [x]
    for k, layer in enumerate(layers, 1):
        z = None
        for t in layer.terms:
            src = _input(t, outs, rows)
            w = t.weight.t() if t.transposed else t.weight
            z = torch.addmm(layer.bias, src, w) if z is None else z.addmm_(src, w)
        outs.append(z.sigmoid_() if k < len(layers) else z)
    scores = outs[-1]
    log_p = torch.log_softmax(scores, 1)
    picked = log_p.gather(1, labels[:, None])
    loss = -picked.mean()
    delta = log_p.exp_().scatter_add_(1, labels[:, None], torch.full_like(picked, -1.0)).div_(x.shape[0])

    bufs: dict[int, torch.Tensor] = {}  # id(param) -> momentum buffer, once this step has touched it
    params: list[torch.Tensor] = []
    upstream: dict[int, torch.Tensor] = {}  # d loss / d output of layer k (each output feeds one term)
    for k in range(len(layers), train_from - 1, -1):
        if k < len(layers):
            delta = torch.ops.aten.sigmoid_backward(upstream.pop(k), outs[k])
        layer = layers[k - 1]
        _accumulate(layer.bias, delta.sum(0), None, opt, momentum, bufs, params)
        for t in layer.terms:
            src = _input(t, outs, rows)
            grad = (delta.t(), src) if t.transposed else (src.t(), delta)
            _accumulate(t.weight, *grad, opt, momentum, bufs, params)
            if isinstance(t.source, int) and t.source >= train_from:
                if t.source in upstream:
                    raise ValueError(f"the output of layer {t.source} feeds more than one term")
                upstream[t.source] = delta @ (t.weight if t.transposed else t.weight.t())
    grads = [bufs[id(p)] for p in params]
    if decay:
        torch._foreach_add_(grads, params, alpha=decay)
    torch._foreach_add_(params, grads, alpha=-lr)
    return loss, scores


def _input(t: Term, outs: list[torch.Tensor], rows: torch.Tensor | None) -> torch.Tensor:
    if isinstance(t.source, int):
        return outs[t.source]
    return t.source if rows is None else t.source.index_select(0, rows)


def _accumulate(param, a, b, opt, momentum, bufs, params) -> None:
    """buffer = momentum * buffer + a @ b (or + a when b is None) on a parameter's first gradient of
    this step, buffer += a @ b on the next ones; SGD's rule (a fresh buffer starts at the gradient)."""
    buf = bufs.get(id(param))
    if buf is not None:
        buf.add_(a) if b is None else buf.addmm_(a, b)
        return
    state = opt.state[param]
    buf = state.get("momentum_buffer") if momentum else None
    beta = momentum
    if buf is None:
        buf, beta = torch.zeros_like(param), 0.0
        if momentum:
            state["momentum_buffer"] = buf
    if b is None:
        buf.mul_(beta).add_(a)
    else:
        buf.addmm_(a, b, beta=beta)
    bufs[id(param)] = buf
    params.append(param)
