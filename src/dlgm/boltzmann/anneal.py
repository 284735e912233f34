"""The annealing engine under AIS, per-image AIS and RAISE: one fused, preallocated transition per
inverse temperature over a DBM whose layers of one parity are sampled and whose layers of the
other parity are summed out analytically.

Path. With S the sampled layers and U the summed-out ones, the unnormalised log-probability of the
intermediate model at inverse temperature beta is
    log f_beta(x) = sum_{l in S} x_l.(beta b_l + (1 - beta) a_l) + sum_{l in U} sum_j softplus(F_lj + beta G_lj(x))
with a_l the base biases of a sampled layer (the data base rates for v, 0 elsewhere), F_l a fixed
input of a summed-out layer and G_l(x) = c_l + (its couplings with sampled layers). At beta = 0 every
layer is independent, so the base model is sampled exactly and its log partition function is
    log Z_0 = sum_{l in S} sum softplus(a_l) + sum_{l in U} sum softplus(F_l).
- "even" parameterisation (SH09's: v, h2, ... sampled; h1, h3, ... summed out): F_l = 0, c_l = b_l.
- "odd" parameterisation (h1, h3, ... sampled; v, h2, ... summed out): F_0 = a_0 (base rates),
  c_0 = b_0 - a_0; F_l = 0, c_l = b_l for the hidden even layers.
- clamped v (the per-image AIS over the hidden layers of one image, SH09 Section 4.2): v is fixed,
  the even hidden layers are sampled, F_1 = b_1 + v W_0 is fixed and only the couplings of the even
  hidden layers are annealed; log Z_0 adds the constant v.b_0.

Label units (``DBM.n_labels`` > 0) are one more layer, x_{L+1}, with the parity opposite to the top
hidden layer's: summed out, the softplus sum becomes a log-sum-exp over the classes; sampled, a draw
is one-hot (one uniform per row) and the base model is uniform over the classes (log Z_0 gets
log n_labels from log-sum-exp of a_l = 0).

One transition at beta samples the summed-out layers given the sampled ones, then the sampled ones
given those: a data-augmentation Gibbs kernel on the sampled layers, which leaves f_beta invariant
and is reversible (so RAISE can run it backwards). States are float32 (the model's dtype); the
log-weights accumulate in float64. Nothing in the loop syncs with the host.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dlgm.boltzmann.dbm import DBM

PARAMETERISATIONS = ("even", "odd")


@dataclass
class Path:
    """Which layers are sampled / summed out, and the base biases a_l and fixed inputs F_l."""

    dbm: DBM
    sampled: list[int]
    summed: list[int]
    base: dict[int, torch.Tensor]  # a_l for each sampled layer, [n_l]
    fixed: dict[int, torch.Tensor]  # F_l for each summed-out layer, [rows or 1, n_l]
    scaled_bias: dict[int, torch.Tensor]  # c_l for each summed-out layer, [n_l]
    clamped_v: torch.Tensor | None = None  # [rows, n_0] when v is clamped
    log_z0_const: torch.Tensor | float = 0.0  # v.b_0 per row when v is clamped

    def log_z0(self) -> torch.Tensor | float:
        """log Z_0 of the base model (a tensor per row when v is clamped)."""
        total = sum(float(self.dbm.log_sum_out(l, self.base[l].double())) for l in self.sampled)
        per_row = sum(self.dbm.log_sum_out(l, self.fixed[l].double()) for l in self.summed)
        return total + per_row + self.log_z0_const


def full_path(dbm: DBM, base_bias: torch.Tensor, parameterisation: str = "even") -> Path:
    """The path from the base-rate model (visible biases ``base_bias``, all else 0) to ``dbm``."""
    if parameterisation not in PARAMETERISATIONS:
        raise ValueError(f"parameterisation must be one of {PARAMETERISATIONS}, got {parameterisation!r}")
    device, dtype = dbm.weights[0].device, dbm.weights[0].dtype
    base_bias = base_bias.to(device=device, dtype=dtype)
    if base_bias.shape != (dbm.sizes[0],) or not torch.isfinite(base_bias).all():
        raise ValueError(f"base_bias must be {dbm.sizes[0]} finite visible biases, got shape {tuple(base_bias.shape)}")
    first = 0 if parameterisation == "even" else 1
    sampled = list(range(first, dbm.n_states, 2))
    summed = list(range(1 - first, dbm.n_states, 2))
    zeros = {l: torch.zeros(n, device=device, dtype=dtype) for l, n in enumerate(dbm.state_sizes)}
    base = {l: (base_bias if l == 0 else zeros[l]) for l in sampled}
    fixed = {l: (base_bias if l == 0 else zeros[l])[None] for l in summed}
    scaled = {l: dbm.bias(l).detach() - (base_bias if l == 0 else 0) for l in summed}
    return Path(dbm, sampled, summed, base, fixed, scaled)


def clamped_path(dbm: DBM, v: torch.Tensor) -> Path:
    """The path over the even hidden layers with v clamped to the rows of ``v`` (needs >= 2 layers)."""
    if dbm.n_states < 3:
        raise ValueError("a clamped path needs a DBM with at least 2 hidden layers or labels (an RBM's p(v) is exact)")
    device, dtype = dbm.weights[0].device, dbm.weights[0].dtype
    v = v.to(device=device, dtype=dtype)
    sampled = list(range(2, dbm.n_states, 2))
    summed = list(range(1, dbm.n_states, 2))
    n = dbm.state_sizes
    base = {l: torch.zeros(n[l], device=device, dtype=dtype) for l in sampled}
    fixed = {l: torch.zeros(1, n[l], device=device, dtype=dtype) for l in summed}
    fixed[1] = torch.addmm(dbm.biases[1], v, dbm.weights[0])
    scaled = {l: dbm.bias(l).detach() for l in summed}
    scaled[1] = torch.zeros_like(dbm.biases[1])
    return Path(dbm, sampled, summed, base, fixed, scaled, clamped_v=v, log_z0_const=(v @ dbm.biases[0]).double())


class Annealer:
    """Preallocated state and buffers for ``rows`` parallel chains along one ``Path``."""

    def __init__(self, path: Path, rows: int, generator: torch.Generator | None = None):
        self.path, self.rows, self.gen = path, rows, generator
        self.dbm = dbm = path.dbm
        device, dtype = dbm.weights[0].device, dbm.weights[0].dtype
        if path.clamped_v is not None and path.clamped_v.shape[0] != rows:
            raise ValueError(f"clamped v has {path.clamped_v.shape[0]} rows for {rows} chains")
        new = lambda *shape: torch.empty(*shape, device=device, dtype=dtype)  # noqa: E731
        n, layers = dbm.state_sizes, range(dbm.n_states)
        self.x = {l: new(rows, n[l]) for l in layers}
        if path.clamped_v is not None:
            self.x[0] = path.clamped_v
        self.g = {l: new(rows, n[l]) for l in path.summed}  # G_l(x) of the current sampled state
        self.tmp = {l: new(rows, n[l]) for l in layers}
        self.pair = {l: new(2, rows, n[l]) for l in path.summed}  # F + beta G at two betas
        self.pair_betas = {l: [None, None] for l in path.summed}
        self.inc = new(rows)
        self.seconds: float | None = None  # the last resumable run's time, slices before a resume included
        w = [dbm.coupling(l).detach().contiguous() for l in range(dbm.n_states - 1)]
        wt = [x.t().contiguous() for x in w]  # W[l]^T kept contiguous for the downward products
        # (neighbour, weight mapping its state to this layer's input) for each layer
        self.into = {l: [(m, w[m] if m < l else wt[l]) for m in (l - 1, l + 1) if 0 <= m < dbm.n_states]
                     for l in layers}
        self.b = {l: dbm.bias(l).detach() for l in path.sampled}
        self.lin_coef = {l: (self.b[l] - path.base[l]).contiguous() for l in path.sampled}  # b_l - a_l
        # the base biases a_l that are not all 0 (a sampled v's), added after each sampled layer's product
        self.nonzero_base = {l: path.base[l] for l in path.sampled if bool(path.base[l].any())}  # syncs once

    # -- pieces of one step ---------------------------------------------------------------------
    def _sample(self, l: int, probs: torch.Tensor) -> None:
        """x_l drawn from ``probs`` in place (the buffer tmp[l]), which then becomes the state; the
        old state buffer becomes tmp[l]."""
        self.dbm.sample(l, probs, self.gen, out=probs)
        self.x[l], self.tmp[l] = probs, self.x[l]

    def sample_base(self) -> None:
        for l in self.path.sampled:
            self._sample(l, self.dbm.activate_(l, self.tmp[l].copy_(self.path.base[l].expand(self.rows, -1))))
        self.refresh()

    def set_state(self, x: list[torch.Tensor]) -> None:
        """Chains at the sampled layers of the states ``x`` (the summed-out ones are drawn afresh by
        the next transition)."""
        for l in self.path.sampled:
            self.x[l].copy_(x[l])
        self.refresh()

    def refresh(self) -> None:
        """G_l(x) for every summed-out layer from the current sampled layers."""
        for l in self.path.summed:
            inputs = [(m, w) for m, w in self.into[l] if m in self.path.sampled]  # a clamped v lives in F_1
            out = self.g[l]
            if not inputs:
                out.copy_(self.path.scaled_bias[l].expand(self.rows, -1))
            for i, (m, w) in enumerate(inputs):
                if i == 0:
                    torch.addmm(self.path.scaled_bias[l], self.x[m], w, out=out)
                else:
                    out.addmm_(self.x[m], w)
            self.pair_betas[l] = [None, None]

    def _summed_input(self, l: int, beta: float) -> torch.Tensor:
        """F_l + beta G_l, cached in one of the two slots of pair[l]."""
        cached = self.pair_betas[l]
        if beta in cached:
            return self.pair[l][cached.index(beta)]
        slot = 0 if cached[0] is None or cached[1] is not None else 1
        torch.add(self.path.fixed[l], self.g[l], alpha=beta, out=self.pair[l][slot])
        cached[slot] = beta
        return self.pair[l][slot]

    def log_ratio(self, b_lo: float, b_hi: float) -> torch.Tensor:
        """log f_{b_hi}(x) - log f_{b_lo}(x) of the current state (float32, one per row)."""
        for i, l in enumerate(self.path.summed):
            self.pair_betas[l] = [None, None]
            self._summed_input(l, b_hi)
            self._summed_input(l, b_lo)
            sums = self.dbm.log_sum_out(l, self.pair[l])
            if i == 0:  # every path sums out at least one layer
                torch.sub(sums[0], sums[1], out=self.inc)
            else:
                self.inc.add_(sums[0]).sub_(sums[1])
        for l in self.path.sampled:
            self.inc.addmv_(self.x[l], self.lin_coef[l], alpha=b_hi - b_lo)
        return self.inc

    def transition(self, beta: float) -> None:
        """One Gibbs sweep at ``beta`` (summed-out layers, then sampled layers); refreshes G."""
        for l in self.path.summed:
            if l == self.dbm.label_layer:
                probs = self.tmp[l].copy_(torch.softmax(self._summed_input(l, beta), -1))
            else:
                probs = torch.sigmoid(self._summed_input(l, beta), out=self.tmp[l])
            self._sample(l, probs)
        for l in self.path.sampled:
            t = self.tmp[l]
            (m, w), *others = self.into[l]
            # a_l + beta * (b_l - a_l + input): the bias term rides in the first product
            torch.addmm(self.lin_coef[l], self.x[m], w, beta=beta, alpha=beta, out=t)
            for m, w in others:
                t.addmm_(self.x[m], w, alpha=beta)
            if l in self.nonzero_base:
                t.add_(self.nonzero_base[l])
            self._sample(l, self.dbm.activate_(l, t))
        self.refresh()

    def activity(self) -> torch.Tensor:
        """Mean state of every layer over all chains (device tensor, no sync)."""
        return torch.stack([self.x[l].mean() for l in range(self.dbm.n_states)])


def checkpoints(n_steps: int, betas: list[float], at: tuple[float, ...]) -> dict[int, float]:
    """Step indices (after which to record) closest to the inverse temperatures ``at``."""
    out = {}
    for target in at:
        k = min(range(1, n_steps + 1), key=lambda i: abs(betas[i] - target)) if n_steps else 0
        out[k] = betas[k]
    return out


CHUNKS = 20  # a resumable annealing run is cut into at most this many "epochs" of temperatures


def _chunks(n_steps: int, loops) -> list[range]:
    """The steps 1..n_steps, whole when nothing checkpoints, else in at most CHUNKS equal runs."""
    size = n_steps if loops is None else max(1, -(-n_steps // CHUNKS))
    return [range(s, min(s + size, n_steps + 1)) for s in range(1, n_steps + 1, size)]


def _run_chunks(ann: Annealer, chunks: list[range], step, extra: dict, loops, stage: str, value) -> None:
    """``step(k)`` for every k of every chunk. With ``loops`` (a ``dlgm.training.RunLoops``) each
    chunk is one epoch of a resumable loop named ``stage`` whose state is ``extra`` and the chains'
    sampled layers, so a killed run resumes at its last chunk and ends with the same numbers, and
    ``ann.seconds`` counts every chunk's time; ``value(k)`` gives the figures logged after step k.
    The chains' buffers swap with the transitions, so the loop keeps copies and a resumed first
    chunk puts them back."""
    if loops is None:
        for chunk in chunks:
            for k in chunk:
                step(k)
        return
    kept = {f"x{l}": ann.x[l].clone() for l in ann.path.sampled}
    fresh = [True]

    def epoch(i: int) -> dict:
        if fresh[0] and i > 0:
            ann.set_state({l: kept[f"x{l}"] for l in ann.path.sampled})
        fresh[0] = False
        for k in chunks[i]:
            step(k)
        for l in ann.path.sampled:
            kept[f"x{l}"].copy_(ann.x[l])
        return value(chunks[i][-1])

    generators = {"annealing": ann.gen} if ann.gen is not None else {}
    rows = loops(stage, len(chunks), {**extra, **kept}, generators, curve=False).run(epoch)
    ann.seconds = sum(row["seconds"] for row in rows)


@torch.no_grad()
def anneal_forward(ann: Annealer, betas: list[float], record_at=(0.25, 0.5, 0.75, 0.9, 1.0),
                   loops=None, stage: str = "ais"):
    """Forward AIS from an exact base sample: returns (log-weights float64 [rows], activity
    [(beta, tensor of mean layer states)]). log Z_beta_K - log Z_0 ~ log mean exp(log-weights).
    ``loops``: checkpoint as it goes (see ``_run_chunks``; a full path only)."""
    log_w = torch.zeros(ann.rows, dtype=torch.float64, device=ann.inc.device)
    marks = checkpoints(len(betas) - 1, betas, record_at)
    order = sorted(marks)
    recorded = torch.zeros(len(order), ann.dbm.n_states, dtype=ann.inc.dtype, device=ann.inc.device)
    ann.sample_base()

    def step(k: int) -> None:
        log_w.add_(ann.log_ratio(betas[k - 1], betas[k]))
        ann.transition(betas[k])
        if k in marks:
            recorded[order.index(k)].copy_(ann.activity())

    log_z0 = float(ann.path.log_z0()) if loops is not None else 0.0
    _run_chunks(ann, _chunks(len(betas) - 1, loops), step, {"log_w": log_w, "activity": recorded}, loops, stage,
                lambda k: {"beta": betas[k], "log_z_beta": log_z0 + float(log_mean_exp(log_w, 0))})
    return log_w, [(marks[k], recorded[i]) for i, k in enumerate(order)]


@torch.no_grad()
def anneal_reverse(ann: Annealer, betas: list[float], loops=None, stage: str = "ais_reverse") -> torch.Tensor:
    """Reverse annealing from the current state (which should be distributed as f_{beta_K}) down to
    beta_0: returns sum_k [log f_{k-1}(x_{k-1}) - log f_k(x_{k-1})] in float64 (x_{k-1} the state
    after the transition at beta_k), the log of an unbiased estimate of Z_0 / Z_K under the
    annealed (forward) model (Burda, Grosse & Salakhutdinov 2015, Section 3). ``loops``: as
    ``anneal_forward``'s."""
    log_w = torch.zeros(ann.rows, dtype=torch.float64, device=ann.inc.device)
    n = len(betas) - 1

    def step(k: int) -> None:
        j = n + 1 - k  # the temperatures from the top down
        ann.transition(betas[j])
        log_w.sub_(ann.log_ratio(betas[j - 1], betas[j]))

    _run_chunks(ann, _chunks(n, loops), step, {"log_w": log_w}, loops, stage, lambda k: {"beta": betas[n - k]})
    return log_w


def log_mean_exp(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return torch.logsumexp(x, dim) - math.log(x.shape[dim])
