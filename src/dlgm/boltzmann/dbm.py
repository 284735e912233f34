"""Deep Boltzmann machine with binary layers (Salakhutdinov & Hinton 2009).

Layers x_0 = v, x_1 = h1, ..., x_L; weights W[l] [n_l, n_{l+1}] join layer l and l+1; biases b[l].
Energy: E(x) = -sum_l x_l.b_l - sum_l x_l^T W[l] x_{l+1}.

Given its two neighbours a layer is a product of Bernoullis, so the odd layers are independent
given the even ones and vice versa: Gibbs sampling updates all odd layers, then all even layers.

Optional label units (``n_labels`` > 0, off by default; ``dlgm.boltzmann.labels``): a one-hot
softmax layer y joined to the top hidden layer x_L, E += -y.c - y^T U x_L, U [n_labels, n_L]. It is
state x_{L+1}, so its parity is opposite to x_L's and the chain structure above is unchanged:
``n_layers`` still counts the hidden layers, ``n_states`` counts every state tensor, and
``coupling(l)`` / ``bias(l)`` give the parameters of the whole chain (``coupling(L)`` = U^T).
Everything is batched tensor code on the parameters' device (no host syncs).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dlgm.boltzmann.labels import categorical, categorical_entropy
from dlgm.boltzmann.rbm import RBM, bernoulli

States = list  # [x_0, ..., x_L] (and the labels x_{L+1} when the model has them), each [batch, n_l]


class DBM(nn.Module):
    def __init__(self, sizes: Sequence[int], n_labels: int = 0, dtype: torch.dtype = torch.float32):
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"a DBM needs at least a visible and a hidden layer, got sizes {list(sizes)}")
        if n_labels and n_labels < 2:
            raise ValueError(f"a label layer needs at least 2 classes, got n_labels = {n_labels}")
        self.sizes = [int(n) for n in sizes]
        self.n_labels = int(n_labels)
        self.weights = nn.ParameterList(
            nn.Parameter(torch.zeros(a, b, dtype=dtype), requires_grad=False) for a, b in zip(sizes, sizes[1:])
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(n, dtype=dtype), requires_grad=False) for n in sizes)
        if self.n_labels:  # only then: a model without labels keeps its state_dict keys
            self.label_weights = nn.Parameter(torch.zeros(n_labels, sizes[-1], dtype=dtype), requires_grad=False)
            self.label_bias = nn.Parameter(torch.zeros(n_labels, dtype=dtype), requires_grad=False)

    @property
    def n_layers(self) -> int:
        """Number of hidden layers."""
        return len(self.sizes) - 1

    @property
    def n_states(self) -> int:
        """Number of state tensors: v, the hidden layers, and the labels if the model has them."""
        return len(self.sizes) + (1 if self.n_labels else 0)

    @property
    def label_layer(self) -> int | None:
        """Index of the label layer in a state list (None without labels)."""
        return self.n_layers + 1 if self.n_labels else None

    @property
    def state_sizes(self) -> list[int]:
        return self.sizes + ([self.n_labels] if self.n_labels else [])

    def coupling(self, l: int) -> torch.Tensor:
        """The weights [n_l, n_{l+1}] between states l and l + 1 (U^T above the top hidden layer)."""
        return self.weights[l] if l < self.n_layers else self.label_weights.t()

    def bias(self, l: int) -> torch.Tensor:
        return self.biases[l] if l <= self.n_layers else self.label_bias

    def params(self) -> dict[str, torch.Tensor]:
        """Named parameter tensors (for ``MomentumSGD``); the label weights U and biases c as "U", "c"."""
        named = {f"W{l}": w.data for l, w in enumerate(self.weights)}
        named.update({f"b{l}": b.data for l, b in enumerate(self.biases)})
        if self.n_labels:
            named.update(U=self.label_weights.data, c=self.label_bias.data)
        return named

    def extra_repr(self) -> str:
        return "-".join(map(str, self.sizes)) + (f", n_labels={self.n_labels}" if self.n_labels else "")

    # -- energy and conditionals ------------------------------------------------------------------
    def energy(self, x: States) -> torch.Tensor:
        e = -sum(x[l] @ self.bias(l) for l in range(self.n_states))
        for l in range(self.n_states - 1):
            e = e - ((x[l] @ self.coupling(l)) * x[l + 1]).sum(-1)
        return e

    def layer_input(self, x: States, l: int, out: torch.Tensor | None = None) -> torch.Tensor:
        """Total input to layer ``l`` from its neighbours in ``x`` plus its bias (into ``out`` if given;
        ``out`` must not be one of the neighbours)."""
        if l == 0:
            return torch.addmm(self.biases[0], x[1], self.weights[0].t(), out=out)
        total = torch.addmm(self.bias(l), x[l - 1], self.coupling(l - 1), out=out)
        if l + 1 < self.n_states:
            total.addmm_(x[l + 1], self.coupling(l).t())
        return total

    def activate_(self, l: int, total: torch.Tensor) -> torch.Tensor:
        """Layer ``l``'s unit probabilities from its total input, in place: sigmoid, or the softmax
        of the label layer."""
        if l == self.label_layer:
            return total.copy_(torch.softmax(total, -1))
        return total.sigmoid_()

    def sample(self, l: int, probs: torch.Tensor, generator: torch.Generator | None = None,
               out: torch.Tensor | None = None) -> torch.Tensor:
        """A state of layer ``l`` given its unit probabilities: Bernoulli units, or one-hot labels."""
        if l == self.label_layer:
            return categorical(probs, generator, out=out)
        return bernoulli(probs, generator, out=out)

    def log_sum_out(self, l: int, total: torch.Tensor) -> torch.Tensor:
        """log sum over the states x_l of exp(x_l . total), one value per row: sum softplus for binary
        units, log-sum-exp over the classes for the labels."""
        if l == self.label_layer:
            return torch.logsumexp(total, -1)
        return F.softplus(total).sum(-1)

    def mode(self, l: int, values: torch.Tensor, threshold: float) -> torch.Tensor:
        """The state of layer ``l`` that ``values`` favour: units above ``threshold`` on (probabilities
        at 0.5, inputs at 0), or the labels' largest entry."""
        if l == self.label_layer:
            return F.one_hot(values.argmax(-1), values.shape[-1]).to(values.dtype)
        return (values > threshold).to(values.dtype)

    def gibbs(self, x: States, steps: int, generator: torch.Generator | None = None) -> States:
        """``steps`` sweeps: sample every odd layer given the even ones, then every even layer.
        Returns new state tensors (``x`` is left as it is); one uniform draw per unit (per row for
        the labels) per sweep. The labels are sampled as dbm_mf.m samples its chains' labels: from
        softmax(c + x_L U^T), in the group opposite to the top hidden layer."""
        x = [t.clone(memory_format=torch.contiguous_format) for t in x]
        probs = [torch.empty_like(t) for t in x]
        for _ in range(steps):
            for parity in (1, 0):
                for l in range(parity, self.n_states, 2):
                    self.sample(l, self.activate_(l, self.layer_input(x, l, out=probs[l])), generator, out=x[l])
        return x

    # -- mean-field inference ---------------------------------------------------------------------
    def bottom_up(self, v: torch.Tensor, labels: torch.Tensor | None = None) -> States:
        """Initial guess for mean-field: one upward pass, doubling the bottom-up input of every
        layer but the top one to stand in for the missing top-down input (SH09, Section 3.1).
        The top layer also gets the input of clamped ``labels`` (as the authors' mf.m starts);
        free labels start at their softmax given that top layer."""
        mu = [v]
        for l, w in enumerate(self.weights, start=1):
            scale = 1.0 if l == self.n_layers else 2.0
            total = torch.addmm(self.biases[l], mu[-1], w, alpha=scale)
            if l == self.n_layers and labels is not None:
                total.addmm_(labels, self.label_weights)
            mu.append(total.sigmoid_())
        if self.n_labels:
            mu.append(labels if labels is not None else self.activate_(self.label_layer, self.layer_input(mu, self.label_layer)))
        return mu

    def mean_field(self, v: torch.Tensor, iterations: int, init: States | None = None,
                   labels: torch.Tensor | None = None) -> States:
        """Fixed-point updates of the factorial posterior q(h|v) = prod_l prod_j mu_lj^h (1-mu_lj)^(1-h):
        mu_l = sigmoid(b_l + mu_{l-1} W[l-1] + mu_{l+1} W[l]^T), layers updated in order 1..L, then
        the labels' q(y) = softmax(c + mu_L U^T). ``labels`` (one-hot rows) clamp y instead: the
        posterior q(h | v, y) of the authors' positive phase (mf.m). Returns [v, mu_1, ..., mu_L]
        (and q(y) or the clamped labels when the model has labels)."""
        clamped = self._check_labels(labels)
        if init is None:
            mu = self.bottom_up(v, labels)
        else:  # updated in place below: never write into the caller's tensors
            mu = [t.clone(memory_format=torch.contiguous_format) for t in init]
        mu[0] = v
        if clamped:
            mu[-1] = labels
        free = range(1, self.n_states - int(clamped))
        for _ in range(iterations):
            for l in free:
                self.activate_(l, self.layer_input(mu, l, out=mu[l]))
        return mu

    def _check_labels(self, labels: torch.Tensor | None) -> bool:
        if labels is None:
            return False
        if not self.n_labels or labels.shape[-1] != self.n_labels:
            raise ValueError(f"labels of shape {tuple(labels.shape)} for a DBM with {self.n_labels} label units")
        return True

    def mean_field_residual(self, mu: States, clamped_labels: bool = False) -> torch.Tensor:
        """Largest change one more sweep of updates would make (0 at a fixed point)."""
        free = range(1, self.n_states - (1 if clamped_labels else 0))
        return max((self.activate_(l, self.layer_input(mu, l)) - mu[l]).abs().max() for l in free)

    def variational_bound(self, mu: States) -> torch.Tensor:
        """E_q[-E(v, h)] + H(q) for each row: log p(v) >= this - log Z (the mean-field bound; with the
        labels clamped, log p(v, y) >= this - log Z)."""
        bound = -self.energy(mu)  # the energy is multilinear and q factorises over units
        for l in range(1, self.n_states):
            entropy = categorical_entropy(mu[l]) if l == self.label_layer else _bernoulli_entropy(mu[l]).sum(-1)
            bound = bound + entropy
        return bound

    # -- free energy with the layers of one parity summed out -------------------------------------
    def marginal_log_prob_unnormalised(self, x: States, kept_parity: int) -> torch.Tensor:
        """log of the sum of exp(-E(x)) over the layers of parity 1 - ``kept_parity``, for the kept
        layers of ``x`` (the other entries are ignored); one value per row."""
        total = sum(x[l] @ self.bias(l) for l in range(kept_parity, self.n_states, 2))
        for l in range(1 - kept_parity, self.n_states, 2):
            total = total + self.log_sum_out(l, self.layer_input(x, l))
        return total

    def even_log_prob_unnormalised(self, x: States) -> torch.Tensor:
        """log sum over the odd layers of exp(-E(x)), for the even layers of ``x`` (odd entries ignored)."""
        return self.marginal_log_prob_unnormalised(x, 0)


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
    labels: torch.Tensor | None = None,
) -> tuple[dict[str, torch.Tensor], States, States]:
    """One stochastic approximation of the log-likelihood gradient (SH09, Algorithm 1).

    Data-dependent statistics from mean-field posteriors of ``v``; model statistics from the
    persistent ``chains`` (fantasy particles) advanced by ``gibbs_steps`` Gibbs sweeps, taken
    from their binary states or (``"probabilities"``) from ``chain_statistics``. A model with label
    units takes the one-hot ``labels`` of the rows of ``v``, clamped in the positive phase (dbm_mf.m):
    the data statistics of U and c are <y mu_L^T> and <y>; its chains carry labels of their own.
    Returns (ascent directions keyed like ``DBM.params``, new chains, mean-field posteriors)."""
    if bool(dbm.n_labels) != (labels is not None):
        raise ValueError(f"a DBM with {dbm.n_labels} label units needs labels exactly when it has label units")
    mu = dbm.mean_field(v, mean_field_iterations, labels=labels)
    chains = dbm.gibbs(chains, gibbs_steps, generator)
    neg = chain_statistics(dbm, chains, model_statistics)
    n, m = v.shape[0], chains[0].shape[0]
    grads = {}
    for l in range(dbm.n_layers):
        grads[f"W{l}"] = torch.addmm(mu[l].t() @ mu[l + 1], neg[l].t(), neg[l + 1], beta=1.0 / n, alpha=-1.0 / m)
    for l in range(dbm.n_layers + 1):
        grads[f"b{l}"] = mu[l].mean(0) - neg[l].mean(0)
    if dbm.n_labels:  # U is stored [n_labels, n_L]
        y, top = dbm.label_layer, dbm.n_layers
        grads["U"] = torch.addmm(mu[y].t() @ mu[top], neg[y].t(), neg[top], beta=1.0 / n, alpha=-1.0 / m)
        grads["c"] = mu[y].mean(0) - neg[y].mean(0)
    return grads, chains, mu


