"""Text corpora for the window network: CoNLL-2000 chunking, CoNLL-2003 NER, Penn Treebank POS.

Each split becomes ``<split>.pt`` = ``{"words", "tags", "pos"}`` (lists of sentences; original case)
plus ``counts.json``. CoNLL-2003 is read in its original IOB1 scheme and its tags converted to IOBES
as Collobert et al. (2011) did; ``tags_iob1`` keeps the original. PTB trees are read from the
``.mrg`` files (leaves ``(TAG word)``), dropping ``-NONE-`` empty elements.
"""
from __future__ import annotations

import gzip
import os
import re
import zipfile
from collections import Counter
from pathlib import Path

from dlgm.atomic import torch_save, write_json

Sentence = list[tuple[str, ...]]


# ---- tag schemes -------------------------------------------------------------------------------

def _split(tag: str) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", "")``."""
    if tag == "O":
        return "O", ""
    prefix, sep, kind = tag.partition("-")
    if not sep or prefix not in "BIES" or len(prefix) != 1 or not kind:
        raise ValueError(f"malformed tag {tag!r} (expected O or B-/I-/E-/S-TYPE)")
    return prefix, kind


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """IOB1 (I- inside; B- only where an entity directly follows one of the same type) -> IOB2."""
    out, previous = [], ("O", "")
    for tag in tags:
        prefix, kind = _split(tag)
        if prefix == "I" and previous[1] != kind:
            tag = f"B-{kind}"
        out.append(tag)
        previous = (prefix, kind)
    return out


def iob2_to_iobes(tags: list[str]) -> list[str]:
    """IOB2 -> IOBES: single-token entities S-, last tokens E-."""
    out = []
    for i, tag in enumerate(tags):
        prefix, kind = _split(tag)
        continues = i + 1 < len(tags) and tags[i + 1] == f"I-{kind}"
        if prefix == "B":
            out.append(tag if continues else f"S-{kind}")
        elif prefix == "I":
            out.append(tag if continues else f"E-{kind}")
        else:
            out.append(tag)
    return out


def spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """Chunks of an IOB2 or IOBES sequence as (type, start, end-exclusive)."""
    found, kind, start = [], None, 0
    for i, tag in enumerate(tags):
        prefix, tag_kind = _split(tag)
        if kind is not None and not (prefix in "IE" and tag_kind == kind):
            found.append((kind, start, i))
            kind = None
        if prefix in "BS" or (prefix in "IE" and kind is None):
            kind, start = tag_kind, i
        if prefix in "ES":
            found.append((kind, start, i + 1))
            kind = None
    if kind is not None:
        found.append((kind, start, len(tags)))
    return found


# ---- readers -----------------------------------------------------------------------------------

def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def read_conll(path: str | os.PathLike, n_columns: int) -> list[Sentence]:
    """Blank-line separated sentences of space-separated columns; ``-DOCSTART-`` lines are dropped."""
    path = Path(path)
    sentences, current = [], []
    with _open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            fields = line.split()
            if not fields:
                if current:
                    sentences.append(current)
                current = []
            elif fields[0] == "-DOCSTART-":
                continue
            elif len(fields) != n_columns:
                raise ValueError(f"{path}:{number}: expected {n_columns} columns, got {len(fields)}: {line!r}")
            else:
                current.append(tuple(fields))
    if current:
        sentences.append(current)
    return sentences


_LEAF = re.compile(r"\(([^\s()]+)\s+([^\s()]+)\)")
_PAREN = re.compile(r"[()]")


def read_mrg(text: str, where: str = "") -> list[list[tuple[str, str]]]:
    """Bracketed trees -> per tree the overt ``(word, tag)`` leaves (``-NONE-`` traces dropped)."""
    sentences, depth, start = [], 0, None
    for match in _PAREN.finditer(text):
        if match.group() == "(":
            if depth == 0:
                start = match.start()
            depth += 1
        else:
            depth -= 1
            if depth < 0:
                raise ValueError(f"{where}: unbalanced ')' at character {match.start()}")
            if depth == 0:
                leaves = [(w, t) for t, w in _LEAF.findall(text, start, match.end()) if t != "-NONE-"]
                if leaves:
                    sentences.append(leaves)
    if depth:
        raise ValueError(f"{where}: {depth} unclosed '(' at the end")
    return sentences


def _file_number(name: str) -> int:
    match = re.search(r"wsj_(\d{4})\.mrg$", name)
    if not match:
        raise ValueError(f"{name}: not a wsj_NNNN.mrg file name")
    return int(match.group(1))


def _in_range(number: int, bounds) -> bool:
    return bounds[0] <= number <= bounds[1]


def _split_trees(files: dict[str, str], split: dict, key) -> dict[str, list]:
    """Assign each file's trees to the split whose [first, last] range holds key(file number)."""
    out = {name: [] for name in split}
    for name in sorted(files):
        number = key(_file_number(name))
        for split_name, bounds in split.items():
            if _in_range(number, bounds):
                out[split_name] += read_mrg(files[name], name)
    return out


def _tagged(sentences) -> dict[str, list]:
    return {
        "words": [[w for w, _ in s] for s in sentences],
        "tags": [[t for _, t in s] for s in sentences],
        "pos": [[t for _, t in s] for s in sentences],
    }


