"""Diagonal-covariance Gaussian-mixture emissions, one mixture per HMM state.

``log_likelihood`` scores frames against every state at once (two matrix products); the M-step
takes frame-level state posteriors (from forward-backward or an alignment), so the same code
serves Baum-Welch and Viterbi training. ``split`` doubles the components (HTK-style mixing up).
"""
from __future__ import annotations

import math

import torch
from torch import nn


class DiagGMM(nn.Module):
    def __init__(self, states: int, dim: int, components: int = 1, var_floor: float = 1e-2):
        super().__init__()
        self.var_floor = var_floor
        self.register_buffer("means", torch.zeros(states, components, dim))
        self.register_buffer("variances", torch.ones(states, components, dim))
        self.register_buffer("log_weights", torch.full((states, components), -math.log(components)))

    @property
    def states(self) -> int:
        return self.means.shape[0]

    @property
    def components(self) -> int:
        return self.means.shape[1]

    def flat_start(self, frames: torch.Tensor) -> None:
        """Every state = the global mean and variance (HTK's flat start)."""
        mean, var = frames.mean(0), frames.var(0, unbiased=False).clamp_min(self.var_floor)
        self.means.copy_(mean.expand_as(self.means))
        self.variances.copy_(var.expand_as(self.variances))

    def component_log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """[N, S, M] log N(x | mu_sm, diag var_sm) + log w_sm."""
        states, comps, dim = self.means.shape
        prec = 1.0 / self.variances.reshape(-1, dim)
        mu = self.means.reshape(-1, dim)
        const = -0.5 * (dim * math.log(2 * math.pi) + self.variances.log().sum(-1).reshape(-1) + (mu * mu * prec).sum(-1))
        x = x.to(mu.dtype)
        quad = (x * x) @ prec.T - 2.0 * x @ (mu * prec).T
        return (const - 0.5 * quad).view(-1, states, comps) + self.log_weights

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """[..., D] frames -> [..., S] state log-likelihoods."""
        flat = x.reshape(-1, x.shape[-1])
        out = torch.logsumexp(self.component_log_likelihood(flat), dim=-1)
        return out.view(*x.shape[:-1], self.states)

    @torch.no_grad()
    def accumulate(self, x: torch.Tensor, gamma: torch.Tensor) -> dict:
        """Sufficient statistics from frames x [N, D] with state posteriors gamma [N, S]."""
        comp = self.component_log_likelihood(x)
        resp = torch.softmax(comp, dim=-1) * gamma.unsqueeze(-1).to(comp.dtype)  # [N, S, M]
        flat = resp.reshape(resp.shape[0], -1)
        x = x.to(flat.dtype)
        return {"occ": flat.sum(0), "first": flat.T @ x, "second": flat.T @ (x * x)}

    @torch.no_grad()
    def update(self, stats: dict, min_occupancy: float = 1e-3) -> None:
        """M-step; a component that saw (almost) no data keeps its old parameters."""
        states, comps, dim = self.means.shape
        occ = stats["occ"].view(states, comps)
        seen = occ > min_occupancy
        safe = occ.clamp_min(min_occupancy).unsqueeze(-1)
        mean = stats["first"].view(states, comps, dim) / safe
        var = (stats["second"].view(states, comps, dim) / safe - mean * mean).clamp_min(self.var_floor)
        self.means.copy_(torch.where(seen.unsqueeze(-1), mean, self.means))
        self.variances.copy_(torch.where(seen.unsqueeze(-1), var, self.variances))
        state_occ = occ.sum(-1, keepdim=True)
        weights = torch.where(state_occ > min_occupancy, occ / state_occ.clamp_min(min_occupancy), self.log_weights.exp())
        self.log_weights.copy_(weights.clamp_min(1e-8).log())

    @torch.no_grad()
    def split(self, perturb: float = 0.2) -> None:
        """Double the components: each becomes two with means +-perturb std and half the weight."""
        std = self.variances.sqrt()
        self.means = torch.cat([self.means - perturb * std, self.means + perturb * std], dim=1)
        self.variances = torch.cat([self.variances, self.variances], dim=1)
        self.log_weights = torch.cat([self.log_weights, self.log_weights], dim=1) - math.log(2)
