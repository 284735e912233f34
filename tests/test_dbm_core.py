"""DBM energy, Gibbs sampling, mean-field and PCD statistics against exact enumeration."""
import pytest
import torch

from dlgm.boltzmann.dbm import chain_statistics, dbm_from_rbms, dbm_statistics, pretraining_factors, random_chains
from dlgm.testing.dbm_enumeration import (
    dbm_log_partition,
    dbm_log_prob,
    dbm_model_statistics,
    dbm_posterior_statistics,
)
from dlgm.testing.boltzmann_enumeration import all_binary_states
from dlgm.boltzmann.rbm import RBM
from tiny_boltzmann import random_dbm


def brute_force(dbm):
    """All joint states of every layer and their exact log-probabilities."""
    bits = all_binary_states(sum(dbm.sizes))
    x, start = [], 0
    for n in dbm.sizes:
        x.append(bits[:, start : start + n])
        start += n
    log_p = -dbm.energy(x)
    return x, log_p - torch.logsumexp(log_p, 0)


def test_energy_matches_the_written_out_formula():
    dbm = random_dbm([3, 2, 2], seed=0)
    g = torch.Generator().manual_seed(1)
    x = [torch.randint(0, 2, (4, n), generator=g).double() for n in dbm.sizes]
    w0, w1 = dbm.weights
    b0, b1, b2 = dbm.biases
    by_hand = -(x[0] @ b0 + x[1] @ b1 + x[2] @ b2 + ((x[0] @ w0) * x[1]).sum(1) + ((x[1] @ w1) * x[2]).sum(1))
    assert torch.allclose(dbm.energy(x), by_hand)


@pytest.mark.parametrize("sizes", [[4, 3, 2], [3, 3, 2, 2]])
def test_log_partition_and_log_prob_match_brute_force(sizes):
    dbm = random_dbm(sizes, seed=1)
    x, log_p = brute_force(dbm)
    assert float(dbm_log_partition(dbm)) == pytest.approx(float(torch.logsumexp(-dbm.energy(x), 0)), abs=1e-10)
    v = all_binary_states(sizes[0])
    codes = (x[0] * 2 ** torch.arange(sizes[0] - 1, -1, -1).double()).sum(1).long()
    marginal = torch.stack([torch.logsumexp(log_p[codes == i], 0) for i in range(2 ** sizes[0])])
    assert torch.allclose(dbm_log_prob(dbm, v), marginal, atol=1e-10)


def test_exact_model_statistics_match_brute_force():
    dbm = random_dbm([4, 3, 2], seed=2)
    x, log_p = brute_force(dbm)
    p = log_p.exp()
    stats = dbm_model_statistics(dbm)
    assert torch.allclose(stats["W0"], (x[0] * p[:, None]).t() @ x[1], atol=1e-12)
    assert torch.allclose(stats["W1"], (x[1] * p[:, None]).t() @ x[2], atol=1e-12)
    assert torch.allclose(stats["b2"], p @ x[2], atol=1e-12)


def test_gibbs_chains_sample_the_model_distribution():
    dbm = random_dbm([4, 3, 2], seed=3, scale=0.7)
    exact = dbm_model_statistics(dbm)
    g = torch.Generator().manual_seed(0)
    chains = dbm.gibbs(random_chains(dbm, 4000, g), 30, g)
    assert torch.allclose(chains[0].mean(0), exact["b0"], atol=0.04)
    assert torch.allclose(chains[0].t() @ chains[1] / 4000, exact["W0"], atol=0.04)
    assert torch.allclose(chains[1].t() @ chains[2] / 4000, exact["W1"], atol=0.04)


@pytest.mark.parametrize("sizes", [[8, 6, 4], [6, 5, 4, 3]])
def test_mean_field_converges_to_a_fixed_point_and_bounds_log_prob(sizes):
    dbm = random_dbm(sizes, seed=4)
    v = all_binary_states(sizes[0])[::7]
    mu = dbm.mean_field(v, iterations=200)
    assert float(dbm.mean_field_residual(mu)) < 1e-9
    bound = dbm.variational_bound(mu) - dbm_log_partition(dbm)
    exact = dbm_log_prob(dbm, v)
    assert torch.all(bound <= exact + 1e-10)
    assert float((exact - bound).max()) > 1e-3  # with coupled layers the bound is not tight


