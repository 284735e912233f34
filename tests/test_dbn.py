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
from dlgm.dbn.updown import UpDownDBN, UpDownVelocity, gibbs_iterations, updown_epoch
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


@torch.no_grad()
def plain_updown_step(dbn, x, y, k, lr, generator):
    """The up-down step as it was before momentum and weight cost existed (HOT06 Appendix B), frozen here."""
    from dlgm.boltzmann.rbm import bernoulli
    n, top = x.shape[0], dbn.top
    wake = [x]
    for i in range(dbn.depth):
        wake.append(bernoulli(dbn.recognise(wake[-1], i), generator))
    pen = wake[-1]
    top_wake = top_neg = bernoulli(top.hidden_probs(pen, y), generator)
    for _ in range(k):
        pen_neg = bernoulli(top.visible_probs(top_neg), generator)
        lab_neg = top.label_probs(top_neg)
        top_neg = bernoulli(top.hidden_probs(pen_neg, lab_neg), generator)
    sleep = [None] * dbn.depth + [pen_neg]
    for i in reversed(range(dbn.depth)):
        probs = dbn.generate(sleep[i + 1], i)
        sleep[i] = bernoulli(probs, generator) if i else probs
    for i in range(dbn.depth):
        delta = dbn.generate(wake[i + 1], i).neg_().add_(wake[i])
        dbn.gen_W[i].addmm_(wake[i + 1].t(), delta, alpha=lr["generative"] / n)
        dbn.gen_b[i].add_(delta.mean(0), alpha=lr["generative"])
    r = lr["top"]
    top.rbm.W.addmm_(pen.t(), top_wake, alpha=r / n).addmm_(pen_neg.t(), top_neg, alpha=-r / n)
    top.U.addmm_(y.t(), top_wake, alpha=r / n).addmm_(lab_neg.t(), top_neg, alpha=-r / n)
    top.rbm.b_vis.add_((pen - pen_neg).mean(0), alpha=r)
    top.b_lab.add_((y - lab_neg).mean(0), alpha=r)
    top.rbm.b_hid.add_((top_wake - top_neg).mean(0), alpha=r)
    for i in range(dbn.depth):
        delta = dbn.recognise(sleep[i], i).neg_().add_(sleep[i + 1])
        dbn.rec_W[i].addmm_(sleep[i].t(), delta, alpha=lr["recognition"] / n)
        dbn.rec_b[i].add_(delta.mean(0), alpha=lr["recognition"])


LR = {"generative": 0.05, "recognition": 0.03, "top": 0.02}
GROUP = {"gen": "generative", "rec": "recognition", "top": "top"}  # parameter name prefix -> its rate


def test_up_down_without_momentum_or_weight_cost_is_the_plain_step_exactly():
    x, y = tiny_data()
    onehot = F.one_hot(y, 2).to(D)
    ours, plain = tiny_dbn(1), tiny_dbn(1)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for batch in (slice(0, 20), slice(20, 40), slice(40, 60)):
        ours.updown_step(x[batch], onehot[batch], 3, LR, g1)
        plain_updown_step(plain, x[batch], onehot[batch], 3, LR, g2)
    moved = [name for name, p in ours.named_parameters() if not torch.equal(p, tiny_dbn(1).state_dict()[name])]
    assert len(moved) == 13  # every parameter changed, and each exactly as the plain step changes it
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), plain.state_dict().values()))


def test_up_down_momentum_and_weight_cost_follow_the_velocity_formula():
    """Two steps: v = momentum v + lr (gradient - weight_cost W) (weights only), W += v; the gradient of
    each step is read off a plain step with rate 1 from the same parameters and generator state."""
    momentum, weight_cost = 0.9, 0.01
    x, y = tiny_data()
    onehot = F.one_hot(y, 2).to(D)
    dbn = tiny_dbn(2)
    velocity = UpDownVelocity(dbn, momentum, weight_cost)
    params = {name: p.detach().clone() for name, p in dbn.named_parameters()}
    v = {name: torch.zeros_like(p) for name, p in params.items()}
    g, g_manual = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    for batch in (slice(0, 20), slice(20, 40)):
        dbn.updown_step(x[batch], onehot[batch], 2, LR, g, velocity)
        probe = tiny_dbn(2)
        probe.load_state_dict(params)
        plain_updown_step(probe, x[batch], onehot[batch], 2, dict.fromkeys(LR, 1.0), g_manual)
        for name, p in probe.named_parameters():
            lr = LR[GROUP[name.split("_")[0].split(".")[0]]]
            cost = weight_cost * params[name] if params[name].dim() == 2 else 0.0
            v[name] = momentum * v[name] + lr * ((p - params[name]) - cost)
            params[name] = params[name] + v[name]
    for name, p in dbn.named_parameters():
        torch.testing.assert_close(p, params[name], rtol=0, atol=1e-12, msg=name)
        torch.testing.assert_close(velocity.velocities.velocity(name.replace(".", "_")), v[name], rtol=0, atol=1e-12)


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
    assert float((brightest_band == wanted).float().mean()) >= 0.6  # chance 0.1; seeds 0-4 gave 0.72-0.99


@pytest.mark.parametrize("mean_field", [True, False])
def test_labelled_cd1_statistics_average_to_their_enumerated_expectation(mean_field):
    """CD-1 of the associative memory: over the hidden sample (and, when sampled, the reconstruction)
    the statistics average to the sum over every hidden (and visible) state, weighted exactly."""
    top = random_top(3, 2, 3, seed=4)
    v = torch.tensor([[1.0, 0.0, 1.0]], dtype=D)
    y = torch.tensor([[0.0, 1.0]], dtype=D)
    replicas = 40000
    grads, _ = top.cd_statistics(v.repeat(replicas, 1), y.repeat(replicas, 1), 1, torch.Generator().manual_seed(0),
                                 mean_field_reconstruction=mean_field)
    hs, vs = all_binary_states(3).to(D), all_binary_states(3).to(D)
    p_h = top.hidden_probs(v, y)[0]
    expected = torch.zeros(3, 3, dtype=D)
    for h in hs:
        w_h = torch.prod(torch.where(h > 0, p_h, 1 - p_h))
        v_probs, y_neg = top.visible_probs(h[None])[0], top.label_probs(h[None])
        if mean_field:
            expected += w_h * torch.outer(v_probs, top.hidden_probs(v_probs[None], y_neg)[0])
        else:
            for v_neg in vs:
                w_v = torch.prod(torch.where(v_neg > 0, v_probs, 1 - v_probs))
                expected += w_h * w_v * torch.outer(v_neg, top.hidden_probs(v_neg[None], y_neg)[0])
    exact = torch.outer(v[0], p_h) - expected
    assert torch.allclose(grads["W"], exact, atol=0.01)
