"""Window network: the window it sees, padding, batching, losses, and the length-bucketed batches."""
import numpy as np
import torch

from dlgm.nlp.batches import encode, ordered_batches, bucketed_batches
from dlgm.nlp.features import Vocabulary
from dlgm.nlp.window import WindowNetwork


def test_scores_equal_explicit_window_concatenation():
    torch.manual_seed(0)
    net = WindowNetwork(20, 4, window=5, word_dim=3, caps_dim=2, hidden=7)
    words = torch.tensor([[5, 6, 7, 8]])
    caps = torch.tensor([[1, 2, 3, 4]])
    got = net(words, caps)[0]
    padded_w = [0, 0, 5, 6, 7, 8, 0, 0]
    padded_c = [0, 0, 1, 2, 3, 4, 0, 0]
    for t in range(4):
        x = torch.cat([torch.cat([net.words.weight[padded_w[t + k]], net.caps.weight[padded_c[t + k]]])
                       for k in range(5)])
        expected = net.output(torch.nn.functional.hardtanh(net.hidden(x)))
        torch.testing.assert_close(got[t], expected)


def test_padded_batch_equals_one_sentence_at_a_time():
    torch.manual_seed(1)
    for sll in (False, True):
        net = WindowNetwork(30, 5, hidden=11, sentence_level=sll)
        with torch.no_grad():
            if sll:
                net.crf.transitions.normal_()
        words = torch.tensor([[3, 4, 5, 6, 7], [8, 9, 0, 0, 0]])
        caps = torch.tensor([[1, 1, 2, 3, 1], [2, 2, 0, 0, 0]])
        tags = torch.tensor([[0, 1, 2, 3, 4], [4, 3, 0, 0, 0]])
        mask = words != 0
        scores = net(words, caps)
        torch.testing.assert_close(scores[1, :2], net(words[1:, :2], caps[1:, :2])[0])
        total = net.loss(scores, tags, mask)
        parts = sum(net.loss(net(words[b : b + 1, :n], caps[b : b + 1, :n]), tags[b : b + 1, :n],
                             mask[b : b + 1, :n]) for b, n in ((0, 5), (1, 2)))
        torch.testing.assert_close(total, parts)
        pred = net.predict(scores, mask)
        assert pred[1, 2:].eq(-1).all()
        assert torch.equal(pred[1, :2], net.predict(net(words[1:, :2], caps[1:, :2]), mask[1:, :2])[0])


def test_word_level_loss_is_summed_cross_entropy():
    scores = torch.randn(1, 3, 4)
    tags = torch.tensor([[1, 0, 3]])
    net = WindowNetwork(10, 4)
    expected = -torch.log_softmax(scores[0], 1)[torch.arange(3), tags[0]].sum()
    torch.testing.assert_close(net.loss(scores, tags, torch.ones(1, 3, dtype=torch.bool)), expected)


def test_encode_pads_and_maps_unknown_words():
    vocab = Vocabulary.build([["a", "b", "b"]], size=10, digits_to_zero=True)
    split = encode([["B", "zzz"], ["a"]], vocab, torch.device("cpu"), tags=[["X", "Y"], ["X"]],
                   tag_index={"X": 0, "Y": 1})
    assert split.words.tolist() == [[2, 1], [3, 0]]
    assert split.caps.tolist()[1][1] == 0 and split.mask.tolist() == [[True, True], [True, False]]
    assert split.tags.tolist() == [[0, 1], [0, 0]]


def test_batches_cover_every_sentence_once():
    lengths = np.random.default_rng(0).integers(1, 40, size=103)
    batches = bucketed_batches(lengths, 8, np.random.default_rng(1), bucket=3)
    assert sorted(np.concatenate(batches).tolist()) == list(range(103))
    assert all(len(b) <= 8 for b in batches)
    ordered = ordered_batches(lengths, 10)
    flat = np.concatenate(ordered)
    assert sorted(flat.tolist()) == list(range(103)) and (np.diff(lengths[flat]) >= 0).all()
