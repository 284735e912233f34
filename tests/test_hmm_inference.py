"""Forward-backward and Viterbi against brute-force enumeration of every state path."""
import itertools

import numpy as np
import pytest
import torch

from dlgm.hmm.inference import forward, forward_backward, viterbi


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


def _enumerated_posteriors(scores, length, states):
    """log-likelihood, state posteriors [length, states] and transition counts [states, states]
    of enumerated path scores."""
    total = np.logaddexp.reduce(np.array(list(scores.values())))
    gamma, xi = np.zeros((length, states)), np.zeros((states, states))
    for p, s in scores.items():
        w = np.exp(s - total)
        for t, state in enumerate(p):
            gamma[t, state] += w
        for t in range(1, length):
            xi[p[t - 1], p[t]] += w
    return total, gamma, xi


@pytest.mark.parametrize("sparse", [False, True])
def test_forward_backward_and_viterbi_equal_enumeration(sparse):
    gen = torch.Generator().manual_seed(3)
    log_emit, log_trans, log_init, log_final = _random_hmm(gen, states=3, frames=5, batch=3, sparse=sparse)
    lengths = torch.tensor([5, 3, 1])
    post = forward_backward(log_emit, log_trans, log_init, lengths, log_final, transitions=True)
    path, score = viterbi(log_emit, log_trans, log_init, lengths, log_final)
    for b, length in enumerate(lengths.tolist()):
        scores = _enumerate(log_emit[b], log_trans[b], log_init[b], log_final[b], length)
        total, gamma, xi = _enumerated_posteriors(scores, length, 3)
        assert post.loglik[b].item() == pytest.approx(total, abs=1e-9)
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


# --- edges: confident emissions, structural zeros, long left-to-right chains ---

def _log_space_reference(log_emit, log_trans, log_init, log_final, length):
    """An independent float64 forward: alpha_t(j) = logsumexp_i(alpha_{t-1}(i) + log A_ij) + log b_t(j)."""
    alpha = log_init + log_emit[0]
    for t in range(1, length):
        alpha = torch.logsumexp(alpha.unsqueeze(1) + log_trans, dim=0) + log_emit[t]
    return torch.logsumexp(alpha + log_final, dim=0)


def test_issue_example_state_800_nats_behind_is_the_only_route():
    log_trans = torch.tensor([[0.5, 0.5], [0.0, 1.0]], dtype=torch.float64).log()
    log_init = torch.tensor([0.5, 0.5], dtype=torch.float64).log()
    log_emit = torch.tensor([[-800.0, 0.0], [0.0, -1000.0], [0.0, -1000.0], [0.0, -1000.0]], dtype=torch.float64)
    post = forward_backward(log_emit[None], log_trans, log_init, transitions=True)
    scores = _enumerate(log_emit, log_trans, log_init, torch.zeros(2, dtype=torch.float64), 4)
    exact = np.logaddexp.reduce(np.array(list(scores.values())))
    assert exact == pytest.approx(-800 + 4 * np.log(0.5), abs=1e-9)  # -802.77; the old forward gave -3000.69
    assert post.loglik.item() == pytest.approx(exact, abs=1e-9)
    np.testing.assert_allclose(post.gamma[0].numpy(), [[1, 0]] * 4, atol=1e-12)
    np.testing.assert_allclose(post.xi[0].numpy(), [[3, 0], [0, 0]], atol=1e-12)
    _, loglik32 = forward(log_emit[None].float(), log_trans.float(), log_init.float())
    assert loglik32.item() == pytest.approx(exact, rel=1e-6)


@pytest.mark.parametrize("scale", [1e3, 1e4])
@pytest.mark.parametrize("sparse", [False, True])
def test_scores_of_thousands_of_nats_equal_enumeration(scale, sparse):
    gen = torch.Generator().manual_seed(7)
    log_emit, log_trans, log_init, log_final = _random_hmm(gen, states=3, frames=5, batch=3, sparse=sparse)
    log_emit = log_emit * (scale / 3)
    log_trans = (log_trans * scale / 10).log_softmax(-1)
    lengths = torch.tensor([5, 4, 2])
    post = forward_backward(log_emit, log_trans, log_init, lengths, log_final, transitions=True)
    for b, length in enumerate(lengths.tolist()):
        scores = _enumerate(log_emit[b], log_trans[b], log_init[b], log_final[b], length)
        total, gamma, _ = _enumerated_posteriors(scores, length, 3)
        assert post.loglik[b].item() == pytest.approx(total, rel=1e-13)
        np.testing.assert_allclose(post.gamma[b, :length].numpy(), gamma, atol=1e-12)
    assert torch.isfinite(post.gamma).all() and torch.isfinite(post.xi).all()


