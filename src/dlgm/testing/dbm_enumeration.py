"""Exact quantities of tiny DBMs by enumeration: the oracle for AIS, mean-field and PCD tests.

Only the even layers (v, h2, ...) are enumerated; the odd layers are summed out analytically.
Label units, when the model has them, are enumerated over their one-hot states if they are an even
layer and summed out (log-sum-exp) if they are an odd one.
"""
from __future__ import annotations

import torch

from dlgm.boltzmann.dbm import DBM
from dlgm.testing.boltzmann_enumeration import all_binary_states


def _even_states(dbm: DBM, v: torch.Tensor | None = None) -> tuple[list, int]:
    """All joint states of the even layers (with ``v`` fixed to one row if given), as a state list
    whose odd entries are placeholders, and the number of joint states."""
    device, dtype = dbm.weights[0].device, dbm.weights[0].dtype
    sizes = dbm.state_sizes
    even = [l for l in range(0, dbm.n_states, 2) if (v is None or l > 0) and l != dbm.label_layer]
    bits = all_binary_states(sum(sizes[l] for l in even), device, dtype)
    x = [None] * dbm.n_states
    if dbm.label_layer is not None and dbm.label_layer % 2 == 0:  # every binary state with every class
        x[dbm.label_layer] = torch.eye(dbm.n_labels, device=device, dtype=dtype).repeat(bits.shape[0], 1)
        bits = bits.repeat_interleave(dbm.n_labels, 0)
    start = 0
    for l in even:
        x[l] = bits[:, start : start + sizes[l]]
        start += sizes[l]
    if v is not None:
        x[0] = v.to(dtype).expand(bits.shape[0], -1)
    for l in range(1, dbm.n_states, 2):
        x[l] = torch.zeros(bits.shape[0], sizes[l], device=device, dtype=dtype)
    return x, bits.shape[0]


def dbm_log_partition(dbm: DBM) -> torch.Tensor:
    x, _ = _even_states(dbm)
    return torch.logsumexp(dbm.even_log_prob_unnormalised(x), 0)


def dbm_log_prob(dbm: DBM, v: torch.Tensor) -> torch.Tensor:
    """Exact log p(v) for each row of ``v`` (labels, if any, summed out)."""
    log_z = dbm_log_partition(dbm)
    out = []
    for row in v:
        x, _ = _even_states(dbm, row)
        out.append(torch.logsumexp(dbm.even_log_prob_unnormalised(x), 0))
    return torch.stack(out) - log_z


def _expected_statistics(dbm: DBM, x: list) -> dict[str, torch.Tensor]:
    """E[x_l^T x_{l+1}] and E[x_l] keyed like ``DBM.params``, over even-layer states ``x`` weighted by
    their marginal probabilities, the odd layers replaced by their exact conditional expectations."""
    p = torch.softmax(dbm.even_log_prob_unnormalised(x), 0)
    for l in range(1, dbm.n_states, 2):
        x[l] = dbm.activate_(l, dbm.layer_input(x, l))
    stats = {f"W{l}": (x[l] * p[:, None]).t() @ x[l + 1] for l in range(dbm.n_layers)}
    stats.update({f"b{l}": p @ x[l] for l in range(dbm.n_layers + 1)})
    if dbm.n_labels:
        y = dbm.label_layer
        stats.update(U=(x[y] * p[:, None]).t() @ x[y - 1], c=p @ x[y])
    return stats


def dbm_model_statistics(dbm: DBM) -> dict[str, torch.Tensor]:
    """Exact model expectations E[x_l^T x_{l+1}] and E[x_l], keyed like ``DBM.params``."""
    return _expected_statistics(dbm, _even_states(dbm)[0])


def dbm_posterior_statistics(dbm: DBM, v: torch.Tensor) -> dict[str, torch.Tensor]:
    """Exact data-dependent expectations E_{p(h|v)}[x_l^T x_{l+1}] averaged over the rows of ``v``."""
    total = None
    for row in v:
        stats = _expected_statistics(dbm, _even_states(dbm, row)[0])
        total = stats if total is None else {k: total[k] + stats[k] for k in stats}
    return {k: t / v.shape[0] for k, t in total.items()}


def dbm_exact_samples(dbm: DBM, n: int, generator: torch.Generator | None = None) -> list:
    """``n`` exact samples of every layer: the even layers drawn from their enumerated marginal,
    the odd ones from their exact conditional given those (they are independent given the even ones)."""
    x, _ = _even_states(dbm)
    picks = torch.multinomial(torch.softmax(dbm.even_log_prob_unnormalised(x), 0), n, replacement=True,
                              generator=generator)
    x = [t[picks] for t in x]
    for l in range(1, dbm.n_states, 2):
        x[l] = dbm.sample(l, dbm.activate_(l, dbm.layer_input(x, l)), generator)
    return x
