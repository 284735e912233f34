"""The label units of the authors' DBM code (dbm_mf.m, rbm_l2.m) against exact answers: energy and
free energies by enumeration of every (v, h, y), AIS and RAISE with the labels summed out or
sampled, mean-field bounds, the Gibbs sweep, the gradient statistics, the labelled CD step of the
top pretraining RBM, and the commands end to end."""
import math

import pytest
import torch

from dlgm.boltzmann.ais import ais, log_partition_given_v, schedule
from dlgm.boltzmann.dbm import DBM, chain_statistics, dbm_from_rbms, dbm_statistics, random_chains
from dlgm.boltzmann.labels import categorical, one_hot
from dlgm.boltzmann.raise_ import raise_log_prob
from dlgm.testing.boltzmann_enumeration import all_binary_states
from dlgm.testing.dbm_enumeration import dbm_log_partition, dbm_log_prob, dbm_model_statistics
from tiny_boltzmann import bernoulli_uniforms, random_dbm


def gen(seed):
    return torch.Generator().manual_seed(seed)


def every_state(dbm):
    """Every joint state (v, h1, ..., hL, y) of ``dbm`` as a state list, y one-hot."""
    bits = all_binary_states(sum(dbm.sizes))
    bits = bits.repeat_interleave(dbm.n_labels, 0)
    x, start = [], 0
    for n in dbm.sizes:
        x.append(bits[:, start : start + n])
        start += n
    x.append(torch.eye(dbm.n_labels, dtype=torch.float64).repeat(2 ** sum(dbm.sizes), 1))
    return x


def codes(states):
    """One integer per row identifying the joint value of the given layers."""
    flat = torch.cat(states, 1)
    return (flat * 2 ** torch.arange(flat.shape[1], dtype=torch.float64)).sum(1).long()


def grouped_logsumexp(values, keys):
    """{key: log sum exp of the values with that key}."""
    return {int(k): torch.logsumexp(values[keys == k], 0) for k in keys.unique()}


# -- energy and free energies -------------------------------------------------------------------
def test_energy_has_the_label_terms():
    dbm = random_dbm([3, 2, 2], seed=0, n_labels=3)
    g = gen(1)
    x = [torch.randint(0, 2, (5, n), generator=g).double() for n in dbm.sizes]
    x.append(one_hot(torch.randint(0, 3, (5,), generator=g), 3, torch.float64))
    w0, w1 = dbm.weights
    b0, b1, b2 = dbm.biases
    U, c = dbm.label_weights, dbm.label_bias
    by_hand = -(x[0] @ b0 + x[1] @ b1 + x[2] @ b2 + x[3] @ c + ((x[0] @ w0) * x[1]).sum(1)
                + ((x[1] @ w1) * x[2]).sum(1) + ((x[3] @ U) * x[2]).sum(1))
    assert torch.allclose(dbm.energy(x), by_hand)
    assert dbm.n_layers == 2 and dbm.n_states == 4 and dbm.label_layer == 3
    assert sorted(dbm.params()) == ["U", "W0", "W1", "b0", "b1", "b2", "c"]


@pytest.mark.parametrize("sizes", [[3, 2, 2], [2, 2, 1, 2]])
def test_free_energies_with_the_labels_summed_out_match_enumeration(sizes):
    """Both parities summed out: y is odd for 2 hidden layers (summed by log-sum-exp in the even
    free energy), even for 3 (summed in the odd one); log Z is the same by every route."""
    dbm = random_dbm(sizes, seed=2, n_labels=3)
    x = every_state(dbm)
    minus_e = -dbm.energy(x)
    log_z = torch.logsumexp(minus_e, 0)
    for kept in (0, 1):
        layers = range(kept, dbm.n_states, 2)
        keys = codes([x[l] for l in layers])
        exact = grouped_logsumexp(minus_e, keys)
        free = dbm.marginal_log_prob_unnormalised(x, kept)
        for k, value in exact.items():
            assert torch.allclose(free[keys == k], value.expand(int((keys == k).sum())), atol=1e-10)
        firsts = torch.tensor([int(torch.nonzero(keys == k)[0]) for k in exact])
        assert float(torch.logsumexp(free[firsts], 0)) == pytest.approx(float(log_z), abs=1e-10)
    assert float(dbm_log_partition(dbm)) == pytest.approx(float(log_z), abs=1e-10)
    v_keys = codes([x[0]])
    marginal = grouped_logsumexp(minus_e, v_keys)
    v = all_binary_states(sizes[0])
    expected = torch.stack([marginal[int(k)] for k in codes([v])]) - log_z
    assert torch.allclose(dbm_log_prob(dbm, v), expected, atol=1e-10)


