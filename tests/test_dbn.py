"""DBN algorithms against exact answers on tiny, enumerable models."""
import pytest
import torch
import torch.nn.functional as F

from dlgm.testing.boltzmann_enumeration import all_binary_states
from dlgm.boltzmann.rbm import RBM
from dlgm.dbn.data import balanced_batches
from dlgm.dbn.finetune import DeepClassifier
from dlgm.dbn.greedy import greedy_classify, train_labelled_dbn, up_pass
from dlgm.dbn.labelled import LabelledRBM
from dlgm.dbn.updown import UpDownDBN, gibbs_iterations, updown_epoch
from dlgm.training import RunLoops

D = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def random_top(n_vis, n_lab, n_hid, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    top = LabelledRBM(n_vis, n_lab, n_hid, init_std=scale, generator=g, dtype=D)
    with torch.no_grad():
        for p in (top.rbm.b_vis, top.rbm.b_hid, top.b_lab):
            p.copy_(torch.randn(p.shape, generator=g, dtype=D) * scale)
    return top


def brute_label_posterior(top, v):
    """p(y | v) by summing exp(-E(v, y, h)) over every hidden state h and every label y."""
    h = all_binary_states(top.rbm.n_hidden)
    ys = torch.eye(top.n_labels, dtype=D)
    r = top.rbm
    scores = torch.empty(v.shape[0], top.n_labels, dtype=D)
    for c in range(top.n_labels):
        neg_e = (v @ r.b_vis)[:, None] + top.b_lab[c] + (h @ r.b_hid)[None, :] + (v @ r.W + ys[c] @ top.U) @ h.t()
        scores[:, c] = torch.logsumexp(neg_e, 1)
    return torch.softmax(scores, 1)


def test_free_energy_classifier_is_the_exact_map_label():
    top = random_top(6, 4, 5, seed=2, scale=1.5)
    v = all_binary_states(6)
    with torch.no_grad():
        posterior = brute_label_posterior(top, v)
        assert torch.equal(top.classify(v), posterior.argmax(1))
        # and the free energies give the exact posterior, not just its arg max
        assert torch.allclose(torch.softmax(-top.label_free_energies(v), 1), posterior, atol=1e-12)
        one_hot = F.one_hot(torch.full((64,), 2), 4).to(D)
        assert torch.allclose(top.free_energy(v, one_hot), top.label_free_energies(v)[:, 2])


def test_balanced_batches_hold_each_class_equally_and_use_every_example():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (1234,), generator=g)
    batches = balanced_batches(labels, 100, g)
    assert batches.shape == (12, 100)
    counts = F.one_hot(labels[batches], 10).sum(1)
    assert bool((counts == 10).all())
    for c in range(10):  # no class repeats an example before it has used them all
        used = batches.flatten()[labels[batches.flatten()] == c]
        n_c = int((labels == c).sum())
        assert used.unique().numel() == min(n_c, used.numel())
    with pytest.raises(ValueError, match="divisible"):
        balanced_batches(labels, 105, g)


def test_gibbs_schedule_follows_hot06():
    schedule = [[0, 3], [100, 6], [200, 10]]
    assert [gibbs_iterations(schedule, e) for e in (0, 99, 100, 199, 200, 358)] == [3, 3, 6, 6, 10, 10]


def test_classifier_from_rbms_computes_the_up_pass():
    g = torch.Generator().manual_seed(0)
    rbms = [RBM(7, 5, init_std=1.0, generator=g), RBM(5, 4, init_std=1.0, generator=g)]
    net = DeepClassifier.from_rbms(rbms, 3, g)
    x = torch.rand(8, 7, generator=g)
    hidden = torch.sigmoid(net.layers[1](torch.sigmoid(net.layers[0](x))))
    assert torch.allclose(hidden, up_pass(rbms, x), atol=1e-6)