MODEL_STATISTICS = ("states", "probabilities")


def chain_statistics(dbm: DBM, chains: States, kind: str) -> States:
    """What the model statistics are computed from. ``"states"``: the chains' binary states.
    ``"probabilities"`` (the authors' dbm_mf.m): v stays binary; each odd layer becomes its
    probability given the sampled even layers (an exact conditional expectation, so the v-h1 and h1
    statistics keep their expectation and lose variance); each hidden even layer becomes its
    probability given those odd-layer probabilities (a mean-field step: not an exact expectation).
    Labels stay their sampled one-hot states, like v (dbm_mf.m's statistics of U and c use the
    sampled labels; its top-layer probability step is fed the label probabilities instead)."""
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
    """Fantasy particles started from uniform binary states (and uniformly drawn labels)."""
    device, dtype = dbm.weights[0].device, dbm.weights[0].dtype
    chains = [bernoulli(torch.full((n, k), 0.5, device=device, dtype=dtype), generator) for k in dbm.sizes]
    if dbm.n_labels:
        chains.append(categorical(torch.full((n, dbm.n_labels), 1.0 / dbm.n_labels, device=device, dtype=dtype),
                                  generator))
    return chains


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

    Weights W as they are (the doubling lived only in the RBMs' conditionals). Biases as the RBMs'
    conditionals used them (doubled on a doubled side with ``scale_biases``). Visible bias from the
    bottom RBM, top bias from the top RBM; an inner layer was the hidden layer of the RBM below and
    the visible layer of the RBM above, each of which saw only half of its DBM input, so its bias is
    the mean of the two (with scaled biases the authors' code adds the two stored biases, the same
    thing). The label weights and biases of the top RBM, if it has them, become the DBM's (dbm_mf.m)."""
    sizes = [rbms[0].n_visible] + [r.n_hidden for r in rbms]
    dbm = DBM(sizes, n_labels=rbms[-1].n_labels, dtype=rbms[0].W.dtype).to(rbms[0].W.device)
    if dbm.n_labels:
        dbm.label_weights.copy_(rbms[-1].label_weights)
        dbm.label_bias.copy_(rbms[-1].label_bias)
    dbm.biases[0].copy_(rbms[0].b_vis * rbms[0].vis_bias_factor)
    for l, rbm in enumerate(rbms):
        dbm.weights[l].copy_(rbm.W)
        below = rbm.b_hid * rbm.hid_bias_factor
        above = rbms[l + 1].b_vis * rbms[l + 1].vis_bias_factor if l + 1 < len(rbms) else None
        dbm.biases[l + 1].copy_(below if above is None else (below + above) / 2)
    return dbm
