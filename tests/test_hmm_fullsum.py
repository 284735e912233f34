"""Full-sum loss against enumeration of every path, finite differences, the occupancy form of its
gradient, padding, and long chains with confident scores."""
import itertools
import math

import pytest
import torch

from dlgm.hmm.chain import chain_forward_backward
from dlgm.hmm.fullsum import full_sum_nll
from dlgm.hmm.graph import linear_graph, phone_states

pytestmark = pytest.mark.usefixtures("one_thread")

K = 2  # states per phone
PHONES = 3
TRANSCRIPTS = [[0, 1], [2], [1, 1, 0]]
LENGTHS = [5, 4, 7]


def _problem(seed, frames=7, scale=2.0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(len(TRANSCRIPTS), frames, PHONES * K, generator=gen, dtype=dtype) * scale
    log_self = torch.log(torch.rand(PHONES * K, generator=gen, dtype=dtype) * 0.8 + 0.1)
    return scores, log_self


def _enumerate(scores, length, transcript, log_self):
    """Every path through the chain: start in state 0, stay or move on each frame, end in the last
    state and exit. Returns {path: score} over emission-state paths."""
    chain = phone_states(transcript, K)
    stay = log_self[chain]
    leave = torch.log1p(-log_self.exp())[chain]
    paths = {}
    for moves in itertools.product((0, 1), repeat=length - 1):
        if sum(moves) != len(chain) - 1:
            continue
        pos = [0]
        for m in moves:
            pos.append(pos[-1] + m)
        s = scores[0, chain[0]] + sum(scores[t, chain[p]] for t, p in enumerate(pos) if t > 0)
        s = s + sum(leave[pos[t]] if m else stay[pos[t]] for t, m in enumerate(moves)) + leave[len(chain) - 1]
        paths[tuple(chain[p] for p in pos)] = s
    return paths


@pytest.mark.parametrize("analytic", [True, False])
def test_loss_equals_minus_log_of_enumerated_sum_over_paths(analytic):
    scores, log_self = _problem(0)
    loss = full_sum_nll(scores, torch.tensor(LENGTHS), TRANSCRIPTS, log_self, K, analytic=analytic)
    for b, (length, transcript) in enumerate(zip(LENGTHS, TRANSCRIPTS)):
        paths = _enumerate(scores[b], length, transcript, log_self)
        assert len(paths) == math.comb(length - 1, len(transcript) * K - 1)
        want = -torch.logsumexp(torch.stack(list(paths.values())), 0)
        assert loss[b].item() == pytest.approx(want.item(), abs=1e-12)


def test_gradient_is_minus_the_enumerated_posterior_occupancy():
    scores, log_self = _problem(1)
    scores.requires_grad_()
    loss = full_sum_nll(scores, torch.tensor(LENGTHS), TRANSCRIPTS, log_self, K)
    (grad,) = torch.autograd.grad(loss.sum(), scores)
    for b, (length, transcript) in enumerate(zip(LENGTHS, TRANSCRIPTS)):
        paths = _enumerate(scores[b].detach(), length, transcript, log_self)
        total = torch.logsumexp(torch.stack(list(paths.values())), 0)
        occupancy = torch.zeros(scores.shape[1:], dtype=torch.float64)
        for path, s in paths.items():
            for t, e in enumerate(path):
                occupancy[t, e] += (s - total).exp()
        torch.testing.assert_close(grad[b], -occupancy, rtol=0, atol=1e-12)


@pytest.mark.parametrize("analytic", [True, False])
def test_gradient_equals_finite_differences(analytic):
    scores, log_self = _problem(2)
    inputs = (scores.requires_grad_(), log_self.requires_grad_())

    def loss(s, ls):
        return full_sum_nll(s, torch.tensor(LENGTHS), TRANSCRIPTS, ls, K, analytic=analytic)

    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_analytic_gradient_equals_autograd(dtype):
    scores, log_self = _problem(3, scale=5.0, dtype=dtype)
    grads = []
    for analytic in (True, False):
        inputs = [scores.clone().requires_grad_(), log_self.clone().requires_grad_()]
        loss = full_sum_nll(inputs[0], torch.tensor(LENGTHS), TRANSCRIPTS, inputs[1], K, analytic=analytic)
        weights = torch.tensor([1.0, -0.5, 2.0], dtype=dtype)
        grads.append(torch.autograd.grad((loss * weights).sum(), inputs))
    for a, b in zip(*grads):
        assert a.dtype == dtype
        torch.testing.assert_close(a, b, rtol=1e-10 if dtype == torch.float64 else 1e-6, atol=1e-12)


def test_occupancy_form_from_forward_backward():
    """d loss / d scores = -(chain state posteriors mapped to emission states); d loss / d log_self
    follows from the expected stay and move/exit counts."""
    scores, log_self = _problem(4)
    lengths = torch.tensor(LENGTHS)
    inputs = [scores.clone().requires_grad_(), log_self.clone().requires_grad_()]
    loss = full_sum_nll(inputs[0], lengths, TRANSCRIPTS, inputs[1], K)
    g_scores, g_self = torch.autograd.grad(loss.sum(), inputs)
    graph = linear_graph(TRANSCRIPTS, log_self, K)
    _, gamma, stay_n, leave_n = chain_forward_backward(graph.emissions(scores), graph.stay, graph.leave, graph.states, lengths)
    torch.testing.assert_close(g_scores, -graph.to_emission_space(gamma, PHONES * K), rtol=0, atol=1e-12)
    # stay = log p, leave = log(1 - p): d/d log p = n_stay - n_leave * p / (1 - p), summed per emission state
    p = log_self.exp()[graph.ids]
    per_chain_state = (stay_n - leave_n * p / (1 - p)) * graph.valid
    want = torch.zeros(PHONES * K, dtype=torch.float64).index_add_(0, graph.ids.flatten(), per_chain_state.flatten())
    torch.testing.assert_close(g_self, -want, rtol=1e-10, atol=1e-12)


def test_log_softmax_scores_give_occupancy_minus_model_expectation():
    logits, log_self = _problem(5)
    logits.requires_grad_()
    lengths = torch.tensor(LENGTHS)
    loss = full_sum_nll(logits.log_softmax(-1), lengths, TRANSCRIPTS, log_self, K)
    (grad,) = torch.autograd.grad(loss.sum(), logits)
    scores = logits.detach().log_softmax(-1).requires_grad_()
    (minus_occupancy,) = torch.autograd.grad(full_sum_nll(scores, lengths, TRANSCRIPTS, log_self, K).sum(), scores)
    inside = (torch.arange(logits.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(2)
    want = (minus_occupancy + logits.detach().softmax(-1)) * inside  # -(occupancy - softmax)
    torch.testing.assert_close(grad, want, rtol=0, atol=1e-12)
    assert (grad[~inside.expand_as(grad)] == 0).all()


@pytest.mark.parametrize("analytic", [True, False])
def test_padding_never_changes_a_loss_or_reaches_its_gradient(analytic):
    scores, log_self = _problem(6, frames=9)
    lengths = torch.tensor(LENGTHS)
    scores[0, 5:] = 1e4  # garbage past utterance 0's end
    scores[1, 4:] = float("-inf")
    inputs = scores.clone().requires_grad_()
    loss = full_sum_nll(inputs, lengths, TRANSCRIPTS, log_self, K, analytic=analytic)
    (grad,) = torch.autograd.grad(loss.sum(), inputs)
    for b, (length, transcript) in enumerate(zip(LENGTHS, TRANSCRIPTS)):
        alone = scores[b : b + 1, :length].clone().requires_grad_()
        one = full_sum_nll(alone, torch.tensor([length]), [transcript], log_self, K, analytic=analytic)
        assert loss[b].item() == one.item()
        (g_one,) = torch.autograd.grad(one.sum(), alone)
        torch.testing.assert_close(grad[b, :length], g_one[0], rtol=0, atol=1e-14)
        assert (grad[b, length:] == 0).all()


def test_long_chain_with_confident_scores_is_exact():
    """400 frames, a 30-state chain, scores of +-1000: against an independent float64 recursion."""
    gen = torch.Generator().manual_seed(7)
    phones = 10
    transcript = list(range(phones))
    scores = (torch.randn(1, 400, phones * 3, generator=gen, dtype=torch.float64) * 1000).requires_grad_()
    log_self = torch.full((phones * 3,), math.log(0.9), dtype=torch.float64)
    loss = full_sum_nll(scores, torch.tensor([400]), [transcript], log_self, 3)
    (grad,) = torch.autograd.grad(loss.sum(), scores)
    chain = phone_states(transcript, 3)
    stay, leave = math.log(0.9), math.log(0.1)
    trans = torch.full((30, 30), float("-inf"), dtype=torch.float64)
    trans[range(30), range(30)] = stay
    trans[range(29), range(1, 30)] = leave
    alpha = torch.full((30,), float("-inf"), dtype=torch.float64)
    alpha[0] = scores[0, 0, chain[0]].detach()
    for t in range(1, 400):
        alpha = torch.logsumexp(alpha.unsqueeze(1) + trans, 0) + scores[0, t, chain].detach()
    want = -(alpha[-1] + leave)
    assert loss.item() == pytest.approx(want.item(), rel=1e-14)
    assert torch.isfinite(grad).all()
    torch.testing.assert_close(grad.sum(-1), -torch.ones(1, 400, dtype=torch.float64))


def test_refusals_name_the_utterance():
    scores, log_self = _problem(8)
    with pytest.raises(ValueError, match="utterance 2: 5 frames cannot pass through the 6 states"):
        full_sum_nll(scores, torch.tensor([5, 4, 5]), TRANSCRIPTS, log_self, K)
    scores[1, :, 4:] = float("-inf")  # phone 2 (utterance 1's only phone) can never be emitted
    with pytest.raises(ValueError, match="utterance 1: every path .* -inf"):
        full_sum_nll(scores, torch.tensor(LENGTHS), TRANSCRIPTS, log_self, K)
    with pytest.raises(ValueError, match="transcripts: 2 given for a batch of 3"):
        full_sum_nll(scores, torch.tensor(LENGTHS), TRANSCRIPTS[:2], log_self, K)
    with pytest.raises(ValueError, match=r"log_self must have shape \(6,\)"):
        full_sum_nll(scores, torch.tensor(LENGTHS), TRANSCRIPTS, log_self[:4], K)
    with pytest.raises(ValueError, match="phone ids below 3"):
        full_sum_nll(scores, torch.tensor(LENGTHS), [[0], [3], [1]], log_self, K)