# -- up-down on a net small enough to enumerate --------------------------------------------------
def exact_log_joint(dbn: UpDownDBN, v: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log p(v, y) of the generative model: the top RBM's p(pen, y) then the directed layers down."""
    top = dbn.top
    n_pen = top.rbm.n_visible
    pen = all_binary_states(n_pen)
    labels = torch.eye(top.n_labels, dtype=D)
    pairs_pen = pen.repeat_interleave(top.n_labels, 0)
    pairs_lab = labels.repeat(pen.shape[0], 1)
    log_z = torch.logsumexp(-top.free_energy(pairs_pen, pairs_lab), 0)
    log_prior = -top.free_energy(pen[:, None, :].expand(-1, v.shape[0], -1).reshape(-1, n_pen),
                                 y.repeat(pen.shape[0], 1)).view(pen.shape[0], -1) - log_z  # [n_pen_states, B]
    # sum over the states of each directed layer, from the top down: log p(layer below | layer above)
    states = [all_binary_states(w.shape[1]) for w in dbn.rec_W]  # states of each hidden layer
    # log_msg[s, b]: log p(pen=s, y_b) then propagate down to the visible layer
    log_msg = log_prior
    for i in reversed(range(dbn.depth)):
        above = states[i]
        below = states[i - 1] if i > 0 else v
        probs = dbn.generate(above, i)  # [n_above, n_below_units]
        log_cond = below @ torch.log(probs).t() + (1 - below) @ torch.log1p(-probs).t()  # [n_below, n_above]
        if i > 0:
            log_msg = torch.logsumexp(log_cond[:, :, None] + log_msg[None, :, :], 1)  # [n_below_states, B]
        else:
            log_msg = torch.logsumexp(log_cond.t() + log_msg, 0)  # [B]
    return log_msg


def tiny_dbn(seed):
    g = torch.Generator().manual_seed(seed)
    rbms = [RBM(6, 4, init_std=0.5, generator=g, dtype=D), RBM(4, 3, init_std=0.5, generator=g, dtype=D)]
    return UpDownDBN(rbms, random_top(3, 2, 4, seed, scale=0.5))


def tiny_data():
    protos = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=D)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(2).repeat(100)
    flips = (torch.rand(200, 6, generator=g, dtype=D) < 0.1).to(D)
    return (protos[y] - flips).abs(), y


def test_exact_log_joint_sums_to_one():
    dbn = tiny_dbn(0)
    v = all_binary_states(6)
    with torch.no_grad():
        total = sum(exact_log_joint(dbn, v, F.one_hot(torch.full((64,), c), 2).to(D)).exp().sum() for c in range(2))
    assert abs(float(total) - 1.0) < 1e-10


def test_up_down_raises_the_exact_log_likelihood_of_the_training_data():
    x, y = tiny_data()
    onehot = F.one_hot(y, 2).to(D)
    gains = []
    for seed in range(4):
        dbn = tiny_dbn(seed)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            before = exact_log_joint(dbn, x, onehot).mean()
            for epoch in range(30):
                batches = torch.randperm(200, generator=g).view(-1, 20)
                updown_epoch(dbn, x, y, batches, k=3, lr={"generative": 0.05, "recognition": 0.05, "top": 0.05},
                             generator=g)
            after = exact_log_joint(dbn, x, onehot).mean()
        gains.append(float(after - before))
    assert min(gains) > 0, gains


def banded_digits(n, seed):
    """Synthetic 'digits': class c lights pixels 70c..70c+69 on top of 5% noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    x = (torch.rand(n, 784, generator=g) < 0.05).float()
    for c in range(10):
        x[labels == c, c * 70:(c + 1) * 70] = 1.0
    return x, labels


def test_greedy_dbn_then_up_down_classify_separable_data():
    x, y = banded_digits(1000, 0)
    xt, yt = banded_digits(500, 1)
    g = torch.Generator().manual_seed(0)
    cfg = {"epochs": 6, "batch_size": 50, "balanced_batches": True, "lr": 0.1, "weight_cost": 0.0002,
           "momentum_initial": 0.5, "momentum_final": 0.9, "momentum_switch_epoch": 2}
    rbms, top = train_labelled_dbn([784, 40, 30], 50, 10, x, y, cfg, g, RunLoops())
    assert float((greedy_classify(rbms, top, xt) != yt).float().mean()) < 0.05
    dbn = UpDownDBN(rbms, top)
    for _ in range(3):
        updown_epoch(dbn, x, y, balanced_batches(y, 50, g), 3, {"generative": 0.01, "recognition": 0.01, "top": 0.01}, g)
    assert float((dbn.classify(xt) != yt).float().mean()) < 0.05
    # label-clamped samples (HOT06 Fig. 8) light their own band once the chain has mixed
    wanted = torch.arange(10).repeat_interleave(10)
    samples = dbn.sample_digits(wanted, 1000, g)
    brightest_band = samples[:, :700].reshape(100, 10, 70).mean(2).argmax(1)
    assert float((brightest_band == wanted).float().mean()) >= 0.85