def test_a_model_without_labels_has_no_label_state():
    dbm = DBM([3, 2, 2])
    assert dbm.n_states == 3 and dbm.label_layer is None and dbm.state_sizes == [3, 2, 2]
    assert sorted(dbm.state_dict()) == ["biases.0", "biases.1", "biases.2", "weights.0", "weights.1"]
    with pytest.raises(ValueError, match="label units"):
        dbm.mean_field(torch.zeros(1, 3), 1, labels=torch.eye(2)[:1])
    with pytest.raises(ValueError, match="at least 2 classes"):
        DBM([3, 2], n_labels=1)


# -- AIS, per-image AIS and RAISE ------------------------------------------------------------------
@pytest.mark.parametrize("sizes,seed", [([8, 6, 4], 0), ([5, 4, 3, 3], 2)])
@pytest.mark.parametrize("parameterisation", ["even", "odd"])
def test_ais_log_z_matches_enumeration(sizes, seed, parameterisation):
    """The labels are summed out (log-sum-exp) in one parameterisation and sampled (uniform base)
    in the other, for either parity of the top layer."""
    dbm = random_dbm(sizes, seed, n_labels=4)
    exact = float(dbm_log_partition(dbm))
    bias = torch.randn(sizes[0], generator=gen(seed), dtype=torch.float64) * 0.5
    r = ais(dbm, bias, schedule(scale=0.1), n_runs=100, generator=gen(20 + seed), parameterisation=parameterisation)
    assert abs(r.log_z - exact) < 0.05
    assert r.log_z_low is not None and r.log_z_low <= exact <= r.log_z_high
    assert len(r.activity[-1][1]) == dbm.n_states
    assert r.activity[-1][1][-1] == pytest.approx(1 / 4)  # one label on in each run


def test_ais_with_zero_couplings_gives_the_base_model_exactly():
    """Every parameter 0 but the visible biases: log Z = sum softplus(b0) + log of the hidden and
    label state counts, which the base model must reproduce whether y is summed out or sampled."""
    dbm = DBM([4, 3, 2], n_labels=5, dtype=torch.float64)
    bias = torch.tensor([0.3, -0.2, 1.0, 0.0], dtype=torch.float64)
    dbm.biases[0].data.copy_(bias)
    exact = float(torch.nn.functional.softplus(bias).sum()) + 5 * math.log(2.0) + math.log(5.0)
    for parameterisation in ("even", "odd"):
        r = ais(dbm, bias, schedule(((1.0, 3),)), 4, gen(0), parameterisation)
        assert r.log_z == pytest.approx(exact, abs=1e-9)


@pytest.mark.parametrize("sizes,seed", [([8, 6, 4], 0), ([5, 4, 3, 3], 1), ([6, 4], 3)])
def test_per_image_ais_sums_the_labels_out(sizes, seed):
    """log Z(v) = log sum_{h, y} exp(-E(v, h, y)): the clamped path sums y out where it is odd and
    samples it where it is even (3 hidden layers; and an RBM with labels, whose p(v) is not exact)."""
    dbm = random_dbm(sizes, seed, scale=1.5, n_labels=3)
    v = all_binary_states(sizes[0])[torch.randperm(2 ** sizes[0], generator=gen(seed))[:6]]
    exact = dbm_log_prob(dbm, v) + dbm_log_partition(dbm)
    est = log_partition_given_v(dbm, v, schedule(((1.0, 2000),)), 200, gen(seed))
    assert torch.allclose(est, exact, atol=0.015), (est - exact)


def test_raise_with_labels_approaches_the_exact_log_prob_from_below():
    dbm = random_dbm([8, 6, 4], seed=5, scale=1.5, n_labels=3)
    v = all_binary_states(8)[torch.randperm(256, generator=gen(5))[:8]]
    exact = dbm_log_prob(dbm, v)
    r = raise_log_prob(dbm, v, torch.zeros(8, dtype=torch.float64), schedule(((1.0, 1000),)), 20, gen(6))
    assert float((r.log_prob - exact).abs().mean()) < 0.05
    assert float((r.log_prob - exact).mean()) < 0.01  # a stochastic lower bound: not above on average


