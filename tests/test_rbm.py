"""The shared RBM core against exact answers from enumeration on tiny models."""
import itertools

import pytest
import torch

from dlgm.testing.boltzmann_enumeration import (
    all_binary_states,
    kl_divergence,
    rbm_log_likelihood,
    rbm_log_likelihood_gradient,
    rbm_log_partition,
    rbm_visible_log_probs,
)
from dlgm.boltzmann.rbm import RBM, MomentumSGD, cd_epoch, cd_statistics, rbm_params


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_rbm(n_vis, n_hid, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    rbm = RBM(n_vis, n_hid, init_std=scale, generator=g, dtype=torch.float64)
    with torch.no_grad():
        rbm.b_vis.copy_(torch.randn(n_vis, generator=g, dtype=torch.float64) * scale * 0.5)
        rbm.b_hid.copy_(torch.randn(n_hid, generator=g, dtype=torch.float64) * scale * 0.5)
    return rbm


def brute_log_partition(rbm):
    v = all_binary_states(rbm.n_visible)
    h = all_binary_states(rbm.n_hidden)
    neg_energy = (v @ rbm.b_vis)[:, None] + (h @ rbm.b_hid)[None, :] + v @ rbm.W @ h.t()
    return torch.logsumexp(neg_energy.flatten(), 0)


def test_all_binary_states_lists_each_vector_once():
    s = all_binary_states(5)
    assert s.shape == (32, 5)
    assert {tuple(r) for r in s.int().tolist()} == set(itertools.product((0, 1), repeat=5))


@pytest.mark.parametrize("n_vis,n_hid", [(6, 4), (4, 7)])  # both layers as the enumerated one
def test_log_partition_matches_joint_enumeration(n_vis, n_hid):
    rbm = tiny_rbm(n_vis, n_hid, seed=n_vis)
    with torch.no_grad():
        assert torch.allclose(rbm_log_partition(rbm), brute_log_partition(rbm), atol=1e-10)
        _, log_p = rbm_visible_log_probs(rbm)
        assert torch.allclose(log_p.exp().sum(), torch.tensor(1.0, dtype=torch.float64))


def test_conditionals_use_the_up_and_down_factors():
    rbm = tiny_rbm(5, 3)
    rbm.up_factor, rbm.down_factor = 2.0, 0.5
    v, h = all_binary_states(5)[7:9], all_binary_states(3)[3:5]
    with torch.no_grad():
        assert torch.allclose(rbm.hidden_probs(v), torch.sigmoid(2 * v @ rbm.W + rbm.b_hid))
        assert torch.allclose(rbm.visible_probs(h), torch.sigmoid(0.5 * h @ rbm.W.t() + rbm.b_vis))
        scaled = RBM(5, 3, 2.0, 0.5, scale_biases=True, dtype=torch.float64)
        scaled.load_state_dict(rbm.state_dict())
        assert torch.allclose(scaled.hidden_probs(v), torch.sigmoid(2 * v @ rbm.W + 2 * rbm.b_hid))
        assert torch.allclose(scaled.visible_probs(h), torch.sigmoid(0.5 * h @ rbm.W.t() + 0.5 * rbm.b_vis))


def test_exact_gradient_matches_finite_differences():
    rbm = tiny_rbm(5, 4, seed=3)
    data = all_binary_states(5)[[1, 6, 17, 30]]
    grad = rbm_log_likelihood_gradient(rbm, data)
    eps = 1e-6
    for name, (i, j) in [("W", (2, 1)), ("W", (4, 3))]:
        p = getattr(rbm, name)
        with torch.no_grad():
            p[i, j] += eps
            up = rbm_log_likelihood(rbm, data).mean()
            p[i, j] -= 2 * eps
            down = rbm_log_likelihood(rbm, data).mean()
            p[i, j] += eps
        assert abs((up - down) / (2 * eps) - grad[name][i, j]) < 1e-6


def _cd_gradient_error(rbm, data, k, replicas, seed):
    g = torch.Generator().manual_seed(seed)
    grads, _ = cd_statistics(rbm, data.repeat(replicas, 1), k, g)
    exact = rbm_log_likelihood_gradient(rbm, data)
    return float((grads["W"] - exact["W"]).norm() / exact["W"].norm())


def test_cd_k_gradient_approaches_exact_gradient_as_k_grows():
    rbm = tiny_rbm(10, 8, seed=1, scale=1.5)
    g = torch.Generator().manual_seed(5)
    data = (torch.rand(20, 10, generator=g, dtype=torch.float64) < 0.3).double()
    errors = [_cd_gradient_error(rbm, data, k, replicas=4000, seed=k) for k in (1, 5, 100)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.05  # left: Monte Carlo noise of 80,000 chains


def test_pcd_chain_keeps_its_own_size_and_is_binary():
    rbm = tiny_rbm(6, 5)
    data = all_binary_states(6)[:10]
    chain = all_binary_states(6)[20:23]
    grads, new_chain = cd_statistics(rbm, data, 2, torch.Generator().manual_seed(0), chain=chain)
    assert new_chain.shape == chain.shape and set(new_chain.unique().tolist()) <= {0.0, 1.0}
    assert grads["W"].shape == (6, 5)


def test_momentum_update_follows_its_formula():
    p = {"W": torch.ones(2, 2), "b": torch.ones(2)}
    sgd = MomentumSGD(p)
    g = {"W": torch.full((2, 2), 2.0), "b": torch.full((2,), 2.0)}
    sgd.step(p, g, lr=0.1, momentum=0.5, weight_cost=0.01)  # v = 0.1*(2 - 0.01*1) ; b: no decay
    assert torch.allclose(p["W"], torch.full((2, 2), 1 + 0.199))
    assert torch.allclose(p["b"], torch.full((2,), 1.2))
    sgd.step(p, g, lr=0.1, momentum=0.5, weight_cost=0.0)
    assert torch.allclose(p["W"], torch.full((2, 2), 1.199 + 0.5 * 0.199 + 0.2))
    assert set(sgd.state_dict()) == {"v_W", "v_b"}


def test_cd1_training_on_samples_of_a_known_rbm_lowers_the_exact_kl():
    teacher = tiny_rbm(10, 6, seed=11, scale=2.0)
    states, log_p = rbm_visible_log_probs(teacher)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        data = states[torch.multinomial(log_p.exp(), 5000, replacement=True, generator=g)]
    student = RBM(10, 8, generator=g, dtype=torch.float64)
    sgd = MomentumSGD(rbm_params(student))
    with torch.no_grad():
        before = kl_divergence(log_p, rbm_visible_log_probs(student)[1])
        for epoch in range(15):
            batches = torch.randperm(5000, generator=g).view(-1, 50)
            cd_epoch(student, sgd, data, batches, lr=0.1, momentum=0.5, weight_cost=0.0, k=1, generator=g)
        after = kl_divergence(log_p, rbm_visible_log_probs(student)[1])
    assert after < 0.5 * before, (before, after)


@pytest.mark.parametrize("k, up, down, mfr, scaled", [(1, 1.0, 1.0, False, False), (3, 2.0, 1.0, True, False),
                                                      (2, 1.0, 2.0, False, False), (2, 2.0, 1.0, False, True),
                                                      (1, 1.0, 2.0, True, True)])
def test_fast_cd_epoch_is_cd_statistics_then_a_momentum_step(k, up, down, mfr, scaled):
    """cd_epoch (buffers, in-place sampling, statistics accumulated in the velocity) makes exactly the
    updates of cd_statistics + MomentumSGD.step, drawing the same random numbers in the same order."""
    data = (torch.rand(40, 7, generator=torch.Generator().manual_seed(1)) < 0.4).double()
    batches = torch.randperm(40, generator=torch.Generator().manual_seed(2)).view(4, 10)
    models = []
    for fast in (True, False):
        rbm = RBM(7, 5, up, down, scale_biases=scaled, dtype=torch.float64)
        rbm.load_state_dict(tiny_rbm(7, 5, seed=3).state_dict())
        sgd = MomentumSGD(rbm_params(rbm))
        g = torch.Generator().manual_seed(4)
        for momentum in (0.5, 0.9):
            if fast:
                err = cd_epoch(rbm, sgd, data, batches, lr=0.3, momentum=momentum, weight_cost=0.01, k=k,
                               generator=g, mean_field_reconstruction=mfr)
            else:
                for idx in batches:
                    grads, _ = cd_statistics(rbm, data[idx], k, g, mean_field_reconstruction=mfr)
                    sgd.step(rbm_params(rbm), grads, 0.3, momentum, 0.01)
        models.append(rbm)
    for name in ("W", "b_vis", "b_hid"):
        torch.testing.assert_close(getattr(models[0], name), getattr(models[1], name), rtol=1e-12, atol=1e-12)
    assert 0 < float(err) < 7


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bernoulli_compares_each_unit_with_its_16_bit_uniform(dtype):
    from dlgm.boltzmann.rbm import bernoulli
    from tiny_boltzmann import bernoulli_uniforms

    p = torch.rand(7, 13, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    p[0], p[1] = 0.0, 1.0  # structural zeros and ones stay exact
    p = p.to(dtype)
    expected = (bernoulli_uniforms((7, 13), torch.Generator().manual_seed(2)) < p.double()).to(dtype)
    sample = bernoulli(p, torch.Generator().manual_seed(2))
    assert sample.dtype == dtype and torch.equal(sample, expected)
    in_place = p.clone()
    assert bernoulli(in_place, torch.Generator().manual_seed(2), out=in_place) is in_place
    assert torch.equal(in_place, expected)
    with_grad = p.clone().requires_grad_()  # probabilities from parameters outside no_grad: a plain sample
    for out in (None, torch.empty_like(p)):
        drawn = bernoulli(with_grad, torch.Generator().manual_seed(2), out=out)
        assert not drawn.requires_grad and torch.equal(drawn, expected)
    many = bernoulli(torch.tensor([0.0, 1.0, 0.3], dtype=dtype).expand(200_000, 3), torch.Generator().manual_seed(3))
    assert many[:, 0].sum() == 0 and many[:, 1].sum() == 200_000
    assert abs(float(many[:, 2].mean()) - 0.3) < 5 * (0.21 / 200_000) ** 0.5
