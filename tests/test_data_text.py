"""Text corpora: tag-scheme conversions (exhaustive, seqeval as oracle), readers, counts vs SOURCE.md."""
from __future__ import annotations

import gzip
import itertools
import json

import pytest
import torch
from seqeval.metrics.sequence_labeling import get_entities

from conftest import copy_pipeline, require_mirror, snakemake
from dlgm.data.text import find_wsj_mrg, iob1_to_iob2, iob2_to_iobes, prepare_text, read_conll, read_mrg, spans
from dlgm.nlp.tags import split_tag

SPLITS = {"ptb_sample_split": {"train": [1, 159], "valid": [160, 179], "test": [180, 199]},
          "wsj_split": {"train": [0, 18], "valid": [19, 21], "test": [22, 24]},
          "conll2000_valid_sentences": 1000}
IOB1_TAGS = ["O", "I-A", "B-A", "I-B", "B-B"]


def iob2_to_iob1(tags):
    """IOB2 -> IOB1 (B-X stays only right after an X token): the inverse the round trips check."""
    out, previous_kind = [], None
    for tag in tags:
        prefix, kind = split_tag(tag)
        out.append(f"I-{kind}" if prefix == "B" and previous_kind != kind else tag)
        previous_kind = kind
    return out


def iobes_to_iob2(tags):
    return [f"B-{tag[2:]}" if tag[:2] == "S-" else f"I-{tag[2:]}" if tag[:2] == "E-" else tag for tag in tags]


def canonical_iob1(length):
    """Every IOB1 sequence where B-X only follows an X token (as the shared task writes them)."""
    for tags in itertools.product(IOB1_TAGS, repeat=length):
        if all(t[0] != "B" or (i > 0 and tags[i - 1][2:] == t[2:]) for i, t in enumerate(tags)):
            yield list(tags)


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5])
def test_conversions_round_trip_and_keep_the_entities(length):
    for iob1 in canonical_iob1(length):
        iob2 = iob1_to_iob2(iob1)
        iobes = iob2_to_iobes(iob2)
        assert iob2_to_iob1(iobes_to_iob2(iobes)) == iob1
        assert iobes_to_iob2(iobes) == iob2
        assert all(t[0] != "I" or (i > 0 and iob2[i - 1][2:] == t[2:]) for i, t in enumerate(iob2))
        oracle = [(kind, start, end + 1) for kind, start, end in get_entities(iob2)]
        assert spans(iob2) == oracle == spans(iobes), iob1
        assert [(k, s, e + 1) for k, s, e in get_entities(iobes)] == oracle


def test_conversion_examples():
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG", "I-ORG"]
    assert iob1_to_iob2(iob1) == ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG", "I-ORG"]
    assert iob2_to_iobes(iob1_to_iob2(iob1)) == ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "B-ORG", "I-ORG", "E-ORG"]
    with pytest.raises(ValueError, match="malformed tag 'X-PER'"):
        iob1_to_iob2(["X-PER"])


def test_read_conll_drops_docstart_and_names_bad_lines(tmp_path):
    good = tmp_path / "eng.train.gz"
    good.write_bytes(gzip.compress(b"-DOCSTART- -X- -X- O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n\n"
                                   b"Peter NNP I-NP I-PER\n"))
    assert read_conll(good, 4) == [[("EU", "NNP", "I-NP", "I-ORG"), ("rejects", "VBZ", "I-VP", "O")],
                                   [("Peter", "NNP", "I-NP", "I-PER")]]
    bad = tmp_path / "train.txt"
    bad.write_text("Confidence NN B-NP\nin IN\n")
    with pytest.raises(ValueError, match=r"train.txt:2: expected 3 columns, got 2"):
        read_conll(bad, 3)


TREES = """
( (S (NP-SBJ (NNP Pierre) (NNP Vinken) )
    (VP (MD will) (NP (-NONE- *-1) ))
    (. .) ))
( (S (NP-SBJ (-NONE- *T*-2) (PRP It)) (VP (VBD rose) (NP (CD 3\\/4) (-LRB- -LRB-))) (. .) ))
"""


def test_read_mrg_keeps_overt_leaves_only():
    assert read_mrg(TREES) == [
        [("Pierre", "NNP"), ("Vinken", "NNP"), ("will", "MD"), (".", ".")],
        [("It", "PRP"), ("rose", "VBD"), ("3\\/4", "CD"), ("-LRB-", "-LRB-"), (".", ".")],
    ]
    with pytest.raises(ValueError, match="x.mrg: 1 unclosed"):
        read_mrg("( (S (NN a) )", "x.mrg")


def make_treebank3(root):
    """A tiny Treebank-3 tree: treebank_3/parsed/mrg/wsj/<section>/wsj_<section>01.mrg."""
    wsj = root / "treebank_3" / "parsed" / "mrg" / "wsj"
    sentences = {0: "Pierre", 18: "Vinken", 19: "will", 21: "join", 22: "the", 24: "board"}
    for section, word in sentences.items():
        folder = wsj / f"{section:02d}"
        folder.mkdir(parents=True)
        (folder / f"wsj_{section:02d}01.mrg").write_text(
            f"( (S (NP-SBJ (-NONE- *)) (NP (NN {word}) (NN x)) ))\n( (S (VB {word}2) ))\n")
    (wsj / "25").mkdir()
    (wsj / "25" / "wsj_2501.mrg").write_text("( (S (NN outside) ))\n")
    return wsj