# -- mean-field -----------------------------------------------------------------------------------
def test_mean_field_bounds_log_p_v_with_labels_free_and_log_p_v_y_with_labels_clamped():
    dbm = random_dbm([6, 4, 3], seed=4, n_labels=3)
    log_z = dbm_log_partition(dbm)
    v = all_binary_states(6)
    mu = dbm.mean_field(v, iterations=300)
    assert float(dbm.mean_field_residual(mu)) < 1e-9
    assert torch.allclose(mu[3].sum(1), torch.ones(64, dtype=torch.float64))
    bound = dbm.variational_bound(mu) - log_z
    exact = dbm_log_prob(dbm, v)
    assert torch.all(bound <= exact + 1e-10) and float((exact - bound).max()) > 1e-3
    # log p(v, y) by enumeration: every (v, h, y), grouped by (v, y)
    x = every_state(dbm)
    joint = grouped_logsumexp(-dbm.energy(x), codes([x[0], x[3]]))
    for k in range(3):
        y = one_hot(torch.full((64,), k), 3, torch.float64)
        mu_y = dbm.mean_field(v, iterations=300, labels=y)
        assert mu_y[3] is y and float(dbm.mean_field_residual(mu_y, clamped_labels=True)) < 1e-9
        exact_vy = torch.stack([joint[int(c)] for c in codes([v, y])]) - log_z
        assert torch.all(dbm.variational_bound(mu_y) - log_z <= exact_vy + 1e-10)
        # the clamped fixed point, written out (mf.m): h2 hears y through U
        h2 = torch.sigmoid(dbm.biases[2] + mu_y[1] @ dbm.weights[1] + y @ dbm.label_weights)
        assert torch.allclose(mu_y[2], h2, atol=1e-9)


# -- Gibbs sampling -------------------------------------------------------------------------------
def test_the_label_conditional_is_the_exact_one():
    """p(y | v, h1, h2) from enumeration of the joint equals the softmax the sweep samples from."""
    dbm = random_dbm([3, 2, 2], seed=6, n_labels=3)
    x = every_state(dbm)
    log_p = -dbm.energy(x)
    rest = codes(x[:3])
    conditional = torch.empty_like(log_p)
    for k in rest.unique():
        rows = rest == k
        conditional[rows] = torch.softmax(log_p[rows], 0)
    probs = dbm.activate_(3, dbm.layer_input(x, 3))
    assert torch.allclose((probs * x[3]).sum(1), conditional, atol=1e-12)


def test_categorical_draws_follow_the_probabilities():
    probs = torch.tensor([[0.1, 0.6, 0.3]], dtype=torch.float64).expand(20000, -1)
    draws = categorical(probs, gen(0))
    assert torch.equal(draws.sum(1), torch.ones(20000, dtype=torch.float64))
    assert torch.allclose(draws.mean(0), probs[0], atol=0.015)


def test_gibbs_chains_with_labels_sample_the_model_distribution():
    dbm = random_dbm([4, 3, 2], seed=3, scale=0.7, n_labels=3)
    exact = dbm_model_statistics(dbm)
    chains = random_chains(dbm, 4000, gen(0))
    assert torch.equal(chains[3].sum(1), torch.ones(4000, dtype=torch.float64))
    chains = dbm.gibbs(chains, 30, gen(1))
    assert torch.allclose(chains[3].mean(0), exact["c"], atol=0.04)
    assert torch.allclose(chains[3].t() @ chains[2] / 4000, exact["U"], atol=0.04)
    assert torch.allclose(chains[1].t() @ chains[2] / 4000, exact["W1"], atol=0.04)
    assert torch.allclose(chains[0].mean(0), exact["b0"], atol=0.04)


# -- the gradient statistics of joint training ----------------------------------------------------
@pytest.mark.parametrize("statistics", ["states", "probabilities"])
def test_dbm_statistics_of_the_labels_are_clamped_data_minus_chain_terms(statistics):
    """Written out for one batch and one chain state (dbm_mf.m): data terms from the mean-field
    posterior with y clamped to the batch's labels, model terms from the chains' sampled labels
    against their top-layer statistic."""
    dbm = random_dbm([5, 4, 3], seed=8, n_labels=3)
    v = all_binary_states(5)[::5]
    y = one_hot(torch.arange(len(v)) % 3, 3, torch.float64)
    start = random_chains(dbm, 6, gen(0))
    grads, chains, mu = dbm_statistics(dbm, v, start, mean_field_iterations=30, gibbs_steps=2, generator=gen(1),
                                       model_statistics=statistics, labels=y)
    assert torch.equal(mu[3], y)
    assert all(torch.equal(a, b) for a, b in zip(chains, dbm.gibbs(start, 2, gen(1))))
    h1 = chains[1] if statistics == "states" else torch.sigmoid(dbm.biases[1] + chains[0] @ dbm.weights[0]
                                                                + chains[2] @ dbm.weights[1].t())
    h2 = chains[2] if statistics == "states" else torch.sigmoid(dbm.biases[2] + h1 @ dbm.weights[1]
                                                                + chains[3] @ dbm.label_weights)
    assert torch.allclose(grads["U"], y.t() @ mu[2] / len(v) - chains[3].t() @ h2 / 6, atol=1e-12)
    assert torch.allclose(grads["c"], y.mean(0) - chains[3].mean(0), atol=1e-12)
    assert torch.allclose(grads["W1"], mu[1].t() @ mu[2] / len(v) - h1.t() @ h2 / 6, atol=1e-12)
    with pytest.raises(ValueError, match="labels"):
        dbm_statistics(dbm, v, start, mean_field_iterations=1, gibbs_steps=1)


