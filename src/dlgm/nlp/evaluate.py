"""Scores: chunk/entity F1 counted exactly as conlleval.pl counts it, and per-token accuracy."""
from __future__ import annotations

from collections import Counter
from typing import Sequence

from dlgm.nlp.tags import split_tag

_IOBES_TO_IOB = {"S": "B", "E": "I"}  # the usual conversion before conlleval: S- -> B-, E- -> I-


def _ends(prev: str, prev_type: str, tag: str, kind: str) -> bool:
    """conlleval's endOfChunk for B/I/O tags: does a chunk end just before this token?"""
    return (prev in ("B", "I") and tag in ("B", "O")) or (prev != "O" and prev_type != kind)


def _starts(prev: str, prev_type: str, tag: str, kind: str) -> bool:
    """conlleval's startOfChunk for B/I/O tags: does a chunk start at this token?"""
    return tag == "B" or (prev == "O" and tag == "I") or (tag != "O" and prev_type != kind)


def conlleval_chunks(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """The chunks (type, first token, last token) of one sentence as conlleval reads them.

    IOB1, IOB2 and IOBES tags, legal or not: S-/E- are first turned into B-/I-, then conlleval's
    boundary rules apply as they are (an I- after O or after another type starts a chunk, B-
    always does, O or a type change ends one). A sentence end is an O, as conlleval's blank line.
    """
    chunks = set()
    prev, prev_type, start = "O", "", 0
    for i, tag in enumerate([*tags, "O"]):
        prefix, kind = split_tag(tag)
        prefix, kind = _IOBES_TO_IOB.get(prefix, prefix), kind or ""
        if _ends(prev, prev_type, prefix, kind):
            chunks.add((prev_type, start, i - 1))
        if _starts(prev, prev_type, prefix, kind):
            start = i
        prev, prev_type = prefix, kind
    return chunks


def _f1(correct: int, gold: int, guessed: int) -> float:
    # conlleval: precision correct/guessed, recall correct/gold, F1 their harmonic mean (0 if none correct)
    return 2 * correct / (gold + guessed) if correct else 0.0


def chunk_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """F1 over chunks, overall and per type, with conlleval's counts: a predicted chunk is correct
    when a gold chunk has the same type, first and last token. Tags may be IOB1, IOB2 or IOBES."""
    if len(gold) != len(predicted):
        raise ValueError(f"gold has {len(gold)} sentences, predicted {len(predicted)}")
    n_gold, n_guessed, n_correct = Counter(), Counter(), Counter()
    for i, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: gold has {len(g)} tags, predicted {len(p)}")
        g_chunks, p_chunks = conlleval_chunks(g), conlleval_chunks(p)
        n_gold.update(kind for kind, _, _ in g_chunks)
        n_guessed.update(kind for kind, _, _ in p_chunks)
        n_correct.update(kind for kind, _, _ in g_chunks & p_chunks)
    per_type = {kind: {"f1": _f1(n_correct[kind], n_gold[kind], n_guessed[kind]), "support": n_gold[kind]}
                for kind in sorted(n_gold | n_guessed)}
    total = _f1(sum(n_correct.values()), sum(n_gold.values()), sum(n_guessed.values()))
    return {"f1": total, "per_type": per_type}


def token_accuracy(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> float:
    right = total = 0
    for g, p in zip(gold, predicted, strict=True):
        if len(g) != len(p):
            raise ValueError(f"sentence lengths differ: gold {len(g)}, predicted {len(p)}")
        right += sum(a == b for a, b in zip(g, p))
        total += len(g)
    return right / max(total, 1)
