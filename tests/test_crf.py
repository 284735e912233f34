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