def test_label_gradients_approach_the_exact_gradient_of_log_p_v_y():
    """With W1 = 0 the clamped posterior p(h1, h2 | v, y) factorises, so mean-field is exact and
    many long chains must give the exact gradient of the mean log p(v, y) (autograd through the
    enumeration of every state)."""
    dbm = random_dbm([4, 3, 2], seed=9, scale=0.6, n_labels=3)
    dbm.weights[1].data.zero_()
    v = all_binary_states(4)[::2]
    y = one_hot(torch.arange(8) % 3, 3, torch.float64)
    x = every_state(dbm)
    keys = codes([x[0], x[3]])
    U, c = dbm.label_weights, dbm.label_bias
    with torch.enable_grad():
        U.requires_grad_(True)
        c.requires_grad_(True)
        minus_e = -dbm.energy(x)
        joint = torch.stack([torch.logsumexp(minus_e[keys == k], 0) for k in codes([v, y])])
        exact = torch.autograd.grad((joint - torch.logsumexp(minus_e, 0)).mean(), [U, c])
        U.requires_grad_(False)
        c.requires_grad_(False)
    g = gen(2)
    chains = dbm.gibbs(random_chains(dbm, 5000, g), 20, g)
    grads, _, _ = dbm_statistics(dbm, v, chains, mean_field_iterations=10, gibbs_steps=5, generator=g, labels=y)
    assert torch.allclose(grads["U"], exact[0], atol=0.03)
    assert torch.allclose(grads["c"], exact[1], atol=0.03)


def test_joint_training_with_labels_raises_the_exact_log_p_v_y():
    from dlgm.boltzmann.dbm_train import train_dbm

    g = gen(0)
    patterns = torch.tensor([[1, 1, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1], [1, 0, 1, 0, 1, 0]], dtype=torch.float64)
    classes = torch.randint(0, 3, (60,), generator=g)
    data, labels = patterns[classes], one_hot(classes, 3, torch.float64)
    dbm = random_dbm([6, 4, 3], seed=10, scale=0.1, n_labels=3)

    def mean_log_p_v_y():
        x = every_state(dbm)
        minus_e = -dbm.energy(x)
        joint = grouped_logsumexp(minus_e, codes([x[0], x[3]]))
        return float(torch.stack([joint[int(k)] for k in codes([data, labels])]).mean() - torch.logsumexp(minus_e, 0))

    before = mean_log_p_v_y()
    cfg = {"batch_size": 20, "n_chains": 50, "mean_field_iterations": 10, "gibbs_steps": 5, "lr": 0.1,
           "lr_decay": 1.0, "lr_min": 0.0, "momentum_initial": 0.5, "momentum_final": 0.5,
           "momentum_switch_epoch": 0, "weight_cost": 0.0, "binarize": False, "epochs": 150,
           "model_statistics": "probabilities", "sparsity": {"targets": [0.2], "cost": 0.001, "damping": 0.9}}
    _, chains = train_dbm(dbm, data, cfg, g, labels=labels)
    assert len(chains) == 4 and torch.equal(chains[3].sum(1), torch.ones(50, dtype=torch.float64))
    assert mean_log_p_v_y() > before + 2.5  # -5.7 at the start (measured: -2.2 after); -log 3 is the optimum
    with pytest.raises(ValueError, match="labels"):
        train_dbm(dbm, data, {**cfg, "epochs": 1}, g)


