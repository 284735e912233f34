"""Linear-chain CRF against exact answers: enumeration, brute-force arg-max, finite differences,
one-sentence-at-a-time, and pytorch-crf as an oracle."""
import itertools

import pytest
import torch
import torchcrf

from dlgm.crf import LinearChainCRF, gold_score, log_partition, viterbi


def random_problem(batch, length, tags, seed, dtype=torch.float64, scale=2.0):
    gen = torch.Generator().manual_seed(seed)
    emissions = torch.randn(batch, length, tags, generator=gen, dtype=dtype) * scale
    transitions = torch.randn(tags, tags, generator=gen, dtype=dtype) * scale
    initial = torch.randn(tags, generator=gen, dtype=dtype) * scale
    lengths = torch.randint(1, length + 1, (batch,), generator=gen)
    lengths[0] = length
    mask = torch.arange(length)[None, :] < lengths[:, None]
    return emissions, mask, transitions, initial, lengths


def path_score(emission, path, transitions, initial):
    score = initial[path[0]] + emission[0, path[0]]
    for t in range(1, len(path)):
        score = score + transitions[path[t - 1], path[t]] + emission[t, path[t]]
    return score


def enumerate_paths(emission, transitions, initial):
    length, tags = emission.shape
    paths = list(itertools.product(range(tags), repeat=length))
    scores = torch.stack([path_score(emission, p, transitions, initial) for p in paths])
    return paths, scores


def test_log_partition_equals_enumeration_over_all_paths():
    emissions, mask, transitions, initial, lengths = random_problem(5, 4, 3, seed=1)
    got = log_partition(emissions, mask, transitions, initial)
    for b in range(5):
        _, scores = enumerate_paths(emissions[b, : lengths[b]], transitions, initial)
        torch.testing.assert_close(got[b], torch.logsumexp(scores, 0), rtol=1e-10, atol=1e-10)


def test_log_partition_survives_scores_that_underflow_exp():
    emissions, mask, transitions, initial, lengths = random_problem(3, 4, 3, seed=2, dtype=torch.float32)
    transitions = transitions * 40  # spreads of ~200 nats: exp() of the smaller ones underflows
    emissions = emissions * 40
    got = log_partition(emissions, mask, transitions, initial)
    for b in range(3):
        _, scores = enumerate_paths(emissions[b, : lengths[b]].double(), transitions.double(), initial.double())
        torch.testing.assert_close(got[b].double(), torch.logsumexp(scores, 0), rtol=1e-5, atol=1e-3)


def test_viterbi_equals_brute_force_argmax():
    emissions, mask, transitions, initial, lengths = random_problem(6, 5, 3, seed=3)
    path, best = viterbi(emissions, mask, transitions, initial)
    for b in range(6):
        n = int(lengths[b])
        paths, scores = enumerate_paths(emissions[b, :n], transitions, initial)
        assert tuple(path[b, :n].tolist()) == paths[int(scores.argmax())]
        assert (path[b, n:] == -1).all()
        torch.testing.assert_close(best[b], scores.max())


def test_gold_score_equals_direct_sum():
    emissions, mask, transitions, initial, lengths = random_problem(4, 6, 4, seed=4)
    tags = torch.randint(0, 4, (4, 6), generator=torch.Generator().manual_seed(0))
    got = gold_score(emissions, tags, mask, transitions, initial)
    for b in range(4):
        n = int(lengths[b])
        torch.testing.assert_close(got[b], path_score(emissions[b, :n], tags[b, :n].tolist(), transitions, initial))


def test_gradients_match_finite_differences():
    emissions, mask, transitions, initial, _ = random_problem(3, 5, 4, seed=5, scale=1.0)
    tags = torch.randint(0, 4, (3, 5), generator=torch.Generator().manual_seed(1))

    def nll(em, tr, init):
        return -(gold_score(em, tags, mask, tr, init) - log_partition(em, mask, tr, init)).sum()

    inputs = tuple(x.clone().requires_grad_() for x in (emissions, transitions, initial))
    assert torch.autograd.gradcheck(nll, inputs, eps=1e-6, atol=1e-6)


