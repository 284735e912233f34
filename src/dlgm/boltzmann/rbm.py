"""Binary restricted Boltzmann machine, CD-k / PCD statistics and a momentum updater.

Shared by the DBN (Hinton, Osindero & Teh 2006) and the DBM (Salakhutdinov & Hinton 2009).
Everything is batched tensor code on the parameters' device; nothing here syncs with the host.

Energy of the plain RBM: E(v, h) = -v.b_vis - h.b_hid - v^T W h.
``up_factor`` / ``down_factor`` scale W in p(h|v) / p(v|h) only (the DBM's pretraining RBMs use
2.0 on one side to make up for the missing top-down or bottom-up input); with ``scale_biases`` they
scale that side's bias too, as the authors' DBM code does (rbm.m, rbm_l2.m), which makes that bias
learn twice as fast. ``free_energy`` and the exact enumeration in
``dlgm.testing.boltzmann_enumeration`` are those of the plain RBM.
``n_labels`` > 0 adds the label units of the authors' rbm_l2.m (the DBM's top pretraining RBM):
one-hot softmax visible units y beside v, E += -y.c - y^T U h; only ``cd_epoch`` trains them.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from dlgm.boltzmann.labels import categorical

PARAMS = ("W", "b_vis", "b_hid")


_THRESHOLD_OFFSET = torch.tensor(-32768.5)  # a CPU scalar: combines with any device and float dtype


def random_words(n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                 out: torch.Tensor | None = None) -> torch.Tensor:
    """The random bits of ``n`` units: ceil(n / 4) draws over the full int64 range (into ``out``,
    int64 of that length, if given), read by ``bernoulli`` as 16-bit words."""
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device) if out is None else out
    return words.random_(-2 ** 63, None, generator=generator)


def bernoulli(probs: torch.Tensor, generator: torch.Generator | None = None,
              out: torch.Tensor | None = None) -> torch.Tensor:
    """Binary sample with the probabilities' dtype; ``generator`` must live on their device.
    ``out`` may be a preallocated buffer of the same shape, or ``probs`` itself (sampled in place).

    Each unit's uniform is the 16-bit fraction (k + 1/2) / 2^16, four of them cut from one 64-bit
    draw: on a CPU torch's Mersenne Twister makes one 64-bit number about as fast as one float, so
    this takes a third of the time of ``torch.rand`` (docs/speed.md). A unit is on with probability
    p rounded to a multiple of 2^-16 (off by at most 2^-17; exactly 0 and 1 stay exact)."""
    n = probs.numel()
    k = random_words(n, generator, probs.device).view(torch.int16)[:n].view(probs.shape)
    # (k + 32768 + 1/2) / 2^16 < p  <=>  k < 2^16 p - 32768.5, with k the signed 16-bit draw; one
    # pass (2^16 p is exact, so this rounds as the product and the difference would)
    threshold = torch.add(_THRESHOLD_OFFSET, probs.detach(), alpha=65536.0, out=out)  # a sample carries no gradient
    return torch.lt(k, threshold, out=threshold)


class RBM(nn.Module):
    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        up_factor: float = 1.0,
        down_factor: float = 1.0,
        init_std: float = 0.01,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        n_labels: int = 0,
        scale_biases: bool = False,
    ):
        super().__init__()
        self.n_visible, self.n_hidden, self.n_labels = int(n_visible), int(n_hidden), int(n_labels)
        self.up_factor, self.down_factor = float(up_factor), float(down_factor)
        self.scale_biases = bool(scale_biases)
        w = torch.randn(n_visible, n_hidden, generator=generator, dtype=dtype) * init_std
        self.W = nn.Parameter(w)
        self.b_vis = nn.Parameter(torch.zeros(n_visible, dtype=dtype))
        self.b_hid = nn.Parameter(torch.zeros(n_hidden, dtype=dtype))
        if self.n_labels:  # drawn after W, so that W is the same with or without labels
            u = torch.randn(n_labels, n_hidden, generator=generator, dtype=dtype) * init_std
            self.label_weights = nn.Parameter(u)
            self.label_bias = nn.Parameter(torch.zeros(n_labels, dtype=dtype))

    def extra_repr(self) -> str:
        labels = f", n_labels={self.n_labels}" if self.n_labels else ""
        scaled = ", scale_biases=True" if self.scale_biases else ""
        return (f"{self.n_visible}, {self.n_hidden}, up_factor={self.up_factor}, down_factor={self.down_factor}"
                f"{labels}{scaled}")

    @property
    def hid_bias_factor(self) -> float:
        """What multiplies b_hid in p(h|v)."""
        return self.up_factor if self.scale_biases else 1.0

    @property
    def vis_bias_factor(self) -> float:
        """What multiplies b_vis in p(v|h)."""
        return self.down_factor if self.scale_biases else 1.0

    # -- conditionals ---------------------------------------------------------------------------
    def hidden_input(self, v: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        return torch.addmm(self.b_hid, v, self.W, beta=self.hid_bias_factor, alpha=self.up_factor, out=out)

    def visible_input(self, h: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        return torch.addmm(self.b_vis, h, self.W.t(), beta=self.vis_bias_factor, alpha=self.down_factor, out=out)

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.hidden_input(v))

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.visible_input(h))

    def sample_hidden(self, v: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return bernoulli(self.hidden_probs(v), generator)

    def sample_visible(self, h: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return bernoulli(self.visible_probs(h), generator)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = -log sum_h exp(-E(v, h)) of the plain RBM, one value per row of ``v``."""
        return -(v @ self.b_vis) - F.softplus(torch.addmm(self.b_hid, v, self.W)).sum(-1)

    def gibbs(self, v: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``k`` full steps v -> h -> v of alternating Gibbs sampling; returns the binary visibles."""
        for _ in range(k):
            v = self.sample_visible(self.sample_hidden(v, generator), generator)
        return v


# -- contrastive divergence ---------------------------------------------------------------------
@torch.no_grad()
def cd_statistics(
    rbm: RBM,
    v_data: torch.Tensor,
    k: int = 1,
    generator: torch.Generator | None = None,
    chain: torch.Tensor | None = None,
    mean_field_reconstruction: bool = False,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """CD-k (``chain=None``) or PCD (``chain`` = persistent visible states) statistics.

    Returns ``(grads, new_chain)``: ``grads`` maps ``W``, ``b_vis``, ``b_hid`` to the batch mean of
    <positive> - <negative> statistics (an ascent direction of the log-likelihood), with hidden
    probabilities in place of hidden states on both sides (Rao-Blackwellised); ``new_chain`` holds the
    binary visible states after the k steps (feed it back for PCD).
    ``mean_field_reconstruction=True`` uses the visible probabilities of the last step in the
    negative statistics, as Hinton & Salakhutdinov's released ``rbm.m`` does (lower variance, biased).
    """
    grads, v_neg, _ = _cd(rbm, v_data, k, generator, chain, mean_field_reconstruction)
    return grads, v_neg


def _cd(rbm, v_data, k, generator, chain, mean_field_reconstruction):
    """CD-k statistics plus the last step's visible probabilities (the reconstruction)."""
    n = v_data.shape[0]
    h_data = rbm.hidden_probs(v_data)
    if chain is None:
        h_sample = bernoulli(h_data, generator)
    else:
        h_sample = rbm.sample_hidden(chain, generator)
    for step in range(k):
        v_probs = rbm.visible_probs(h_sample)
        v_neg = bernoulli(v_probs, generator)
        if step + 1 < k:
            h_sample = rbm.sample_hidden(v_neg, generator)
    v_stat = v_probs if mean_field_reconstruction else v_neg
    h_neg = rbm.hidden_probs(v_stat)
    m = v_stat.shape[0]  # a persistent chain may hold another number of particles than the batch
    w_grad = torch.addmm(v_data.t() @ h_data, v_stat.t(), h_neg, beta=1.0 / n, alpha=-1.0 / m)
    grads = {
        "W": w_grad,
        "b_vis": v_data.mean(0) - v_stat.mean(0),
        "b_hid": h_data.mean(0) - h_neg.mean(0),
    }
    return grads, v_neg, v_probs


class MomentumSGD(nn.Module):
    """Velocity buffers for SGD with momentum and L2 weight cost on weight matrices.

    velocity = momentum * velocity + lr * (grad - weight_cost * param)   (weight cost only on params
    with 2 dimensions); param += velocity. ``grad`` is an ascent direction. It is a module so that
    its buffers go into checkpoints through ``state_dict``.
    """

    def __init__(self, params: Mapping[str, torch.Tensor]):
        super().__init__()
        self._names = list(params)
        for name, p in params.items():
            self.register_buffer(f"v_{name}", torch.zeros_like(p, memory_format=torch.contiguous_format))

    @torch.no_grad()
    def step(
        self,
        params: Mapping[str, torch.Tensor],
        grads: Mapping[str, torch.Tensor],
        lr: float,
        momentum: float = 0.0,
        weight_cost: float = 0.0,
    ) -> None:
        for name in self._names:
            p, g, vel = params[name], grads[name], getattr(self, f"v_{name}")
            vel.mul_(momentum).add_(g, alpha=lr)
            if weight_cost and p.dim() == 2:
                vel.add_(p, alpha=-lr * weight_cost)
            p.add_(vel)

    def velocity(self, name: str) -> torch.Tensor:
        return getattr(self, f"v_{name}")


def rbm_params(rbm: RBM) -> dict[str, torch.Tensor]:
    named = {"W": rbm.W.data, "b_vis": rbm.b_vis.data, "b_hid": rbm.b_hid.data}
    if rbm.n_labels:
        named.update(U=rbm.label_weights.data, c=rbm.label_bias.data)
    return named


@torch.no_grad()
def cd_epoch(
    rbm: RBM,
    updater: MomentumSGD,
    data: torch.Tensor,
    batches: torch.Tensor,
    *,
    lr: float,
    momentum: float,
    weight_cost: float,
    k: int = 1,
    generator: torch.Generator | None = None,
    mean_field_reconstruction: bool = False,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """One epoch of CD-k over ``data[batches[i]]`` for each row i of ``batches`` (index tensor
    [n_batches, batch_size] on the device). Returns the mean squared error per image of the last
    step's reconstruction, as rbm.m prints it (a device tensor, so the caller syncs once per epoch).

    The same update as ``cd_statistics`` followed by ``updater.step``, written for speed: every
    intermediate lives in a buffer allocated once per epoch, samples are drawn in place, and the
    weight statistics are accumulated by ``addmm_`` straight into the velocity (no gradient matrix).

    An RBM with label units takes the one-hot ``labels`` of the rows of ``data`` (rbm_l2.m): the
    positive phase has them clamped beside v; each step of the negative phase draws the labels from
    softmax(c + h U^T) with the same hidden sample that reconstructs v, and the hidden probabilities
    of the next step take both; U and c are learned from <y h> and <y> like W and b_vis (U with the
    weight cost)."""
    if (labels is not None) != bool(rbm.n_labels):
        raise ValueError(f"an RBM with {rbm.n_labels} label units needs labels exactly when it has label units")
    W, b_vis, b_hid = rbm.W.data, rbm.b_vis.data, rbm.b_hid.data
    vel_w, vel_bv, vel_bh = updater.velocity("W"), updater.velocity("b_vis"), updater.velocity("b_hid")
    n = batches.shape[1]
    new = lambda *shape: torch.empty(shape, device=W.device, dtype=W.dtype)  # noqa: E731
    # [data; model] halves side by side, so that both weight statistics are one GEMM with K = 2n
    vv, hh = new(2 * n, rbm.n_visible), new(2 * n, rbm.n_hidden)
    v, v_stat, h_data, h_neg = vv[:n], vv[n:], hh[:n], hh[n:]
    v_other, h_sample = new(n, rbm.n_visible), new(n, rbm.n_hidden)
    # the last step's probabilities (the reconstruction) and its sample; one of them is v_stat
    v_probs, v_neg = (v_stat, v_other) if mean_field_reconstruction else (v_other, v_stat)
    y = y_neg = None
    if labels is not None:
        U, c = rbm.label_weights.data, rbm.label_bias.data
        yy = new(2 * n, rbm.n_labels)
        y, y_neg = yy[:n], yy[n:]
    err = torch.zeros((), device=data.device, dtype=data.dtype)
    up, down, up_bias, down_bias = rbm.up_factor, rbm.down_factor, rbm.hid_bias_factor, rbm.vis_bias_factor
    recon_diff = new(n, rbm.n_visible)
    # bias statistics as products with these: sum over the data half minus the model half, and sum over both
    signs, ones = new(2 * n), new(2 * n).fill_(1.0)
    signs[:n], signs[n:] = 1.0, -1.0

    def hidden_probs_(x: torch.Tensor, y_: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        torch.addmm(b_hid, x, W, beta=up_bias, alpha=up, out=out)
        if labels is not None:
            out.addmm_(y_, U)
        return out.sigmoid_()

    for idx in batches:
        torch.index_select(data, 0, idx, out=v)
        if labels is not None:
            torch.index_select(labels, 0, idx, out=y)
        hidden_probs_(v, y, h_data)
        bernoulli(h_data, generator, out=h_sample)
        for step in range(k):
            if labels is not None:
                categorical(torch.softmax(torch.addmm(c, h_sample, U.t()), -1), generator, out=y_neg)
            torch.addmm(b_vis, h_sample, W.t(), beta=down_bias, alpha=down, out=v_probs).sigmoid_()
            bernoulli(v_probs, generator, out=v_neg)
            if step + 1 < k:
                hidden_probs_(v_neg, y_neg, h_neg)
                bernoulli(h_neg, generator, out=h_sample)
        hidden_probs_(v_stat, y_neg, h_neg)
        diff = torch.sub(v_probs, v, out=recon_diff).view(-1)
        err.add_(torch.dot(diff, diff), alpha=1.0 / n)
        # velocity = momentum * velocity + lr * (<v h>_data - <v h>_model - weight_cost * W); W += velocity
        vel_bv.addmv_(vv.t(), signs, beta=momentum, alpha=lr / n)
        h_neg.neg_()
        vel_bh.addmv_(hh.t(), ones, beta=momentum, alpha=lr / n)
        vel_w.addmm_(vv.t(), hh, beta=momentum, alpha=lr / n)
        if weight_cost:
            vel_w.add_(W, alpha=-lr * weight_cost)
        W.add_(vel_w)
        b_vis.add_(vel_bv)
        b_hid.add_(vel_bh)
        if labels is not None:
            _label_step(updater, U, c, yy, hh, signs, n, lr=lr, momentum=momentum, weight_cost=weight_cost)
    return err / len(batches)


def _label_step(updater: MomentumSGD, U: torch.Tensor, c: torch.Tensor, yy: torch.Tensor, hh: torch.Tensor,
                signs: torch.Tensor, n: int, *, lr: float, momentum: float, weight_cost: float) -> None:
    """The label units' part of a CD update, from [data; model] label states ``yy`` and
    [data; -model] hidden probabilities ``hh`` (the momentum update of ``MomentumSGD.step``);
    ``signs`` is +1 for the data half, -1 for the model half."""
    vel_u, vel_c = updater.velocity("U"), updater.velocity("c")
    vel_c.addmv_(yy.t(), signs, beta=momentum, alpha=lr / n)
    vel_u.addmm_(yy.t(), hh, beta=momentum, alpha=lr / n)
    if weight_cost:
        vel_u.add_(U, alpha=-lr * weight_cost)
    U.add_(vel_u)
    c.add_(vel_c)