def test_wsj_reader_on_a_generated_treebank3_tree(tmp_path):
    wsj = make_treebank3(tmp_path)
    assert find_wsj_mrg(tmp_path) == wsj
    counts = prepare_text("wsj_pos", tmp_path, tmp_path / "out", SPLITS)
    assert {name: c["sentences"] for name, c in counts.items()} == {"train": 4, "valid": 4, "test": 4}
    test = torch.load(tmp_path / "out" / "test.pt")
    assert test["words"] == [["the", "x"], ["the2"], ["board", "x"], ["board2"]]
    assert test["tags"] == test["pos"] == [["NN", "NN"], ["VB"], ["NN", "NN"], ["VB"]]
    with pytest.raises(FileNotFoundError, match="data.ptb_path=.*no WSJ .mrg files"):
        find_wsj_mrg(tmp_path / "out")


# ---- the real corpora (numbers from ../shared/data/<corpus>/SOURCE.md) -------------------------

def test_conll2000_counts(tmp_path):
    mirror = require_mirror()
    counts = prepare_text("conll2000", mirror / "conll2000", tmp_path, SPLITS)
    assert (counts["train_full"]["sentences"], counts["train_full"]["tokens"]) == (8936, 211727)
    assert (counts["test"]["sentences"], counts["test"]["tokens"]) == (2012, 47377)
    assert counts["valid"]["sentences"] == 1000 and counts["train"]["sentences"] == 7936
    assert counts["train"]["tokens"] + counts["valid"]["tokens"] == 211727
    assert len(counts["train_full"]["chunks"]) == 11 and "UCP" not in counts["test"]["chunks"]
    train = torch.load(tmp_path / "train.pt")
    assert set(train) == {"words", "tags", "pos"}
    assert train["words"][0][:3] == ["Confidence", "in", "the"] and train["tags"][0][:3] == ["B-NP", "B-PP", "B-NP"]


def test_conll2003_counts_and_iobes(tmp_path):
    mirror = require_mirror()
    counts = prepare_text("conll2003", mirror / "conll2003", tmp_path, SPLITS)
    expected = {
        "train": (14041, 203621, {"LOC": 7140, "MISC": 3438, "ORG": 6321, "PER": 6600}),
        "valid": (3250, 51362, {"LOC": 1837, "MISC": 922, "ORG": 1341, "PER": 1842}),
        "test": (3453, 46435, {"LOC": 1668, "MISC": 702, "ORG": 1661, "PER": 1617}),
    }
    assert {k: (c["sentences"], c["tokens"], c["entities"]) for k, c in counts.items()} == expected
    test = torch.load(tmp_path / "test.pt")
    assert set(test) == {"words", "tags", "pos", "tags_iob1"}
    assert {t[:2] for s in test["tags"] for t in s} == {"O", "B-", "I-", "E-", "S-"}
    assert all(iob2_to_iob1(iobes_to_iob2(t)) == o for t, o in zip(test["tags"], test["tags_iob1"]))


def test_conll2003_iob1_to_iob2_reproduces_the_mirrors_iob2_files(tmp_path):
    """SOURCE.md: converting eng.* to IOB2 gives iob2/{train,valid,test}.txt byte for byte (NER column)."""
    mirror = require_mirror() / "conll2003"
    for split, name in (("train", "eng.train.gz"), ("valid", "eng.testa.gz"), ("test", "eng.testb.gz")):
        ours = read_conll(mirror / name, 4)
        theirs = read_conll(mirror / "iob2" / f"{split}.txt.gz", 4)
        assert [[t[0] for t in s] for s in ours] == [[t[0] for t in s] for s in theirs]
        assert [iob1_to_iob2([t[3] for t in s]) for s in ours] == [[t[3] for t in s] for s in theirs]
        if split == "train":  # the two B-MISC that follow no MISC token do not survive a round trip
            changed = [s for s in ours if iob2_to_iob1(iob1_to_iob2([t[3] for t in s])) != [t[3] for t in s]]
            assert sorted(w for s in changed for w, *_, tag in s if tag == "B-MISC") == ["Atlanta", "Urdu-speaking"]


def test_ptb_sample_counts_and_split(tmp_path):
    mirror = require_mirror()
    counts = prepare_text("ptb_pos", mirror / "ptb_pos", tmp_path, SPLITS)
    assert sum(c["sentences"] for c in counts.values()) == 3914
    assert sum(c["tokens"] for c in counts.values()) == 94084
    assert all(c["sentences"] > 200 for c in counts.values())
    train = torch.load(tmp_path / "train.pt")
    assert train["words"][0][:2] == ["Pierre", "Vinken"] and train["tags"][0][:2] == ["NNP", "NNP"]
    assert "-NONE-" not in {t for s in train["tags"] for t in s}


def test_wsj_rule_runs_only_when_ptb_path_is_set(tmp_path):
    workdir = copy_pipeline(tmp_path / "pipe")
    target = "data/processed/wsj_pos/counts.json"
    proc = snakemake(workdir, "-n", target, check=False)
    assert proc.returncode != 0 and "MissingRule" in proc.stdout + proc.stderr
    make_treebank3(tmp_path / "ptb")
    snakemake(workdir, "--cores", "1", target, "--config", f"data={{ptb_path: {tmp_path / 'ptb'}}}")
    counts = json.loads((workdir / target).read_text())
    assert {name: c["tokens"] for name, c in counts.items()} == {"train": 6, "valid": 6, "test": 6}