def test_padded_batch_equals_one_sentence_at_a_time():
    emissions, mask, transitions, initial, lengths = random_problem(7, 9, 5, seed=6)
    logz = log_partition(emissions, mask, transitions, initial)
    path, _ = viterbi(emissions, mask, transitions, initial)
    for b in range(7):
        n = int(lengths[b])
        one = emissions[b : b + 1, :n]
        ones = torch.ones(1, n, dtype=torch.bool)
        torch.testing.assert_close(logz[b], log_partition(one, ones, transitions, initial)[0])
        assert torch.equal(path[b, :n], viterbi(one, ones, transitions, initial)[0][0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pytorch_crf_oracle_same_likelihood_and_best_path(seed):
    batch, length, tags = 8, 12, 7
    emissions, mask, _, _, _ = random_problem(batch, length, tags, seed=seed, dtype=torch.float32)
    gold = torch.randint(0, tags, (batch, length), generator=torch.Generator().manual_seed(seed))
    ours = LinearChainCRF(tags)
    oracle = torchcrf.CRF(tags, batch_first=True)
    with torch.no_grad():
        ours.transitions.normal_(generator=torch.Generator().manual_seed(seed + 10))
        ours.initial.normal_(generator=torch.Generator().manual_seed(seed + 20))
        oracle.transitions.copy_(ours.transitions)
        oracle.start_transitions.copy_(ours.initial)
        oracle.end_transitions.zero_()  # Collobert et al.'s SLL has no end scores
    ll = ours.log_likelihood(emissions, gold, mask)
    expected = oracle(emissions, gold, mask, reduction="none")
    torch.testing.assert_close(ll, expected, rtol=1e-5, atol=1e-4)
    decoded = ours.decode(emissions, mask)
    for b, best in enumerate(oracle.decode(emissions, mask)):
        assert decoded[b, : len(best)].tolist() == best


# --- edges: scores of 1e3-1e4 and -inf transitions, against enumeration in float64 ---

def _enumerated_log_z_and_grads(emission, transitions, initial):
    """log Z of one sentence by enumeration, and its gradients by autograd through the enumeration."""
    inputs = [x.detach().clone().requires_grad_() for x in (emission, transitions, initial)]
    _, scores = enumerate_paths(*inputs)
    log_z = torch.logsumexp(scores, 0)
    return (log_z.detach(), *torch.autograd.grad(log_z, inputs, allow_unused=True, materialize_grads=True))


def _check_against_enumeration(emissions, mask, transitions, initial, lengths):
    inputs = [x.clone().requires_grad_() for x in (emissions, transitions, initial)]
    got = log_partition(inputs[0], mask, inputs[1], inputs[2])
    weights = torch.arange(1, len(lengths) + 1, dtype=got.dtype)  # each sentence's own upstream gradient
    grads = torch.autograd.grad((weights * got).sum(), inputs)
    want_tr = torch.zeros_like(transitions)
    want_init = torch.zeros_like(initial)
    for b in range(len(lengths)):
        n, w = int(lengths[b]), float(weights[b])
        log_z, g_em, g_tr, g_init = _enumerated_log_z_and_grads(emissions[b, :n], transitions, initial)
        torch.testing.assert_close(got[b].detach(), log_z, rtol=1e-12, atol=1e-9)
        torch.testing.assert_close(grads[0][b, :n], w * g_em, rtol=1e-9, atol=1e-12)
        assert (grads[0][b, n:] == 0).all()
        want_tr += w * g_tr
        want_init += w * g_init
    torch.testing.assert_close(grads[1], want_tr, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(grads[2], want_init, rtol=1e-9, atol=1e-12)
    for g in grads:
        assert torch.isfinite(g).all()
    return got.detach()


def test_issue_example_transitions_spanning_800_nats_is_exact():
    emissions = torch.tensor([[[1000.0, 0.0], [0.0, 1000.0]]], dtype=torch.float64)
    transitions = torch.tensor([[0.0, -800.0], [0.0, 0.0]], dtype=torch.float64)
    initial = torch.zeros(2, dtype=torch.float64)
    mask = torch.ones(1, 2, dtype=torch.bool)
    got = _check_against_enumeration(emissions, mask, transitions, initial, [2])
    assert got.item() == pytest.approx(1200.0, abs=1e-9)  # the scaled recursion alone gave 1291.60


@pytest.mark.parametrize("scale", [1e3, 3e3, 1e4])
def test_scores_of_thousands_of_nats_equal_enumeration(scale):
    emissions, mask, transitions, initial, lengths = random_problem(4, 5, 3, seed=11, scale=scale)
    _check_against_enumeration(emissions, mask, transitions, initial, lengths)


def test_minus_inf_transitions_are_structural_zeros():
    emissions, mask, transitions, initial, lengths = random_problem(5, 5, 4, seed=12)
    transitions[0, 1] = transitions[2, 2] = transitions[3, 0] = float("-inf")
    initial[3] = float("-inf")
    got = _check_against_enumeration(emissions, mask, transitions, initial, lengths)
    assert torch.isfinite(got).all()


def test_minus_inf_transitions_with_scores_of_thousands_of_nats():
    emissions, mask, transitions, initial, lengths = random_problem(4, 5, 3, seed=13, scale=2e3)
    transitions[1, 0] = transitions[0, 2] = float("-inf")
    _check_against_enumeration(emissions, mask, transitions, initial, lengths)


def test_long_sentence_with_confident_scores_equals_log_space_recursion():
    """200 words, a forbidden-transition structure and 1e3-nat scores: against an independent
    float64 log-space recursion written with torch.logsumexp."""
    gen = torch.Generator().manual_seed(14)
    length, tags = 200, 5
    emissions = torch.randn(2, length, tags, generator=gen, dtype=torch.float64) * 1e3
    transitions = torch.randn(tags, tags, generator=gen, dtype=torch.float64) * 300
    transitions[torch.rand(tags, tags, generator=gen) < 0.3] = float("-inf")
    transitions.fill_diagonal_(0.0)
    initial = torch.zeros(tags, dtype=torch.float64)
    mask = torch.ones(2, length, dtype=torch.bool)
    mask[1, 150:] = False
    got = log_partition(emissions, mask, transitions, initial)
    for b, n in enumerate([200, 150]):
        alpha = initial + emissions[b, 0]
        for t in range(1, n):
            alpha = torch.logsumexp(alpha.unsqueeze(1) + transitions, dim=0) + emissions[b, t]
        torch.testing.assert_close(got[b], torch.logsumexp(alpha, 0), rtol=1e-13, atol=1e-9)


def test_impossible_sentence_is_refused():
    emissions = torch.zeros(1, 2, 2, dtype=torch.float64)
    transitions = torch.full((2, 2), float("-inf"), dtype=torch.float64)
    with pytest.raises(ValueError, match="no tag path"):
        log_partition(emissions, torch.ones(1, 2, dtype=torch.bool), transitions, torch.zeros(2, dtype=torch.float64))


# --- argument checks: each error names the argument and its shape ---

def _crf_inputs(batch=2, length=3, tags=4):
    return (LinearChainCRF(tags), torch.zeros(batch, length, tags), torch.zeros(batch, length, dtype=torch.long),
            torch.ones(batch, length, dtype=torch.bool))


@pytest.mark.parametrize("bad,error,message", [
    (lambda e, t, m: (e[0], t, m), ValueError, r"emissions must have shape \[batch, length, num_tags=4\], got \(3, 4\)"),
    (lambda e, t, m: (e[..., :3], t, m), ValueError, r"emissions must have shape .*got \(2, 3, 3\)"),
    (lambda e, t, m: (e.long(), t, m), TypeError, "emissions must be a floating-point tensor, got torch.int64"),
    (lambda e, t, m: (e, t[:, :2], m), ValueError, r"tags must have shape \(2, 3\) .*got \(2, 2\)"),
    (lambda e, t, m: (e, t.float(), m), TypeError, "tags must be an integer tensor, got torch.float32"),
    (lambda e, t, m: (e, t + 4, m), ValueError, r"tags of shape \(2, 3\) must lie in \[0, 4\).*\[4, 4\]"),
    (lambda e, t, m: (e, t, m[:1]), ValueError, r"mask must have shape \(2, 3\) .*got \(1, 3\)"),
    (lambda e, t, m: (e, t, m.long()), TypeError, "mask must be a bool tensor, got torch.int64"),
    (lambda e, t, m: (e, t, torch.tensor([[True, True, True], [False, False, False]])), ValueError,
     r"mask of shape \(2, 3\): the first word of every sentence must be unmasked .*\[1\]"),
    (lambda e, t, m: (e, t, torch.tensor([[True, True, True], [False, True, True]])), ValueError,
     r"first word of every sentence must be unmasked"),
    (lambda e, t, m: (e, t, torch.tensor([[True, False, True], [True, True, False]])), ValueError,
     r"mask of shape \(2, 3\) must be left-aligned .*\[0\]"),
])
def test_log_likelihood_refuses_bad_arguments_by_name(bad, error, message):
    crf, emissions, tags, mask = _crf_inputs()
    args = bad(emissions, tags, mask)
    with pytest.raises(error, match=message):
        crf.log_likelihood(*args)


def test_decode_checks_emissions_and_mask_and_defaults_to_no_padding():
    crf, emissions, _, mask = _crf_inputs()
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 3\)"):
        crf.decode(emissions, mask[:, :2])
    with pytest.raises(ValueError, match="emissions must have shape"):
        crf.decode(emissions.unsqueeze(0), mask)
    emissions = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(crf.decode(emissions), crf.decode(emissions, mask))
    tags = crf.decode(emissions)
    torch.testing.assert_close(crf.log_likelihood(emissions, tags), crf.log_likelihood(emissions, tags, mask))


def test_padding_tags_may_hold_any_value():
    crf, emissions, tags, _ = _crf_inputs()
    mask = torch.tensor([[True, True, True], [True, False, False]])
    tags[1, 1:] = -1  # a common padding value: ignored, not refused
    assert torch.isfinite(crf.log_likelihood(emissions, tags, mask)).all()


def test_the_recursions_run_on_one_cpu_thread_and_leave_the_thread_count_as_it_was(monkeypatch):
    # Viterbi and forward-backward run their loops on one CPU thread and must give the setting back
    from dlgm.crf import linear_chain

    seen, matmul = [], torch.Tensor.__matmul__
    monkeypatch.setattr(torch.Tensor, "__matmul__", lambda a, b: seen.append(torch.get_num_threads()) or matmul(a, b))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        crf = LinearChainCRF(4)
        emissions = torch.randn(3, 5, 4, requires_grad=True)
        paths = crf.decode(emissions, torch.ones(3, 5, dtype=torch.bool))
        assert paths.shape == (3, 5) and torch.get_num_threads() == 2
        crf.log_likelihood(emissions, paths).sum().backward()
        assert torch.get_num_threads() == 2 and emissions.grad is not None
        assert seen and set(seen) == {1}  # every product of the forward and backward recursions
        with pytest.raises(RuntimeError):  # given back on the way out of an error too (a mask of the wrong length)
            linear_chain.viterbi(emissions, torch.ones(3, 4, dtype=torch.bool), crf.transitions, crf.initial)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_decode_breaks_ties_as_pytorch_crf_does():
    # integer scores in {-1, 0, 1}: most sentences have several best paths; both pick the first
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        emissions = torch.randint(-1, 2, (6, 8, 4), generator=g).float()
        lengths = torch.randint(1, 9, (6,), generator=g)
        lengths[0] = 8
        mask = torch.arange(8)[None] < lengths[:, None]
        ours, oracle = LinearChainCRF(4), torchcrf.CRF(4, batch_first=True)
        with torch.no_grad():
            ours.transitions.copy_(torch.randint(-1, 2, (4, 4), generator=g).float())
            ours.initial.copy_(torch.randint(-1, 2, (4,), generator=g).float())
            oracle.transitions.copy_(ours.transitions)
            oracle.start_transitions.copy_(ours.initial)
            oracle.end_transitions.zero_()
            decoded = ours.decode(emissions, mask)
            for b, best in enumerate(oracle.decode(emissions, mask)):
                assert decoded[b, : len(best)].tolist() == best, (seed, b)
