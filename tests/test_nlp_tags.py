"""Tag schemes and chunk scoring: conversions, and F1 by conlleval's counting rules (by hand and
against seqeval, which applies the same rules to B/I/O tags)."""
import random

import pytest
from seqeval.metrics import f1_score
from seqeval.scheme import IOBES

from dlgm.nlp.evaluate import chunk_scores, conlleval_chunks, token_accuracy
from dlgm.nlp.features import CAPS, Vocabulary, caps_class, normalise
from dlgm.nlp.tags import convert, iob2_to_iobes, to_iob2

IOB1 = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-LOC", "O", "I-ORG"]
IOB2 = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "O", "B-ORG"]
IOBES_ = ["B-PER", "E-PER", "O", "S-LOC", "B-LOC", "E-LOC", "O", "S-ORG"]


def test_iob1_to_iob2_and_iobes():
    assert to_iob2(IOB1) == IOB2
    assert iob2_to_iobes(IOB1) == IOBES_
    assert convert(IOB2, "iobes") == IOBES_


def test_iobes_round_trip():
    assert to_iob2(IOBES_) == IOB2
    assert iob2_to_iobes(to_iob2(IOBES_)) == IOBES_
    long = ["B-NP", "I-NP", "I-NP", "E-NP", "S-VP", "O", "B-PP", "E-PP"]
    assert iob2_to_iobes(to_iob2(long)) == long


def test_invalid_iobes_is_read_like_conlleval():
    # I- after O starts a chunk; E- closes it, so a following I- starts another; type change splits
    assert to_iob2(["O", "I-NP", "E-NP", "I-NP", "I-VP"]) == ["O", "B-NP", "I-NP", "B-NP", "B-VP"]


def test_bad_tag_names_the_tag():
    with pytest.raises(ValueError, match="X-NP"):
        to_iob2(["X-NP"])


GOLD = [["B-NP", "I-NP", "B-VP", "O", "B-NP"], ["B-PP", "B-NP", "I-NP", "I-NP", "O", "B-ADJP"]]
PRED = [["B-NP", "I-NP", "B-VP", "B-NP", "I-NP"], ["B-PP", "B-NP", "I-NP", "O", "O", "I-ADJP"]]


def test_chunk_f1_equals_seqeval_on_iob2():
    got = chunk_scores(GOLD, PRED)
    assert got["f1"] == pytest.approx(f1_score(GOLD, PRED))
    # by hand: gold 6 chunks, predicted 6, correct NP VP / PP ADJP -> 4; F1 = 4/6
    assert got["f1"] == pytest.approx(4 / 6)
    assert got["per_type"]["NP"]["support"] == 3


def test_chunk_f1_on_iob1_input_equals_seqeval_on_iob1():
    gold = [IOB1, ["I-MISC", "O", "I-PER", "I-PER"]]
    pred = [["I-PER", "O", "O", "I-LOC", "I-LOC", "I-LOC", "O", "I-ORG"], ["I-MISC", "O", "I-PER", "B-PER"]]
    assert chunk_scores(gold, pred)["f1"] == pytest.approx(f1_score(gold, pred))


def test_chunk_f1_on_iobes_input_equals_seqeval_strict_iobes():
    valid = [["B-PER", "E-PER", "O", "S-LOC", "B-LOC", "E-LOC", "O", "S-MISC"]]
    expected = f1_score([IOBES_], valid, mode="strict", scheme=IOBES)
    assert chunk_scores([IOBES_], valid)["f1"] == pytest.approx(expected)
    assert expected == pytest.approx(3 / 4)


def test_issue_example_s_then_e_is_one_chunk_as_in_conlleval():
    # conlleval after S->B, E->I reads S-NP E-NP as B-NP I-NP: the gold chunk exactly
    assert conlleval_chunks(["S-NP", "E-NP"]) == {("NP", 0, 1)}
    assert chunk_scores([["B-NP", "E-NP"]], [["S-NP", "E-NP"]])["f1"] == 1.0