def ptb_sample_splits(zip_path: str | os.PathLike, split: dict) -> dict[str, dict]:
    """NLTK's treebank.zip: combined/wsj_NNNN.mrg, split by file number."""
    with zipfile.ZipFile(zip_path) as archive:
        files = {
            name: archive.read(name).decode("ascii")
            for name in archive.namelist()
            if re.fullmatch(r"treebank/combined/wsj_\d{4}\.mrg", name)
        }
    if not files:
        raise ValueError(f"{zip_path}: no treebank/combined/wsj_NNNN.mrg members")
    return {name: _tagged(trees) for name, trees in _split_trees(files, split, lambda n: n).items()}


def find_wsj_mrg(root: str | os.PathLike) -> Path:
    """The folder holding the WSJ section folders 00..24 of Treebank-3's parsed .mrg files."""
    root = Path(root)
    tried = [root / "parsed" / "mrg" / "wsj", root / "treebank_3" / "parsed" / "mrg" / "wsj", root]
    for folder in tried:
        if (folder / "00").is_dir() and any((folder / "00").glob("wsj_*.mrg")):
            return folder
    raise FileNotFoundError(
        f"data.ptb_path={root}: no WSJ .mrg files; looked for <section>/wsj_NNNN.mrg in "
        + ", ".join(str(p) for p in tried)
    )


def wsj_splits(root: str | os.PathLike, split: dict) -> dict[str, dict]:
    """Full Treebank-3 WSJ: sections (file number // 100) assigned to splits."""
    folder = find_wsj_mrg(root)
    files = {str(p): p.read_text(encoding="ascii", errors="replace") for p in sorted(folder.glob("*/wsj_*.mrg"))}
    return {name: _tagged(trees) for name, trees in _split_trees(files, split, lambda n: n // 100).items()}


def conll2000_splits(raw: Path, valid_sentences: int) -> dict[str, dict]:
    """train.txt minus its last ``valid_sentences`` sentences / those sentences / all / test.txt."""
    def columns(sentences):
        return {
            "words": [[t[0] for t in s] for s in sentences],
            "pos": [[t[1] for t in s] for s in sentences],
            "tags": [[t[2] for t in s] for s in sentences],
        }

    full = read_conll(raw / "train.txt.gz", 3)
    if not 0 < valid_sentences < len(full):
        raise ValueError(f"data.conll2000_valid_sentences={valid_sentences} must be below {len(full)}")
    cut = len(full) - valid_sentences
    return {
        "train": columns(full[:cut]),
        "valid": columns(full[cut:]),
        "train_full": columns(full),
        "test": columns(read_conll(raw / "test.txt.gz", 3)),
    }


def conll2003_splits(raw: Path) -> dict[str, dict]:
    """eng.train / eng.testa / eng.testb; NER tags IOB1 -> IOBES (``tags``), original in ``tags_iob1``."""
    out = {}
    for split, name in (("train", "eng.train.gz"), ("valid", "eng.testa.gz"), ("test", "eng.testb.gz")):
        sentences = read_conll(raw / name, 4)
        iob1 = [[t[3] for t in s] for s in sentences]
        try:
            iobes = [iob2_to_iobes(iob1_to_iob2(tags)) for tags in iob1]
        except ValueError as err:
            raise ValueError(f"{raw / name}: {err}") from err
        out[split] = {
            "words": [[t[0] for t in s] for s in sentences],
            "pos": [[t[1] for t in s] for s in sentences],
            "tags": iobes,
            "tags_iob1": iob1,
        }
    return out


# ---- writing -----------------------------------------------------------------------------------

def split_counts(data: dict, corpus: str) -> dict:
    counts = {"sentences": len(data["words"]), "tokens": sum(len(s) for s in data["words"])}
    if corpus in ("conll2000", "conll2003"):
        key = "chunks" if corpus == "conll2000" else "entities"
        found = Counter(kind for tags in data["tags"] for kind, _, _ in spans(tags))
        counts[key] = dict(sorted(found.items()))
    counts["pos_tags"] = dict(sorted(Counter(t for s in data["pos"] for t in s).items()))
    return counts


def prepare_text(corpus: str, raw: str | os.PathLike, out: str | os.PathLike, cfg: dict) -> dict:
    """Read one corpus from ``raw`` (for wsj_pos: the Treebank-3 root) and write its splits to ``out``."""
    raw, out = Path(raw), Path(out)
    if corpus == "conll2000":
        splits = conll2000_splits(raw, cfg.get("conll2000_valid_sentences", 1000))
    elif corpus == "conll2003":
        splits = conll2003_splits(raw)
    elif corpus == "ptb_pos":
        splits = ptb_sample_splits(raw / "treebank.zip", cfg["ptb_sample_split"])
    elif corpus == "wsj_pos":
        splits = wsj_splits(raw, cfg["wsj_split"])
    else:
        raise ValueError(f"unknown corpus {corpus!r}")
    for name, data in splits.items():
        if not data["words"]:
            raise ValueError(f"{corpus}: split {name!r} is empty (check the split ranges in the data config)")
    counts = {name: split_counts(data, corpus) for name, data in splits.items()}
    for name, data in splits.items():
        torch_save(data, out / f"{name}.pt")
    write_json(out / "counts.json", counts)
    return counts
