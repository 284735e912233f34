"""Deep Boltzmann machine with binary layers (Salakhutdinov & Hinton 2009).

Layers x_0 = v, x_1 = h1, ..., x_L; weights W[l] [n_l, n_{l+1}] join layer l and l+1; biases b[l].
Energy: E(x) = -sum_l x_l.b_l - sum_l x_l^T W[l] x_{l+1}.

Given its two neighbours a layer is a product of Bernoullis, so the odd layers are independent
given the even ones and vice versa: Gibbs sampling updates all odd layers, then all even layers.
Everything is batched tensor code on the parameters' device (no host syncs).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dlgm.boltzmann.rbm import RBM, bernoulli

States = list  # [x_0, ..., x_L], each [batch, n_l]


class DBM(nn.Module):
    def __init__(self, sizes: Sequence[int], dtype: torch.dtype = torch.float32):
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"a DBM needs at least a visible and a hidden layer, got sizes {list(sizes)}")
        self.sizes = [int(n) for n in sizes]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.zeros(a, b, dtype=dtype), requires_grad=False) for a, b in zip(sizes, sizes[1:])
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(n, dtype=dtype), requires_grad=False) for n in sizes)

    @property
    def n_layers(self) -> int:
        """Number of hidden layers."""
        return len(self.sizes) - 1

    def params(self) -> dict[str, torch.Tensor]:
        """Named parameter tensors (for ``MomentumSGD``)."""
        named = {f"W{l}": w.data for l, w in enumerate(self.weights)}
        named.update({f"b{l}": b.data for l, b in enumerate(self.biases)})
        return named

    def extra_repr(self) -> str:
        return "-".join(map(str, self.sizes))

    # -- energy and conditionals ------------------------------------------------------------------
    def energy(self, x: States) -> torch.Tensor:
        e = -sum(xl @ b for xl, b in zip(x, self.biases))
        for l, w in enumerate(self.weights):
            e = e - ((x[l] @ w) * x[l + 1]).sum(-1)
        return e

    def layer_input(self, x: States, l: int, out: torch.Tensor | None = None) -> torch.Tensor:
        """Total input to layer ``l`` from its neighbours in ``x`` plus its bias (into ``out`` if given;
        ``out`` must not be one of the neighbours)."""
        if l == 0:
            return torch.addmm(self.biases[0], x[1], self.weights[0].t(), out=out)
        total = torch.addmm(self.biases[l], x[l - 1], self.weights[l - 1], out=out)
        if l < self.n_layers:
            total.addmm_(x[l + 1], self.weights[l].t())
        return total

    def gibbs(self, x: States, steps: int, generator: torch.Generator | None = None) -> States:
        """``steps`` sweeps: sample every odd layer given the even ones, then every even layer.
        Returns new state tensors (``x`` is left as it is); one uniform draw per layer per sweep."""
        x = [t.clone(memory_format=torch.contiguous_format) for t in x]
        probs = [torch.empty_like(t) for t in x]
        for _ in range(steps):
            for parity in (1, 0):
                for l in range(parity, self.n_layers + 1, 2):
                    bernoulli(self.layer_input(x, l, out=probs[l]).sigmoid_(), generator, out=x[l])
        return x

    # -- mean-field inference ---------------------------------------------------------------------
    def bottom_up(self, v: torch.Tensor) -> States:
        """Initial guess for mean-field: one upward pass, doubling the bottom-up input of every
        layer but the top one to stand in for the missing top-down input (SH09, Section 3.1)."""
        mu = [v]
        for l, w in enumerate(self.weights, start=1):
            scale = 1.0 if l == self.n_layers else 2.0
            mu.append(torch.addmm(self.biases[l], mu[-1], w, alpha=scale).sigmoid_())
        return mu

    def mean_field(self, v: torch.Tensor, iterations: int, init: States | None = None) -> States:
        """Fixed-point updates of the factorial posterior q(h|v) = prod_l prod_j mu_lj^h (1-mu_lj)^(1-h):
        mu_l = sigmoid(b_l + mu_{l-1} W[l-1] + mu_{l+1} W[l]^T), layers updated in order 1..L.
        Returns [v, mu_1, ..., mu_L]."""
        if init is None:
            mu = self.bottom_up(v)
        else:  # updated in place below: never write into the caller's tensors
            mu = [t.clone(memory_format=torch.contiguous_format) for t in init]
        mu[0] = v
        for _ in range(iterations):
            for l in range(1, self.n_layers + 1):
                self.layer_input(mu, l, out=mu[l]).sigmoid_()
        return mu

    def mean_field_residual(self, mu: States) -> torch.Tensor:
        """Largest change one more sweep of updates would make (0 at a fixed point)."""
        return max((torch.sigmoid(self.layer_input(mu, l)) - mu[l]).abs().max() for l in range(1, self.n_layers + 1))

    def variational_bound(self, mu: States) -> torch.Tensor:
        """E_q[-E(v, h)] + H(q) for each row: log p(v) >= this - log Z (the mean-field bound)."""
        bound = -self.energy(mu)  # the energy is multilinear and q factorises over units
        for m in mu[1:]:
            bound = bound + _bernoulli_entropy(m).sum(-1)
        return bound

    # -- free energy with the odd layers summed out -----------------------------------------------
    def even_log_prob_unnormalised(self, x: States) -> torch.Tensor:
        """log sum over the odd layers of exp(-E(x)), for the even layers of ``x`` (odd entries ignored)."""
        total = sum(x[l] @ self.biases[l] for l in range(0, self.n_layers + 1, 2))
        for l in range(1, self.n_layers + 1, 2):
            total = total + F.softplus(self.layer_input(x, l)).sum(-1)
        return total


def _bernoulli_entropy(p: torch.Tensor) -> torch.Tensor:
    return -(torch.special.xlogy(p, p) + torch.special.xlogy(1 - p, 1 - p))


@torch.no_grad()
def dbm_statistics(
    dbm: DBM,
    v: torch.Tensor,
    chains: States,
    *,
    mean_field_iterations: int,
    gibbs_steps: int,
    generator: torch.Generator | None = None,
    model_statistics: str = "states",
) -> tuple[dict[str, torch.Tensor], States, States]:
    """One stochastic approximation of the log-likelihood gradient (SH09, Algorithm 1).

    Data-dependent statistics from mean-field posteriors of ``v``; model statistics from the
    persistent ``chains`` (fantasy particles) advanced by ``gibbs_steps`` Gibbs sweeps, taken
    from their binary states or (``"probabilities"``) from ``chain_statistics``.
    Returns (ascent directions keyed like ``DBM.params``, new chains, mean-field posteriors)."""
    mu = dbm.mean_field(v, mean_field_iterations)
    chains = dbm.gibbs(chains, gibbs_steps, generator)
    neg = chain_statistics(dbm, chains, model_statistics)
    n, m = v.shape[0], chains[0].shape[0]
    grads = {}
    for l in range(dbm.n_layers):
        grads[f"W{l}"] = torch.addmm(mu[l].t() @ mu[l + 1], neg[l].t(), neg[l + 1], beta=1.0 / n, alpha=-1.0 / m)
    for l in range(dbm.n_layers + 1):
        grads[f"b{l}"] = mu[l].mean(0) - neg[l].mean(0)
    return grads, chains, mu


MODEL_STATISTICS = ("states", "probabilities")


def chain_statistics(dbm: DBM, chains: States, kind: str) -> States:
    """What the model statistics are computed from. ``"states"``: the chains' binary states.
    ``"probabilities"`` (the authors' dbm_mf.m): v stays binary; each odd layer becomes its
    probability given the sampled even layers (an exact conditional expectation, so the v-h1 and h1
    statistics keep their expectation and lose variance); each hidden even layer becomes its
    probability given those odd-layer probabilities (a mean-field step: not an exact expectation)."""
    if kind == "states":
        return chains
    if kind != "probabilities":
        raise ValueError(f"model_statistics must be one of {MODEL_STATISTICS}, got {kind!r}")
    x = list(chains)
    for l in range(1, dbm.n_layers + 1, 2):
        x[l] = torch.sigmoid(dbm.layer_input(chains, l))
    for l in range(2, dbm.n_layers + 1, 2):
        x[l] = torch.sigmoid(dbm.layer_input(x, l))
    return x


def random_chains(dbm: DBM, n: int, generator: torch.Generator | None = None) -> States:
    """Fantasy particles started from uniform binary states."""
    device, dtype = dbm.weights[0].device, dbm.weights[0].dtype
    return [bernoulli(torch.full((n, k), 0.5, device=device, dtype=dtype), generator) for k in dbm.sizes]


def pretraining_factors(n_layers: int) -> list[tuple[float, float]]:
    """(up_factor, down_factor) of each greedy RBM (SH09, Section 3.1): the bottom RBM doubles its
    bottom-up weights, the top RBM its top-down weights, middle RBMs both (equivalently, a plain RBM
    whose weights are halved when the DBM is composed)."""
    if n_layers == 1:
        return [(1.0, 1.0)]
    return [(2.0 if l < n_layers - 1 else 1.0, 2.0 if l > 0 else 1.0) for l in range(n_layers)]


@torch.no_grad()
def dbm_from_rbms(rbms: Sequence[RBM]) -> DBM:
    """Compose a DBM from greedily trained RBMs (SH09, Section 3.1).

    Weights W as they are (the doubling lived only in the RBMs' conditionals). Visible bias from
    the bottom RBM, top bias from the top RBM; an inner layer was the hidden layer of the RBM below
    and the visible layer of the RBM above, each of which saw only half of its DBM input, so its bias
    is the mean of the two (the authors' code adds the two undoubled biases, the same thing)."""
    sizes = [rbms[0].n_visible] + [r.n_hidden for r in rbms]
    dbm = DBM(sizes, dtype=rbms[0].W.dtype).to(rbms[0].W.device)
    dbm.biases[0].copy_(rbms[0].b_vis)
    for l, rbm in enumerate(rbms):
        dbm.weights[l].copy_(rbm.W)
        above = rbms[l + 1].b_vis if l + 1 < len(rbms) else None
        dbm.biases[l + 1].copy_(rbm.b_hid if above is None else (rbm.b_hid + above) / 2)
    return dbm
