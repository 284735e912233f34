"""Baum-Welch on data drawn from a known phone HMM: likelihood never falls, alignments and decoding recover the truth."""
import numpy as np
import pytest
import torch

from dlgm.hmm.baum_welch import PhoneHMM, align, em_iteration, gmm_scorer
from dlgm.hmm.decode import decode
from dlgm.hmm.graph import bigram, loop_graph
from speech_synthetic import make_corpus


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(one_thread):
    corpus = make_corpus(60, phones=5, dim=6, seed=1)
    model = PhoneHMM(phones=5, dim=6)
    model.gmm.flat_start(torch.cat(corpus.feats))
    history = []
    for it in range(12):
        if it in (6, 9):
            model.gmm.split()
        history.append((it, float(em_iteration(model, corpus.feats, corpus.phones, batch_size=16)["loglik_per_frame"])))
    return corpus, model, history


def test_baum_welch_never_lowers_the_likelihood(trained):
    _, _, history = trained
    # the likelihood reported at iteration i is that of the parameters before its M-step; a split
    # changes the model, so compare only within each mixture size
    for (i, a), (j, b) in zip(history, history[1:]):
        if j not in (6, 9):
            assert b >= a - 1e-4, history


def test_forced_alignment_recovers_the_generating_states(trained):
    corpus, model, _ = trained
    states = align(gmm_scorer(model), model.log_self, 3, corpus.feats, corpus.phones, batch_size=16)
    acc = np.mean([(a == b).float().mean().item() for a, b in zip(states, corpus.frame_states)])
    assert acc > 0.95


def test_phone_loop_decoding_recovers_transcripts(trained):
    corpus, model, _ = trained
    start, big, end = bigram(corpus.phones, 5)
    graph = loop_graph([[p] for p in range(5)], model.log_self, 3, start, big, end)
    units, _ = decode(lambda x, n: model.state_log_likelihood(x), graph, corpus.feats[:20], batch_size=8)
    exact = sum(u == r for u, r in zip(units, corpus.phones[:20]))
    assert exact >= 17


def test_resume_restores_a_model_with_more_mixture_components(trained):
    _, model, _ = trained
    fresh = PhoneHMM(phones=5, dim=6)
    fresh.load_state_dict(model.state_dict())
    x = torch.randn(7, 6)
    assert fresh.gmm.components == model.gmm.components == 4
    torch.testing.assert_close(fresh.state_log_likelihood(x), model.state_log_likelihood(x))
