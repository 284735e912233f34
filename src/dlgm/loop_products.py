"""The matrix products of each timed loop, as lists of GEMM shapes.

A spec is [(layout, m, k, n)]: one [m, k] x [k, n] product each, layout as in
``benchmarks.common.gemm_floor``. The benchmarks time exactly these shapes as each loop's floor, and
``dlgm.projection`` turns a config's protocol into their flops. Standard library only (the Snakefile's
start-up path imports it).
"""
from __future__ import annotations

from typing import Iterable

Spec = list


def flops(spec: Iterable[tuple[str, int, int, int]]) -> int:
    return 2 * sum(m * k * n for _, m, k, n in spec)


def cd_spec(batch: int, n_vis: int, n_hid: int, k: int) -> Spec:
    """One CD-k mini-batch: k + 1 products up, k down, two weight statistics."""
    return ([("nn", batch, n_vis, n_hid)] * (k + 1) + [("nt", batch, n_hid, n_vis)] * k
            + [("tn", n_vis, batch, n_hid)] * 2)


def sweep_spec(sizes, rows: int, layers) -> Spec:
    """The inputs of ``layers`` (in that order) of a layered Boltzmann machine over ``rows`` rows: from
    the layer below (if any) and from the layer above (if any)."""
    L, spec = len(sizes) - 1, []
    for l in layers:
        if l > 0:
            spec.append(("nn", rows, sizes[l - 1], sizes[l]))
        if l < L:
            spec.append(("nt", rows, sizes[l + 1], sizes[l]))
    return spec


def _odd_then_even(n_layers: int) -> list[int]:
    return [l for p in (1, 0) for l in range(p, n_layers + 1, 2)]


def dbm_update_spec(sizes, batch: int, chains: int, mf: int, gibbs: int) -> Spec:
    """One joint-training update: bottom-up pass, ``mf`` mean-field sweeps, ``gibbs`` sweeps of the
    chains (odd layers, then even), data and model statistics, the reconstruction error."""
    L = len(sizes) - 1
    spec = [("nn", batch, sizes[l - 1], sizes[l]) for l in range(1, L + 1)]
    spec += sweep_spec(sizes, batch, range(1, L + 1)) * mf
    spec += sweep_spec(sizes, chains, _odd_then_even(L)) * gibbs
    for l in range(L):
        spec += [("tn", sizes[l], batch, sizes[l + 1]), ("tn", sizes[l], chains, sizes[l + 1])]
    spec.append(("nt", batch, sizes[1], sizes[0]))
    return spec


def ais_spec(sizes, runs: int) -> Spec:
    """One AIS temperature: the odd layers' inputs (weight and transition), then the even layers'."""
    return sweep_spec(sizes, runs, _odd_then_even(len(sizes) - 1))


def clamped_ais_spec(sizes, runs: int) -> Spec:
    """One temperature of the per-image AIS with v clamped (``anneal.clamped_path``): v's input to h1
    is computed once, so each step has the products among the hidden layers only."""
    return sweep_spec(sizes[1:], runs, range(len(sizes) - 1))


def updown_spec(sizes, top: int, labels: int, batch: int, k: int) -> Spec:
    """One up-down step (UpDownDBN.updown_step), in its order."""
    B, pairs, pen = batch, list(zip(sizes[:-1], sizes[1:])), sizes[-1]
    spec = [("nn", B, a, b) for a, b in pairs] + [("nn", B, pen, top), ("nn", B, labels, top)]
    for _ in range(k):
        spec += [("nt", B, top, pen), ("nt", B, top, labels), ("nn", B, pen, top), ("nn", B, labels, top)]
    spec += [("nn", B, b, a) for a, b in reversed(pairs)]
    spec += [("nn", B, b, a) for a, b in pairs] + [("tn", b, B, a) for a, b in pairs]
    spec += [("tn", pen, B, top)] * 2 + [("tn", labels, B, top)] * 2
    spec += [("nn", B, a, b) for a, b in pairs] + [("tn", a, B, b) for a, b in pairs]
    return spec


def mlp_spec(dims, batch: int) -> Spec:
    """Forward and backward of a feed-forward net (nn.Linear weights [out, in]; no input gradient)."""
    pairs = list(zip(dims[:-1], dims[1:]))
    return ([("nt", batch, a, b) for a, b in pairs] + [("tn", b, batch, a) for a, b in pairs]
            + [("nn", batch, b, a) for a, b in pairs[1:]])


def window_spec(tokens: int, n_in: int, hidden: int, tags: int, train: bool) -> Spec:
    """The window network's two layers over ``tokens`` windows; to train, also their weight gradients
    and both input gradients (the lower one reaches the lookup tables)."""
    if not train:
        return [("nt", tokens, n_in, hidden), ("nt", tokens, hidden, tags)]
    return mlp_spec([n_in, hidden, tags], tokens) + [("nn", tokens, hidden, n_in)]


def dbm_classifier_spec(sizes, batch: int, classes: int = 10) -> Spec:
    """DBMClassifier forward (bottom-up and fixed top-down inputs, softmax layer) and backward."""
    L, fwd = len(sizes) - 1, []
    for l in range(1, L + 1):
        fwd.append(("nn", batch, sizes[l - 1], sizes[l]))
        if l < L:
            fwd.append(("nt", batch, sizes[l + 1], sizes[l]))
    fwd.append(("nt", batch, sizes[L], classes))
    grads = [("tn", k, batch, n) for _, _, k, n in fwd]
    inputs = [("nn", batch, classes, sizes[L])] + [("nt", batch, sizes[l], sizes[l - 1]) for l in range(2, L + 1)]
    return fwd + grads + inputs


def lstm_weights(layers: int, hidden: int, outputs: int, inputs: int = 123) -> int:
    """Parameters of dlgm.speech.model.BLSTM (per layer and direction nn.LSTM's two matrices and two
    bias vectors, then the output layer): the values weight noise draws for each update."""
    lstm = sum(2 * (4 * hidden * ((inputs if l == 0 else 2 * hidden) + hidden + 2)) for l in range(layers))
    return lstm + (2 * hidden + 1) * outputs


def lstm_flops(frames: float, layers: int, hidden: int, outputs: int, inputs: int = 123, train: bool = True) -> float:
    """Products of a bidirectional LSTM stack and its output layer over ``frames`` frames (x3 to train)."""
    per_frame = sum(2 * 2 * 4 * hidden * ((inputs if l == 0 else 2 * hidden) + hidden) for l in range(layers))
    per_frame += 2 * 2 * hidden * outputs
    return frames * per_frame * (3 if train else 1)