# -- the top pretraining RBM (rbm_l2.m) -----------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2])
def test_labelled_cd_step_is_the_hand_computation_with_the_same_draws(k):
    from dlgm.boltzmann.rbm import RBM, MomentumSGD, cd_epoch, rbm_params

    rbm = RBM(4, 3, 1.0, 2.0, init_std=0.5, generator=gen(0), dtype=torch.float64, n_labels=3)
    rbm.b_vis.data.copy_(torch.tensor([0.1, -0.3, 0.2, 0.0], dtype=torch.float64))
    rbm.b_hid.data.copy_(torch.tensor([0.2, -0.1, 0.3], dtype=torch.float64))
    rbm.label_bias.data.copy_(torch.tensor([0.5, -0.5, 0.1], dtype=torch.float64))
    W, U, b_v, b_h, c = (t.detach().clone() for t in (rbm.W, rbm.label_weights, rbm.b_vis, rbm.b_hid, rbm.label_bias))
    v = all_binary_states(4)[[1, 6, 9, 12, 15]]
    y = one_hot(torch.tensor([0, 2, 1, 1, 0]), 3, torch.float64)
    lr, momentum, cost = 0.1, 0.5, 0.01
    cd_epoch(rbm, MomentumSGD(rbm_params(rbm)), v, torch.arange(5)[None], lr=lr, momentum=momentum,
             weight_cost=cost, k=k, generator=gen(3), labels=y)

    g = gen(3)
    h_data = torch.sigmoid(v @ W + y @ U + b_h)
    h = (bernoulli_uniforms((5, 3), g) < h_data).double()
    for step in range(k):
        p_y = torch.softmax(c + h @ U.t(), 1)  # labels first, from the hidden sample that reconstructs v
        u = torch.rand(5, 1, generator=g, dtype=torch.float64)
        y_neg = one_hot((p_y.cumsum(1) < u).sum(1), 3, torch.float64)
        v_neg = (bernoulli_uniforms((5, 4), g) < torch.sigmoid(b_v + 2 * h @ W.t())).double()
        h_neg = torch.sigmoid(v_neg @ W + y_neg @ U + b_h)
        if step + 1 < k:
            h = (bernoulli_uniforms((5, 3), g) < h_neg).double()
    assert torch.allclose(rbm.label_weights, U + lr * ((y.t() @ h_data - y_neg.t() @ h_neg) / 5 - cost * U),
                          atol=1e-12)
    assert torch.allclose(rbm.label_bias, c + lr * (y - y_neg).mean(0), atol=1e-12)
    assert torch.allclose(rbm.W, W + lr * ((v.t() @ h_data - v_neg.t() @ h_neg) / 5 - cost * W), atol=1e-12)
    assert torch.allclose(rbm.b_hid, b_h + lr * (h_data - h_neg).mean(0), atol=1e-12)


def test_pretraining_with_labels_gives_the_top_rbm_label_units_to_the_dbm():
    from dlgm.boltzmann.dbm_train import pretrain_dbm
    from dlgm.boltzmann.rbm import RBM

    g = gen(0)
    classes = torch.randint(0, 3, (60,), generator=g)
    data = (torch.rand(60, 10, generator=g) < 0.2 + 0.2 * classes[:, None]).float()
    cfg = {"cd_k": 1, "batch_size": 20, "lr": 0.05, "momentum_initial": 0.5, "momentum_final": 0.9,
           "momentum_switch_epoch": 1, "weight_cost": 0.001, "init_std": 0.01, "binarize": True, "epochs": 2}
    plain, _ = pretrain_dbm(data, [10, 6, 4], [cfg, cfg], gen(1), 0)
    dbm, _ = pretrain_dbm(data, [10, 6, 4], [cfg, cfg], gen(1), 0, labels=one_hot(classes, 3))
    assert dbm.n_labels == 3 and plain.n_labels == 0
    assert torch.equal(dbm.weights[0], plain.weights[0])  # the bottom RBM never sees the labels
    assert not torch.equal(dbm.weights[1], plain.weights[1])
    assert dbm.label_weights.abs().max() > 0 and dbm.label_bias.abs().max() > 0
    r1, r2 = RBM(4, 3, generator=gen(2)), RBM(3, 2, generator=gen(3), n_labels=5)
    r2.label_bias.data.fill_(0.7)
    composed = dbm_from_rbms([r1, r2])
    assert torch.equal(composed.label_weights, r2.label_weights)
    assert torch.equal(composed.label_bias, r2.label_bias)