def test_bound_is_tight_when_the_posterior_factorises():
    dbm = random_dbm([8, 6, 4], seed=5)
    with torch.no_grad():
        dbm.weights[1].zero_()  # h2 independent of h1: p(h1, h2 | v) is a product
    v = all_binary_states(8)[::5]
    mu = dbm.mean_field(v, iterations=5)
    bound = dbm.variational_bound(mu) - dbm_log_partition(dbm)
    assert torch.allclose(bound, dbm_log_prob(dbm, v), atol=1e-10)


def test_pcd_statistics_approach_the_exact_gradient():
    """With a factorising posterior mean-field is exact, so many long chains must give the exact
    log-likelihood gradient <data> - <model>."""
    dbm = random_dbm([6, 4, 3], seed=6, scale=0.6)
    with torch.no_grad():
        dbm.weights[1].zero_()
    v = all_binary_states(6)[::3]
    exact_model = dbm_model_statistics(dbm)
    exact_data = dbm_posterior_statistics(dbm, v)
    g = torch.Generator().manual_seed(1)
    chains = dbm.gibbs(random_chains(dbm, 5000, g), 20, g)
    grads, _, _ = dbm_statistics(dbm, v, chains, mean_field_iterations=10, gibbs_steps=5, generator=g)
    for key in ("W0", "b0", "b1"):
        assert torch.allclose(grads[key], exact_data[key] - exact_model[key], atol=0.04), key


def test_mean_field_data_statistics_are_exact_when_the_posterior_factorises():
    dbm = random_dbm([6, 4, 3], seed=7)
    with torch.no_grad():
        dbm.weights[1].zero_()
    v = all_binary_states(6)[::4]
    mu = dbm.mean_field(v, 10)
    exact = dbm_posterior_statistics(dbm, v)
    assert torch.allclose(mu[0].t() @ mu[1] / len(v), exact["W0"], atol=1e-10)


def test_pretraining_factors_double_the_missing_direction():
    assert pretraining_factors(2) == [(2.0, 1.0), (1.0, 2.0)]
    assert pretraining_factors(3) == [(2.0, 1.0), (2.0, 2.0), (1.0, 2.0)]


def test_dbm_from_rbms_copies_weights_and_biases():
    g = torch.Generator().manual_seed(0)
    r1, r2 = RBM(5, 4, 2.0, 1.0, init_std=1.0, generator=g), RBM(4, 3, 1.0, 2.0, init_std=1.0, generator=g)
    with torch.no_grad():
        r1.b_vis.fill_(0.3)
        r1.b_hid.fill_(-0.2)
        r2.b_hid.fill_(0.1)
        r2.b_vis.fill_(0.6)
    dbm = dbm_from_rbms([r1, r2])
    assert dbm.sizes == [5, 4, 3]
    assert torch.equal(dbm.weights[0], r1.W) and torch.equal(dbm.weights[1], r2.W)
    assert torch.equal(dbm.biases[0], r1.b_vis) and torch.equal(dbm.biases[2], r2.b_hid)
    assert torch.allclose(dbm.biases[1], (r1.b_hid + r2.b_vis) / 2)


def test_scaled_biases_compose_as_the_authors_sum_of_the_stored_biases():
    """With scale_biases the doubled sides' biases enter the RBMs' conditionals doubled, so the DBM
    takes those: v's bias as stored (the bottom RBM's down side is not doubled), h1's the sum of the
    two stored biases (the authors' dbm_mf.m), h2's as stored."""
    g = torch.Generator().manual_seed(0)
    r1 = RBM(5, 4, 2.0, 1.0, init_std=1.0, generator=g, scale_biases=True)
    r2 = RBM(4, 3, 1.0, 2.0, init_std=1.0, generator=g, scale_biases=True)
    with torch.no_grad():
        for p in (r1.b_vis, r1.b_hid, r2.b_vis, r2.b_hid):
            p.copy_(torch.randn(p.shape, generator=g))
    dbm = dbm_from_rbms([r1, r2])
    assert torch.equal(dbm.biases[0], r1.b_vis) and torch.equal(dbm.biases[2], r2.b_hid)
    torch.testing.assert_close(dbm.biases[1], r1.b_hid + r2.b_vis)


