"""Forward-backward and Viterbi against brute-force enumeration of every state path."""
import itertools

import numpy as np
import pytest
import torch

from dlgm.hmm.inference import forward_backward, viterbi


def _random_hmm(gen, states, frames, batch, sparse=False):
    log_trans = torch.log_softmax(torch.randn(batch, states, states, generator=gen, dtype=torch.float64), -1)
    if sparse:  # some forbidden transitions, as in left-to-right models
        mask = torch.rand(batch, states, states, generator=gen) < 0.3
        mask &= ~torch.eye(states, dtype=torch.bool)
        log_trans = log_trans.masked_fill(mask, float("-inf"))
    log_init = torch.log_softmax(torch.randn(batch, states, generator=gen, dtype=torch.float64), -1)
    log_final = torch.randn(batch, states, generator=gen, dtype=torch.float64)
    log_emit = torch.randn(batch, frames, states, generator=gen, dtype=torch.float64) * 3
    return log_emit, log_trans, log_init, log_final


def _enumerate(log_emit, log_trans, log_init, log_final, length):
    states = log_emit.shape[-1]
    scores = {}
    for path in itertools.product(range(states), repeat=length):
        s = log_init[path[0]] + log_emit[0, path[0]]
        for t in range(1, length):
            s = s + log_trans[path[t - 1], path[t]] + log_emit[t, path[t]]
        scores[path] = float(s + log_final[path[-1]])
    return scores


@pytest.mark.parametrize("sparse", [False, True])
def test_forward_backward_and_viterbi_equal_enumeration(sparse):
    gen = torch.Generator().manual_seed(3)
    log_emit, log_trans, log_init, log_final = _random_hmm(gen, states=3, frames=5, batch=3, sparse=sparse)
    lengths = torch.tensor([5, 3, 1])
    post = forward_backward(log_emit, log_trans, log_init, lengths, log_final, transitions=True)
    path, score = viterbi(log_emit, log_trans, log_init, lengths, log_final)
    for b, length in enumerate(lengths.tolist()):
        scores = _enumerate(log_emit[b], log_trans[b], log_init[b], log_final[b], length)
        values = np.array(list(scores.values()))
        total = np.logaddexp.reduce(values)
        assert post.loglik[b].item() == pytest.approx(total, abs=1e-9)
        gamma = np.zeros((length, 3))
        xi = np.zeros((3, 3))
        for p, s in scores.items():
            w = np.exp(s - total)
            for t, state in enumerate(p):
                gamma[t, state] += w
            for t in range(1, length):
                xi[p[t - 1], p[t]] += w
        np.testing.assert_allclose(post.gamma[b, :length].numpy(), gamma, atol=1e-9)
        assert post.gamma[b, length:].abs().sum() == 0
        np.testing.assert_allclose(post.xi[b].numpy(), xi, atol=1e-9)
        best = max(scores, key=scores.get)
        assert tuple(path[b, :length].tolist()) == best
        assert score[b].item() == pytest.approx(scores[best], abs=1e-9)


def test_shared_transition_matrix_broadcasts_over_batch():
    gen = torch.Generator().manual_seed(5)
    log_emit, log_trans, log_init, _ = _random_hmm(gen, states=4, frames=6, batch=2)
    shared = forward_backward(log_emit, log_trans[0], log_init[0])
    single = forward_backward(log_emit[1:], log_trans[0], log_init[0])
    assert shared.loglik[1].item() == pytest.approx(single.loglik[0].item(), abs=1e-9)


def test_loglik_matches_hmmlearn_gmm_hmm():
    hmm = pytest.importorskip("hmmlearn.hmm")
    rng = np.random.default_rng(0)
    model = hmm.GMMHMM(n_components=3, n_mix=2, covariance_type="diag", init_params="", params="")
    model.startprob_ = np.array([0.6, 0.3, 0.1])
    model.transmat_ = np.array([[0.7, 0.2, 0.1], [0.0, 0.8, 0.2], [0.3, 0.0, 0.7]])
    model.weights_ = np.array([[0.4, 0.6], [0.5, 0.5], [0.9, 0.1]])
    model.means_ = rng.normal(size=(3, 2, 4))
    model.covars_ = rng.uniform(0.5, 2.0, size=(3, 2, 4))
    x = rng.normal(size=(20, 4))
    from dlgm.hmm.gmm import DiagGMM

    gmm = DiagGMM(states=3, dim=4, components=2).double()
    gmm.means.copy_(torch.from_numpy(model.means_))
    gmm.variances.copy_(torch.from_numpy(model.covars_))
    gmm.log_weights.copy_(torch.from_numpy(np.log(model.weights_)))
    log_emit = gmm.log_likelihood(torch.from_numpy(x)).unsqueeze(0)
    with np.errstate(divide="ignore"):
        post = forward_backward(log_emit, torch.from_numpy(np.log(model.transmat_)), torch.from_numpy(np.log(model.startprob_)))
    assert post.loglik.item() == pytest.approx(model.score(x), abs=1e-8)
    np.testing.assert_allclose(post.gamma[0].numpy(), model.predict_proba(x), atol=1e-8)