def test_test_features_leave_the_labels_free():
    from dlgm.boltzmann.dbm_finetune import posterior_features

    dbm = random_dbm([5, 4, 3], seed=11, n_labels=3)
    v = all_binary_states(5)[::3]
    (q2,) = posterior_features(dbm, v, 40)
    assert torch.allclose(q2, dbm.mean_field(v, 40)[2])
    assert chain_statistics(dbm, random_chains(dbm, 2, gen(0)), "states")[3].shape == (2, 3)


# -- saved models and the commands ----------------------------------------------------------------
def test_a_model_saved_without_labels_loads_and_gives_the_same_numbers(tmp_path):
    from dlgm.commands.dbm import _load_dbm, _save_dbm

    dbm = random_dbm([6, 4, 3], seed=12).float()
    path = tmp_path / "dbm.pt"
    torch.save({"sizes": [6, 4, 3], "state": dbm.state_dict()}, path)  # the format written before labels
    loaded, saved = _load_dbm(str(path), torch.device("cpu"))
    assert loaded.n_labels == 0 and "n_labels" not in saved
    x = random_chains(dbm, 5, gen(0))
    assert torch.equal(loaded.energy(x), dbm.energy(x))
    assert torch.equal(loaded.gibbs(x, 2, gen(1))[2], dbm.gibbs(x, 2, gen(1))[2])
    _save_dbm(loaded, str(tmp_path / "again.pt"))
    assert sorted(torch.load(tmp_path / "again.pt", weights_only=True)) == ["sizes", "state"]
    labelled = random_dbm([6, 4, 3], seed=12, n_labels=10).float()
    _save_dbm(labelled, str(tmp_path / "labelled.pt"))
    back, _ = _load_dbm(str(tmp_path / "labelled.pt"), torch.device("cpu"))
    assert back.n_labels == 10 and torch.equal(back.label_weights, labelled.label_weights)


def test_the_reference_dbm_still_loads():
    from pathlib import Path

    from dlgm.commands.dbm import _load_dbm

    path = Path(__file__).parents[1] / "reference" / "dbm" / "dbm2" / "seed0" / "dbm.pt"
    if not path.exists():
        pytest.skip("no reference dbm.pt in this checkout")
    import json

    dbm, saved = _load_dbm(str(path), torch.device("cpu"))
    labelled = json.loads((path.parent / "metrics.json").read_text())["config"].get("labels", False)
    assert dbm.n_labels == (10 if labelled else 0) and dbm.sizes == [784, 500, 1000]
    assert all(torch.equal(dbm.state_dict()[k], v) for k, v in saved["state"].items())


def test_the_commands_train_and_evaluate_a_labelled_dbm(tmp_path):
    from test_dbm_training import fake_mnist, images_of, run_dbm_commands

    train, test = fake_mnist(tmp_path, 100), fake_mnist(tmp_path, 40)
    record = run_dbm_commands(tmp_path, train, test, seed=3, labels=True)
    m = record["metrics"]
    assert all(math.isfinite(m[k]) for k in ("log_z", "test_logprob", "train_logprob", "test_logprob_estimate",
                                              "test_logprob_raise", "test_error"))
    saved = torch.load(tmp_path / "run3" / "dbm.pt", weights_only=True)
    assert saved["n_labels"] == 10 and saved["fantasy"].shape == (10, 784)
    dbm = DBM(saved["sizes"], n_labels=10, dtype=torch.float64)
    dbm.load_state_dict({k: v.double() for k, v in saved["state"].items()})
    # exact log Z: (h1, y) enumerated, v and h2 summed out
    h1 = all_binary_states(8).repeat_interleave(10, 0)
    y = torch.eye(10, dtype=torch.float64).repeat(256, 1)
    x = [torch.zeros(len(h1), 784, dtype=torch.float64), h1, torch.zeros(len(h1), 6, dtype=torch.float64), y]
    log_z = float(torch.logsumexp(dbm.marginal_log_prob_unnormalised(x, 1), 0))
    assert abs(m["log_z"] - log_z) < 3.0  # 25 temperatures, as for the unsupervised run
    # the bound on log p(v), labels summed out: exact log p*(v) by enumerating h2 (h1 and y summed out)
    v = images_of(test)
    h2 = all_binary_states(6)
    exact = torch.stack([torch.logsumexp(dbm.even_log_prob_unnormalised(
        [row.expand(64, -1), torch.zeros(64, 8, dtype=torch.float64), h2, torch.zeros(64, 10, dtype=torch.float64)]),
        0) for row in v]).mean().item()
    assert exact - 0.5 < m["test_logprob"] + m["log_z"] <= exact + 1e-6