def test_probability_statistics_keep_the_exact_expectations_of_v_and_h1():
    """Over chains distributed as the model (all (v, h2) states weighted by their exact
    probabilities), the authors' probability statistics average to the exact E[v h1^T], E[h1], E[v]
    (h1 given the sampled v, h2 is a conditional expectation); the h2 terms use h2 given the h1
    probabilities, a mean-field step, and miss the exact E[h1 h2^T]."""
    dbm = random_dbm([8, 6, 4], seed=3, scale=2.0)
    bits = all_binary_states(12)
    chains = [bits[:, :8], torch.zeros(bits.shape[0], 6, dtype=torch.float64), bits[:, 8:]]
    p = torch.softmax(dbm.even_log_prob_unnormalised(chains), 0)
    x = chain_statistics(dbm, chains, "probabilities")
    exact = dbm_model_statistics(dbm)
    assert torch.equal(x[0], chains[0])
    assert torch.allclose((x[0] * p[:, None]).t() @ x[1], exact["W0"], atol=1e-12)
    for l in range(2):
        assert torch.allclose(p @ x[l], exact[f"b{l}"], atol=1e-12)
    assert (p @ x[2] - exact["b2"]).abs().max() > 1e-3
    assert ((x[1] * p[:, None]).t() @ x[2] - exact["W1"]).abs().max() > 1e-3
    assert chain_statistics(dbm, chains, "states") is chains
    with pytest.raises(ValueError, match="model_statistics"):
        chain_statistics(dbm, chains, "means")


@pytest.mark.parametrize("statistics", ["states", "probabilities"])
def test_joint_training_raises_the_exact_log_likelihood(statistics):
    """A few hundred PCD/mean-field updates on a tiny DBM must raise the exact mean log p(v)."""
    from dlgm.boltzmann.dbm_train import train_dbm

    g = torch.Generator().manual_seed(0)
    patterns = torch.tensor([[1, 1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1], [1, 0, 1, 0, 1, 0, 1, 0]],
                            dtype=torch.float64)
    data = patterns[torch.randint(0, 3, (60,), generator=g)]
    dbm = random_dbm([8, 6, 4], seed=8, scale=0.1)
    before = float(dbm_log_prob(dbm, data).mean())
    cfg = {"batch_size": 20, "n_chains": 50, "mean_field_iterations": 10, "gibbs_steps": 5, "lr": 0.05,
           "lr_decay": 1.0, "lr_min": 0.0, "momentum_initial": 0.5, "momentum_final": 0.5,
           "momentum_switch_epoch": 0, "weight_cost": 0.0, "binarize": False, "epochs": 60,
           "model_statistics": statistics, "sparsity": {"targets": [0.2], "cost": 0.0, "damping": 0.9}}
    train_dbm(dbm, data, cfg, g)
    after = float(dbm_log_prob(dbm, data).mean())
    assert after > before + 2.0, (before, after)  # log 3 = -1.10 is the optimum; random init ~ -5.5


def test_pretraining_passes_scale_biases_to_every_rbm(monkeypatch):
    from dlgm.boltzmann import dbm_train

    made = []

    def recording_rbm(*args, **kwargs):
        made.append(RBM(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(dbm_train, "RBM", recording_rbm)
    data = torch.rand(40, 6, generator=torch.Generator().manual_seed(0))
    cfg = {"cd_k": 1, "batch_size": 20, "lr": 0.05, "momentum_initial": 0.5, "momentum_final": 0.9,
           "momentum_switch_epoch": 1, "weight_cost": 0.001, "init_std": 0.01, "binarize": True, "epochs": 1}
    for scaled in (False, True):
        made.clear()
        dbm, _ = dbm_train.pretrain_dbm(data, [6, 4, 3], [{**cfg, "scale_biases": scaled}] * 2,
                                        torch.Generator().manual_seed(1), 0)
        assert [(r.hid_bias_factor, r.vis_bias_factor) for r in made] == ([(2.0, 1.0), (1.0, 2.0)] if scaled else
                                                                          [(1.0, 1.0), (1.0, 1.0)])
        torch.testing.assert_close(dbm.biases[1], (made[0].hid_bias_factor * made[0].b_hid
                                                   + made[1].vis_bias_factor * made[1].b_vis).detach() / 2)
