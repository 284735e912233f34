"""The up-down algorithm (contrastive wake-sleep) of HOT06, Section 5 and Appendix B.

After greedy training the weights below the associative memory are untied into recognition
(bottom-up) and generative (top-down) weights. Each mini-batch: a stochastic up-pass with the
recognition weights (wake), k alternating Gibbs iterations in the top RBM started from the wake
states, a stochastic down-pass with the generative weights from the top's negative-phase states
(sleep); generative weights learn to reconstruct the wake states, recognition weights the sleep
states, the top RBM follows CD-k. All in batched tensor code.

HOT06 Appendix B steps each parameter by ``r`` times its gradient; an ``UpDownVelocity`` adds
momentum and weight cost on the weight matrices (as rbm.m does in greedy training).
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from dlgm.boltzmann.rbm import RBM, MomentumSGD, bernoulli
from dlgm.dbn.labelled import LabelledRBM


class UpDownDBN(nn.Module):
    """Directed layers sizes[0] <-> ... <-> sizes[-1] below a labelled top RBM."""

    def __init__(self, rbms: list[RBM], top: LabelledRBM):
        super().__init__()
        self.rec_W = nn.ParameterList([nn.Parameter(r.W.detach().clone()) for r in rbms])
        self.rec_b = nn.ParameterList([nn.Parameter(r.b_hid.detach().clone()) for r in rbms])
        self.gen_W = nn.ParameterList([nn.Parameter(r.W.detach().t().clone()) for r in rbms])
        self.gen_b = nn.ParameterList([nn.Parameter(r.b_vis.detach().clone()) for r in rbms])
        self.top = top

    @property
    def depth(self) -> int:
        return len(self.rec_W)

    def recognise(self, x: torch.Tensor, i: int) -> torch.Tensor:
        return torch.addmm(self.rec_b[i], x, self.rec_W[i]).sigmoid_()

    def generate(self, h: torch.Tensor, i: int) -> torch.Tensor:
        return torch.addmm(self.gen_b[i], h, self.gen_W[i]).sigmoid_()

    @torch.no_grad()
    def up_pass(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.depth):
            x = self.recognise(x, i)
        return x

    @torch.no_grad()
    def classify(self, x: torch.Tensor, chunk: int = 5000) -> torch.Tensor:
        """Deterministic up-pass, then the label with the lowest free energy in the top RBM."""
        return torch.cat([self.top.classify(self.up_pass(x[s:s + chunk])) for s in range(0, x.shape[0], chunk)])

    @torch.no_grad()
    def down_pass(self, pen: torch.Tensor) -> torch.Tensor:
        """Probabilities of the visible layer, sampling each hidden layer on the way down."""
        h = pen
        for i in reversed(range(self.depth)):
            probs = self.generate(h, i)
            h = bernoulli(probs, None) if i else probs
        return probs

    @torch.no_grad()
    def sample_digits(self, labels: torch.Tensor, gibbs_steps: int, generator: torch.Generator | None):
        """HOT06 Figures 8-9: the chain starts from an up-pass of a random binary image, runs
        ``gibbs_steps`` of alternating Gibbs sampling in the top RBM with the label clamped, then a
        down-pass (hidden layers take their probabilities: the picture shows what the net has in mind)."""
        n_pixels = self.rec_W[0].shape[0]
        noise = bernoulli(torch.full((labels.shape[0], n_pixels), 0.5, device=labels.device,
                                     dtype=self.rec_W[0].dtype), generator)
        start = bernoulli(self.up_pass(noise), generator)
        h = self.top.sample_with_label(labels, gibbs_steps, generator, v_init=start)
        for i in reversed(range(self.depth)):
            h = self.generate(h, i)
        return h

    @torch.no_grad()
    def updown_step(self, x: torch.Tensor, y: torch.Tensor, k: int, lr: Mapping[str, float],
                    generator: torch.Generator | None, velocity: UpDownVelocity | None = None) -> torch.Tensor:
        """One up-down update on a mini-batch (x [B, n_vis] in [0, 1], y one-hot [B, n_labels]);
        with ``velocity`` through its momentum and weight cost, else parameter += lr * gradient.
        Returns the squared error of the generative prediction of the data (a device tensor)."""
        n = x.shape[0]
        top = self.top
        step = velocity.step if velocity is not None else _plain_step
        # wake: stochastic up-pass with the recognition weights
        wake = [x]
        for i in range(self.depth):
            wake.append(bernoulli(self.recognise(wake[-1], i), generator))
        pen = wake[-1]
        top_wake = bernoulli(top.hidden_probs(pen, y), generator)
        # top-level associative memory: k Gibbs iterations from the wake states
        top_neg = top_wake
        for _ in range(k):
            pen_neg = bernoulli(top.visible_probs(top_neg), generator)
            lab_neg = top.label_probs(top_neg)
            top_neg = bernoulli(top.hidden_probs(pen_neg, lab_neg), generator)
        # sleep: stochastic down-pass with the generative weights (visible layer: probabilities)
        sleep = [None] * self.depth + [pen_neg]
        for i in reversed(range(self.depth)):
            probs = self.generate(sleep[i + 1], i)
            sleep[i] = bernoulli(probs, generator) if i else probs
        # generative weights predict each wake layer from the one above
        recon = None
        r = lr["generative"]
        for i in range(self.depth):
            target = wake[i]
            delta = self.generate(wake[i + 1], i).neg_().add_(target)
            if i == 0:
                recon = delta.square().sum() / n
            step(f"gen_W.{i}", self.gen_W[i], r, lambda t: t.addmm_(wake[i + 1].t(), delta, alpha=r / n))
            step(f"gen_b.{i}", self.gen_b[i], r, lambda t: t.add_(delta.mean(0), alpha=r))
        # top RBM: contrastive update between the wake states and the end of the Gibbs chain
        r = lr["top"]
        step("top.rbm.W", top.rbm.W, r,
             lambda t: t.addmm_(pen.t(), top_wake, alpha=r / n).addmm_(pen_neg.t(), top_neg, alpha=-r / n))
        step("top.U", top.U, r, lambda t: t.addmm_(y.t(), top_wake, alpha=r / n).addmm_(lab_neg.t(), top_neg, alpha=-r / n))
        step("top.rbm.b_vis", top.rbm.b_vis, r, lambda t: t.add_((pen - pen_neg).mean(0), alpha=r))
        step("top.b_lab", top.b_lab, r, lambda t: t.add_((y - lab_neg).mean(0), alpha=r))
        step("top.rbm.b_hid", top.rbm.b_hid, r, lambda t: t.add_((top_wake - top_neg).mean(0), alpha=r))
        # recognition weights predict each sleep layer from the one below
        r = lr["recognition"]
        for i in range(self.depth):
            delta = self.recognise(sleep[i], i).neg_().add_(sleep[i + 1])
            step(f"rec_W.{i}", self.rec_W[i], r, lambda t: t.addmm_(sleep[i].t(), delta, alpha=r / n))
            step(f"rec_b.{i}", self.rec_b[i], r, lambda t: t.add_(delta.mean(0), alpha=r))
        return recon


def _plain_step(name: str, param: torch.Tensor, lr: float, add_update) -> None:
    """param += lr * gradient, in place (``add_update(t)`` adds lr * gradient to ``t``)."""
    add_update(param)


class UpDownVelocity(nn.Module):
    """Momentum and weight cost for the up-down updates of every parameter of a ``UpDownDBN``:
    v = momentum * v + lr * (gradient - weight_cost * W) (no weight cost on biases), W += v.
    Its velocity buffers (``MomentumSGD``'s) go into checkpoints through ``state_dict``."""

    def __init__(self, dbn: UpDownDBN, momentum: float, weight_cost: float):
        super().__init__()
        self.momentum, self.weight_cost = momentum, weight_cost
        self.velocities = MomentumSGD({_buffer_name(name): p for name, p in dbn.named_parameters()})

    def step(self, name: str, param: torch.Tensor, lr: float, add_update) -> None:
        v = self.velocities.velocity(_buffer_name(name)).mul_(self.momentum)
        add_update(v)
        if self.weight_cost and param.dim() == 2:
            v.add_(param, alpha=-lr * self.weight_cost)
        param.add_(v)


def _buffer_name(parameter: str) -> str:
    return parameter.replace(".", "_")


def gibbs_iterations(schedule: list[list[int]], epoch: int) -> int:
    """Gibbs iterations in the top RBM at ``epoch`` (0-based) from [[first_epoch, k], ...] (HOT06:
    3, 6 and 10 for epochs 1-100, 101-200, 201-300)."""
    k = schedule[0][1]
    for first, value in schedule:
        if epoch >= first:
            k = value
    return int(k)


def updown_epoch(dbn: UpDownDBN, x: torch.Tensor, labels: torch.Tensor, batches: torch.Tensor, k: int,
                 lr: Mapping[str, float], generator: torch.Generator | None,
                 velocity: UpDownVelocity | None = None) -> torch.Tensor:
    onehot = F.one_hot(labels, dbn.top.n_labels).to(x.dtype)
    err = torch.zeros((), device=x.device, dtype=x.dtype)
    for idx in batches:
        err += dbn.updown_step(x[idx], onehot[idx], k, lr, generator, velocity)
    return err / len(batches)
