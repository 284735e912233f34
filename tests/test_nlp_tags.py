"""Tag schemes and chunk scoring: conversions, and F1 against seqeval (conlleval rules)."""
import pytest
from seqeval.metrics import f1_score
from seqeval.scheme import IOBES

from dlgm.nlp.evaluate import chunk_scores, token_accuracy
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


def test_invalid_iobes_prediction_scores_as_its_conlleval_chunks():
    invalid = [["B-PER", "E-PER", "O", "S-LOC", "E-LOC", "E-LOC", "O", "S-ORG"]]
    # S-LOC | E-LOC (a one-word chunk) | E-LOC (another): 3 LOC chunks, none matching gold's 2nd
    assert to_iob2(invalid[0]) == ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-LOC", "O", "B-ORG"]
    assert chunk_scores([IOBES_], invalid)["f1"] == pytest.approx(f1_score([IOB2], [to_iob2(invalid[0])]))


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
