"""The DBN's top-level associative memory: an RBM whose visible layer is the penultimate layer's
binary units plus one softmax group of label units (HOT06, Figure 1).

Energy: E(v, y, h) = -v.b_vis - y.b_lab - h.b_hid - v^T W h - y^T U h, y one-hot.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dlgm.boltzmann.rbm import RBM, bernoulli


class LabelledRBM(nn.Module):
    def __init__(self, n_visible: int, n_labels: int, n_hidden: int, init_std: float = 0.01,
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.rbm = RBM(n_visible, n_hidden, init_std=init_std, generator=generator, dtype=dtype)
        self.U = nn.Parameter(torch.randn(n_labels, n_hidden, generator=generator, dtype=dtype) * init_std)
        self.b_lab = nn.Parameter(torch.zeros(n_labels, dtype=dtype))
        self.n_labels = n_labels

    def params(self) -> dict[str, torch.Tensor]:
        r = self.rbm
        return {"W": r.W.data, "b_vis": r.b_vis.data, "b_hid": r.b_hid.data, "U": self.U.data, "b_lab": self.b_lab.data}

    def hidden_probs(self, v: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(torch.addmm(self.rbm.hidden_input(v), y, self.U))

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        return self.rbm.visible_probs(h)

    def label_probs(self, h: torch.Tensor) -> torch.Tensor:
        return torch.softmax(torch.addmm(self.b_lab, h, self.U.t()), -1)

    def free_energy(self, v: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """F(v, y) = -log sum_h exp(-E(v, y, h)); y may be one-hot rows (or any real vector)."""
        r = self.rbm
        return -(v @ r.b_vis) - (y @ self.b_lab) - F.softplus(torch.addmm(r.hidden_input(v), y, self.U)).sum(-1)

    def label_free_energies(self, v: torch.Tensor) -> torch.Tensor:
        """[B, n_labels]: F(v, y) for each of the label configurations (one loop over labels, batched)."""
        base = self.rbm.hidden_input(v)
        vis = v @ self.rbm.b_vis
        cols = [-vis - self.b_lab[c] - F.softplus(base + self.U[c]).sum(-1) for c in range(self.n_labels)]
        return torch.stack(cols, 1)

    def classify(self, v: torch.Tensor) -> torch.Tensor:
        """arg max_y p(y | v) = arg min_y F(v, y) (HOT06, Section 6)."""
        return self.label_free_energies(v).argmin(1)

    @torch.no_grad()
    def cd_statistics(self, v: torch.Tensor, y: torch.Tensor, k: int, generator: torch.Generator | None,
                      mean_field_reconstruction: bool = False):
        """CD-k with the labels in the visible layer. In the negative phase visibles are sampled and
        the labels enter as their softmax probabilities (HOT06, Appendix B does the same);
        ``mean_field_reconstruction`` puts the last step's visible probabilities in the statistics
        instead (HOT06 Sec. 6.1: real-valued visible activities, as the RBMs below do)."""
        n = v.shape[0]
        h_data = self.hidden_probs(v, y)
        h = bernoulli(h_data, generator)
        for step in range(k):
            v_probs = self.visible_probs(h)
            last = step + 1 == k
            v_neg = v_probs if mean_field_reconstruction and last else bernoulli(v_probs, generator)
            y_neg = self.label_probs(h)
            h_neg = self.hidden_probs(v_neg, y_neg)
            if not last:
                h = bernoulli(h_neg, generator)
        grads = {
            "W": torch.addmm(v.t() @ h_data, v_neg.t(), h_neg, alpha=-1.0) / n,
            "U": torch.addmm(y.t() @ h_data, y_neg.t(), h_neg, alpha=-1.0) / n,
            "b_vis": (v - v_neg).mean(0),
            "b_lab": (y - y_neg).mean(0),
            "b_hid": (h_data - h_neg).mean(0),
        }
        return grads, ((v - self.visible_probs(h)) ** 2).sum() / n

    @torch.no_grad()
    def sample_with_label(self, labels: torch.Tensor, steps: int, generator: torch.Generator | None,
                          v_init: torch.Tensor | None = None) -> torch.Tensor:
        """Alternating Gibbs sampling with the label units clamped (HOT06, Figure 8); returns the
        visible (penultimate-layer) probabilities of the last step, one row per label given."""
        y = F.one_hot(labels, self.n_labels).to(self.U.dtype)
        v = v_init if v_init is not None else bernoulli(
            torch.full((labels.shape[0], self.rbm.n_visible), 0.5, device=y.device, dtype=y.dtype), generator)
        for _ in range(steps):
            h = bernoulli(self.hidden_probs(v, y), generator)
            probs = self.visible_probs(h)
            v = bernoulli(probs, generator)
        return probs