def _left_to_right(states, frames, batch, seed, confidence):
    """A left-to-right model (stay or move on: -inf elsewhere) whose emissions point, confidently
    and mostly wrongly, at the states: the likely state sequences are thousands of nats apart."""
    gen = torch.Generator().manual_seed(seed)
    stay = torch.rand(states, generator=gen, dtype=torch.float64) * 0.8 + 0.1
    log_trans = torch.full((states, states), float("-inf"), dtype=torch.float64)
    idx = torch.arange(states)
    log_trans[idx, idx] = stay.log()
    log_trans[idx[:-1], idx[:-1] + 1] = (1 - stay[:-1]).log()
    log_init = torch.full((states,), float("-inf"), dtype=torch.float64)
    log_init[0] = 0.0
    log_final = torch.full((states,), float("-inf"), dtype=torch.float64)
    log_final[-1] = 0.0
    log_emit = torch.randn(batch, frames, states, generator=gen, dtype=torch.float64) * confidence
    return log_emit, log_trans, log_init, log_final


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_long_left_to_right_chain_with_confident_emissions(dtype):
    log_emit, log_trans, log_init, log_final = _left_to_right(states=8, frames=300, batch=3, seed=8, confidence=400)
    log_emit, log_trans = log_emit.to(dtype).double(), log_trans.to(dtype).double()  # same inputs for the reference
    lengths = torch.tensor([300, 250, 120])
    post = forward_backward(log_emit.to(dtype), log_trans.to(dtype), log_init.to(dtype), lengths,
                            log_final.to(dtype), transitions=True)
    _, loglik = forward(log_emit.to(dtype), log_trans.to(dtype), log_init.to(dtype), lengths, log_final.to(dtype))
    rel = 1e-13 if dtype == torch.float64 else 1e-7  # float32: the result rounded once
    for b, length in enumerate(lengths.tolist()):
        want = _log_space_reference(log_emit[b], log_trans, log_init, log_final, length).item()
        assert np.isfinite(want)
        assert post.loglik[b].item() == pytest.approx(want, rel=rel)
        assert loglik[b].item() == pytest.approx(want, rel=rel)
    # every frame's posterior is a distribution, and the chain is walked once: 7 moves per utterance
    inside = post.gamma.sum(-1)
    for b, length in enumerate(lengths.tolist()):
        np.testing.assert_allclose(inside[b, :length].double().numpy(), 1.0, atol=1e-5)
        assert (inside[b, length:] == 0).all()
        moves = post.xi[b].double().diagonal(offset=1).sum().item()
        assert moves == pytest.approx(7.0, abs=1e-4)


def test_mixed_batch_equals_one_utterance_at_a_time():
    """Utterances that need the exact log-space path and ones that do not, in one padded batch."""
    gen = torch.Generator().manual_seed(9)
    log_emit, log_trans, log_init, log_final = _random_hmm(gen, states=4, frames=30, batch=4, sparse=True)
    log_emit[1] = log_emit[1] * 500  # forces the exact path for this one
    lengths = torch.tensor([30, 22, 30, 9])
    post = forward_backward(log_emit, log_trans, log_init, lengths, log_final, transitions=True)
    for b, length in enumerate(lengths.tolist()):
        one = forward_backward(log_emit[b : b + 1, :length], log_trans[b : b + 1], log_init[b : b + 1],
                               None, log_final[b : b + 1], transitions=True)
        want = _log_space_reference(log_emit[b], log_trans[b], log_init[b], log_final[b], length)
        assert post.loglik[b].item() == pytest.approx(want.item(), rel=1e-12)
        assert one.loglik[0].item() == pytest.approx(want.item(), rel=1e-12)
        torch.testing.assert_close(post.gamma[b, :length], one.gamma[0])
        torch.testing.assert_close(post.xi[b], one.xi[0])


def test_ordinary_inputs_take_the_scaled_path_and_edges_do_not():
    """The speed depends on the check not firing on ordinary models (a benchmark-like dense HMM in
    float32); the issue's example must fire it."""
    from dlgm.hmm.inference import _prepare, _Scaled

    gen = torch.Generator().manual_seed(10)
    log_emit = torch.randn(4, 200, 50, generator=gen) * 3
    log_trans = torch.randn(50, 50, generator=gen).log_softmax(-1)
    log_init = torch.randn(50, generator=gen).log_softmax(-1)
    assert not _Scaled(log_emit, *_prepare(log_emit, log_trans, log_init, None, None)).unsafe.any()
    log_emit[2, 100] *= 100
    assert _Scaled(log_emit, *_prepare(log_emit, log_trans, log_init, None, None)).unsafe.tolist() == [False, False, True, False]


def test_impossible_utterance_gives_minus_inf_not_nan():
    log_emit, log_trans, log_init, log_final = _left_to_right(states=5, frames=3, batch=1, seed=11, confidence=1)
    post = forward_backward(log_emit, log_trans, log_init, None, log_final)  # 3 frames cannot walk 5 states
    assert post.loglik.item() == float("-inf")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_unreachable_state_with_overflowing_backward_message(dtype):
    """State 2 is never entered (no initial or incoming probability) but emits 50 nats better than
    the others every frame: its scaled backward message grows e^50 a frame and overflows, while the
    forward check sees nothing unusual. Posteriors must stay exact (0 there), not NaN."""
    log_trans = torch.tensor([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64).log()
    log_init = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).log()
    log_emit = torch.zeros(2, 40, 3, dtype=torch.float64)
    log_emit[:, :, 2] = 50.0
    log_emit[1, :, 1] = -3.0
    post = forward_backward(log_emit.to(dtype), log_trans.to(dtype), log_init.to(dtype), transitions=True)
    assert torch.isfinite(post.gamma).all() and torch.isfinite(post.xi).all()
    for b in range(2):
        want = _log_space_reference(log_emit[b], log_trans, log_init, torch.zeros(3, dtype=torch.float64), 40)
        assert post.loglik[b].item() == pytest.approx(want.item(), rel=1e-6, abs=1e-6)
        assert (post.gamma[b, :, 2] == 0).all()
        np.testing.assert_allclose(post.gamma[b].sum(-1).double().numpy(), 1.0, atol=1e-6)