@pytest.mark.parametrize("tags,chunks", [
    # conlleval's rules by hand: B- always starts; I- starts after O or after another type;
    # O, B- and a type change end the open chunk; the sentence end ends it
    (["B-NP", "I-NP", "I-NP"], {("NP", 0, 2)}),
    (["O", "I-NP", "I-NP", "B-NP", "I-NP"], {("NP", 1, 2), ("NP", 3, 4)}),
    (["I-NP", "I-VP", "I-VP", "O", "I-VP"], {("NP", 0, 0), ("VP", 1, 2), ("VP", 4, 4)}),
    (["B-NP", "B-NP", "O", "O"], {("NP", 0, 0), ("NP", 1, 1)}),
    # IOBES, legal: S- and E- only mark ends that B-/O/type changes mark anyway
    (["B-NP", "E-NP", "S-NP", "S-VP", "B-PP", "I-PP", "E-PP"], {("NP", 0, 1), ("NP", 2, 2), ("VP", 3, 3), ("PP", 4, 6)}),
    # IOBES, illegal, read as conlleval reads the converted tags
    (["B-NP", "E-NP", "I-NP"], {("NP", 0, 2)}),  # E- then I- continues (I-NP I-NP)
    (["E-NP", "E-NP"], {("NP", 0, 1)}),  # I-NP I-NP
    (["E-NP", "S-NP", "E-VP"], {("NP", 0, 0), ("NP", 1, 1), ("VP", 2, 2)}),
    (["S-NP", "I-NP", "E-NP", "O", "E-NP"], {("NP", 0, 2), ("NP", 4, 4)}),
    (["O", "O"], set()),
])
def test_conlleval_chunks_by_hand(tags, chunks):
    assert conlleval_chunks(tags) == chunks


def test_illegal_iobes_prediction_counted_by_hand():
    illegal = [["B-PER", "E-PER", "O", "S-LOC", "E-LOC", "E-LOC", "O", "S-ORG"]]
    # gold IOBES_: PER 0-1, LOC 3-3, LOC 4-5, ORG 7-7 (4 chunks); predicted: PER 0-1, LOC 3-5, ORG 7-7
    # (3 chunks); 2 correct -> P 2/3, R 2/4, F1 4/7. LOC: 0 correct of 2 gold, 1 guessed -> F1 0.
    got = chunk_scores([IOBES_], illegal)
    assert got["f1"] == pytest.approx(4 / 7)
    assert got["per_type"]["LOC"] == {"f1": 0.0, "support": 2}
    assert got["per_type"]["PER"] == {"f1": 1.0, "support": 1}


def test_types_only_predicted_count_as_false_positives():
    got = chunk_scores([["B-NP", "O"]], [["B-NP", "B-VP"]])
    assert got["f1"] == pytest.approx(2 / 3)  # P 1/2, R 1/1
    assert got["per_type"]["VP"] == {"f1": 0.0, "support": 0}


def _to_iob(tags):
    return [{"S": "B", "E": "I"}.get(t[0], t[0]) + t[1:] for t in tags]


def test_random_iobes_sequences_equal_seqeval_on_the_converted_tags():
    """seqeval's default mode applies conlleval's rules to B/I/O tags: on tags converted S->B,
    E->I it must agree with us, overall and per type, legal sequences or not."""
    from seqeval.metrics import classification_report

    rng = random.Random(0)
    alphabet = ["O"] + [f"{p}-{t}" for p in "BIES" for t in ("NP", "VP")]
    gold = [[rng.choice(alphabet) for _ in range(rng.randint(1, 12))] for _ in range(300)]
    pred = [[t if rng.random() < 0.6 else rng.choice(alphabet) for t in s] for s in gold]
    got = chunk_scores(gold, pred)
    g2, p2 = [_to_iob(s) for s in gold], [_to_iob(s) for s in pred]
    assert got["f1"] == pytest.approx(f1_score(g2, p2))
    report = classification_report(g2, p2, output_dict=True, zero_division=0)
    for kind in ("NP", "VP"):
        assert got["per_type"][kind]["f1"] == pytest.approx(report[kind]["f1-score"])
        assert got["per_type"][kind]["support"] == report[kind]["support"]


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="sentence 1: gold has 2 tags, predicted 1"):
        chunk_scores([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="gold has 1 sentences, predicted 2"):
        chunk_scores([["O"]], [["O"], ["O"]])


def test_token_accuracy():
    assert token_accuracy([["a", "b"], ["c"]], [["a", "x"], ["c"]]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="lengths differ"):
        token_accuracy([["a"]], [["a", "b"]])


@pytest.mark.parametrize("word,caps", [("the", "all_lower"), ("Paris", "first_upper"), ("NATO", "all_upper"),
                                       ("iPhone", "has_upper"), ("1,200", "no_letters"), ("U.S.", "all_upper")])
def test_caps_classes(word, caps):
    assert CAPS[caps_class(word)] == caps


def test_vocabulary_lowercases_normalises_digits_and_ranks_by_frequency():
    vocab = Vocabulary.build([["The", "cat", "the", "12"], ["THE", "dog", "34", "cat"]], size=5, digits_to_zero=True)
    assert vocab.words == ["<pad>", "<unk>", "the", "00", "cat"]
    assert vocab.encode(["Cat", "dog", "99"]) == [4, 1, 3]
    assert normalise("A1b2", digits_to_zero=False) == "a1b2"
