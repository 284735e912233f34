"""Tag schemes for chunks and entities: IOB1 (CoNLL-2003 as distributed), IOB2, IOBES.

Collobert et al. (2011, Sec. 3.3.3) train on IOBES tags. Predictions are turned back into IOB2
leniently, the way conlleval reads any sequence: a chunk starts at B-/S-, at a type change, or
after a chunk ended (E-/S-/O); every tag that is not O continues or starts one.
"""
from __future__ import annotations

from typing import Sequence


def split_tag(tag: str) -> tuple[str, str | None]:
    if tag == "O":
        return "O", None
    prefix, sep, kind = tag.partition("-")
    if not sep or prefix not in ("B", "I", "E", "S") or not kind:
        raise ValueError(f"not a chunk tag: {tag!r} (expected O, or B-/I-/E-/S- and a type)")
    return prefix, kind


def to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1, IOB2 or IOBES (valid or not) -> IOB2, with conlleval's chunk boundaries."""
    out: list[str] = []
    prev_kind, prev_open = None, False
    for tag in tags:
        prefix, kind = split_tag(tag)
        if kind is None:
            out.append("O")
            prev_kind, prev_open = None, False
            continue
        starts = prefix in ("B", "S") or kind != prev_kind or not prev_open
        out.append(("B-" if starts else "I-") + kind)
        prev_kind, prev_open = kind, prefix not in ("E", "S")
    return out


def iob2_to_iobes(tags: Sequence[str]) -> list[str]:
    iob2 = to_iob2(tags)
    out = []
    for i, tag in enumerate(iob2):
        if tag == "O":
            out.append(tag)
            continue
        prefix, kind = split_tag(tag)
        ends = i + 1 == len(iob2) or iob2[i + 1] != f"I-{kind}"
        if prefix == "B":
            out.append(("S-" if ends else "B-") + kind)
        else:
            out.append(("E-" if ends else "I-") + kind)
    return out


def convert(tags: Sequence[str], scheme: str) -> list[str]:
    """Tags in any of the schemes -> ``scheme`` (``iob2`` or ``iobes``)."""
    if scheme == "iob2":
        return to_iob2(tags)
    if scheme == "iobes":
        return iob2_to_iobes(tags)
    raise ValueError(f"unknown tag scheme {scheme!r} (expected iob2 or iobes)")
