"""Connectionist temporal classification (Graves et al. 2006) pieces: decoding and the CTC lattice as an HMM.

Training uses torch's ``ctc_loss``; ``ctc_hmm`` writes the same lattice (labels interleaved with
blanks) as an HMM for dlgm.hmm.inference, which lets the tests check one against the other.
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch

from dlgm.hmm.batching import valid_mask

NEG_INF = float("-inf")


def ctc_hmm(labels: list[int], blank: int = 0):
    """(state label ids [2L+1], log_trans, log_init, log_final) of the CTC lattice for ``labels``."""
    ext = [blank]
    for label in labels:
        ext += [label, blank]
    n = len(ext)
    log_trans = torch.full((n, n), NEG_INF, dtype=torch.float64)
    for s in range(n):
        log_trans[s, s] = 0.0
        if s + 1 < n:
            log_trans[s, s + 1] = 0.0
        if s + 2 < n and ext[s + 2] != blank and ext[s + 2] != ext[s]:
            log_trans[s, s + 2] = 0.0
    log_init = torch.full((n,), NEG_INF, dtype=torch.float64)
    log_init[: min(2, n)] = 0.0
    log_final = torch.full((n,), NEG_INF, dtype=torch.float64)
    log_final[max(0, n - 2):] = 0.0
    return torch.tensor(ext), log_trans, log_init, log_final


def greedy(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best path decoding: argmax per frame, merge repeats, drop blanks ([B, T, C] -> label lists)."""
    best = log_probs.argmax(-1)
    prev = torch.cat([torch.full_like(best[:, :1], -1), best[:, :-1]], dim=1)
    inside = valid_mask(lengths.to(best.device), best.shape[1])
    keep = (best != blank) & (best != prev) & inside
    best, keep = best.cpu(), keep.cpu()
    return [best[b][keep[b]].tolist() for b in range(best.shape[0])]


def _logadd(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def prefix_beam_search(log_probs: np.ndarray, beam: int, blank: int = 0, prune: float = -8.0) -> list[int]:
    """Most probable labelling under CTC by prefix beam search over one utterance's [T, C] log-probs.

    Each prefix keeps the log-probability of its paths ending in a blank and in a label, so paths
    that collapse to the same labelling are summed. Per frame only labels within ``prune`` (log)
    of the frame's best are tried; with a wide enough beam and ``prune=-inf`` it is exact.
    """
    beams: dict[tuple, tuple[float, float]] = {(): (0.0, NEG_INF)}
    for row in log_probs:
        cands = np.flatnonzero(row >= row.max() + prune)
        nxt: dict[tuple, list[float]] = defaultdict(lambda: [NEG_INF, NEG_INF])
        for prefix, (pb, pnb) in beams.items():
            total = _logadd(pb, pnb)
            for c in cands:
                p = float(row[c])
                if c == blank:
                    entry = nxt[prefix]
                    entry[0] = _logadd(entry[0], total + p)
                    continue
                grown = prefix + (int(c),)
                entry = nxt[grown]
                if prefix and prefix[-1] == c:
                    entry[1] = _logadd(entry[1], pb + p)  # a repeat needs a blank in between
                    same = nxt[prefix]
                    same[1] = _logadd(same[1], pnb + p)  # otherwise it merges into the prefix
                else:
                    entry[1] = _logadd(entry[1], total + p)
        ranked = sorted(nxt.items(), key=lambda kv: _logadd(*kv[1]), reverse=True)[:beam]
        beams = {k: (v[0], v[1]) for k, v in ranked}
    best = max(beams.items(), key=lambda kv: _logadd(*kv[1]))[0]
    return list(best)


def beam_decode(log_probs: torch.Tensor, lengths: torch.Tensor, beam: int, blank: int = 0) -> list[list[int]]:
    """Prefix beam search for a batch [B, T, C]; one copy to the host, then a loop over utterances."""
    host = log_probs.float().cpu().numpy()
    return [prefix_beam_search(host[b, : int(n)], beam, blank) for b, n in enumerate(lengths.tolist())]


def ctc_word_loop(units: list[list[int]], blank: int = 0, insertion_penalty: float = 0.0):
    """A loop over words for Viterbi decoding of CTC outputs (emission ids = CTC classes).

    Word ``l_1 .. l_n`` becomes states ``l_1, blank, l_2, blank, ..., l_n`` where each blank may be
    skipped unless the two labels are equal (CTC's rule); one extra unit, a lone blank, lets blanks
    run between words. All transitions weigh 1 (CTC has no transition probabilities); each word
    entered pays ``insertion_penalty``. Returns a dlgm.hmm.graph.LoopGraph; its last unit is the blank.
    """
    from dlgm.hmm.graph import LoopGraph

    units = [list(u) for u in units] + [[blank]]
    ids, first, last, unit_of = [], [], [], []
    for k, unit in enumerate(units):
        first.append(len(ids))
        for i, label in enumerate(unit):
            if i:
                ids.append(blank)
                unit_of.append(k)
            ids.append(label)
            unit_of.append(k)
        last.append(len(ids) - 1)
    n = len(ids)
    trans = torch.full((n, n), NEG_INF, dtype=torch.float64)
    idx = torch.arange(n)
    trans[idx, idx] = 0.0
    for k, unit in enumerate(units[:-1]):
        base = first[k]
        for i in range(len(unit) - 1):
            p, b, q = base + 2 * i, base + 2 * i + 1, base + 2 * i + 2
            trans[p, b] = trans[b, q] = 0.0
            if unit[i] != unit[i + 1]:
                trans[p, q] = 0.0
    for k, unit in enumerate(units):
        for j, other in enumerate(units):
            if unit[-1] != other[0] or unit[-1] == blank and j != k:
                trans[last[k], first[j]] = insertion_penalty
    log_init = torch.full((n,), NEG_INF, dtype=torch.float64)
    log_init[first] = insertion_penalty
    log_final = torch.full((n,), NEG_INF, dtype=torch.float64)
    log_final[last] = 0.0
    return LoopGraph(torch.tensor(ids), trans, log_init, log_final, torch.tensor(first), torch.tensor(unit_of))
