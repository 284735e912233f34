"""Scores: chunk/entity F1 with conlleval's rules (via seqeval) and per-token accuracy."""
from __future__ import annotations

from typing import Sequence

from seqeval.metrics import classification_report, f1_score

from dlgm.nlp.tags import to_iob2


def chunk_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """F1 over chunks, overall and per type; tags may be IOB1, IOB2 or IOBES on either side.

    Both sides go through the same lenient conversion to IOB2 (conlleval's chunk boundaries), then
    seqeval's default (conlleval-compatible) mode counts exact chunk matches.
    """
    gold2 = [to_iob2(s) for s in gold]
    pred2 = [to_iob2(s) for s in predicted]
    report = classification_report(gold2, pred2, output_dict=True, zero_division=0)
    per_type = {k: {"f1": v["f1-score"], "support": int(v["support"])}
                for k, v in report.items() if not k.endswith("avg")}
    return {"f1": float(f1_score(gold2, pred2, zero_division=0)), "per_type": per_type}


def token_accuracy(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> float:
    right = total = 0
    for g, p in zip(gold, predicted, strict=True):
        if len(g) != len(p):
            raise ValueError(f"sentence lengths differ: gold {len(g)}, predicted {len(p)}")
        right += sum(a == b for a, b in zip(g, p))
        total += len(g)
    return right / max(total, 1)
