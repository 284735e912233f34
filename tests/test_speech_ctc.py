"""CTC lattice vs torch's ctc_loss, decoding vs enumeration, error rates on known strings."""
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlgm.hmm.inference import forward
from dlgm.speech.ctc import beam_decode, ctc_hmm, greedy, prefix_beam_search
from dlgm.speech.scoring import error_rate, fold, frame_accuracy


def test_ctc_lattice_forward_equals_torch_ctc_loss():
    gen = torch.Generator().manual_seed(0)
    classes, frames = 5, 12
    for labels in ([1, 2, 3], [2, 2, 4, 1], [3], [1, 1, 1]):
        log_probs = torch.randn(frames, classes, generator=gen, dtype=torch.float64).log_softmax(-1)
        ext, log_trans, log_init, log_final = ctc_hmm(labels)
        _, loglik = forward(log_probs[:, ext].unsqueeze(0), log_trans, log_init, log_final=log_final)
        ref = F.ctc_loss(log_probs.unsqueeze(1), torch.tensor([labels]), torch.tensor([frames]), torch.tensor([len(labels)]), reduction="sum")
        assert -loglik.item() == pytest.approx(ref.item(), abs=1e-9)


def _collapse(path, blank=0):
    out = []
    for i, c in enumerate(path):
        if c != blank and (i == 0 or path[i - 1] != c):
            out.append(c)
    return tuple(out)


def test_prefix_beam_search_finds_the_most_probable_labelling():
    rng = np.random.default_rng(1)
    for _ in range(5):
        logp = np.log(rng.dirichlet(np.ones(3) * 0.7, size=5))
        totals = {}
        for path in itertools.product(range(3), repeat=5):
            key = _collapse(path)
            totals[key] = np.logaddexp(totals.get(key, -np.inf), sum(logp[t, c] for t, c in enumerate(path)))
        best = max(totals, key=totals.get)
        assert tuple(prefix_beam_search(logp, beam=64, prune=-math.inf)) == best


def test_greedy_and_beam_on_a_batch():
    # frames: a a _ b b | c _ c (padding after length 3 for the second)
    seq = torch.tensor([[1, 1, 0, 2, 2], [3, 0, 3, 1, 1]])
    log_probs = F.one_hot(seq, 4).double().mul(10).log_softmax(-1)
    lengths = torch.tensor([5, 3])
    assert greedy(log_probs, lengths) == [[1, 2], [3, 3]]
    assert beam_decode(log_probs, lengths, beam=4) == [[1, 2], [3, 3]]


def test_error_rates_on_known_strings():
    refs = [list("abcd"), list("xyz")]
    hyps = [list("abd"), list("xyyz")]  # one deletion, one insertion
    assert error_rate(refs, hyps) == pytest.approx(2 / 7)
    assert error_rate([["one", "two"]], [["one", "three"]]) == 0.5
    assert fold(["ao", "aa", "q", "h#"], {"ao": "aa", "q": None}, drop=["h#"]) == ["aa", "aa"]
    assert frame_accuracy([torch.tensor([1, 2, 3])], [torch.tensor([1, 0, 3])]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        error_rate([["a"]], [])


def test_ctc_word_loop_decodes_spiky_outputs_with_and_without_blanks():
    from dlgm.hmm.decode import decode
    from dlgm.speech.ctc import ctc_word_loop

    words = [[1, 2], [3, 3], [4]]  # a word with a repeated label needs a blank inside it
    graph = ctc_word_loop(words)
    frames = [  # label per frame (0 = blank): word0 (no blank inside) _ word1 (3 _ 3) word2 word0
        [1, 2, 0, 3, 0, 3, 4, 4, 0, 1, 0, 2],
        [0, 0, 4, 0, 4, 3, 3, 0, 3],
    ]
    feats = [torch.tensor(f).float().unsqueeze(1) for f in frames]

    def score(x, lengths):
        return F.one_hot(x[..., 0].long(), 5).double().mul(10).log_softmax(-1)

    units, _ = decode(score, graph, feats, batch_size=2)
    blank_unit = len(words)
    assert [[u for u in seq if u != blank_unit] for seq in units] == [[0, 1, 2, 0], [2, 2, 1]]
