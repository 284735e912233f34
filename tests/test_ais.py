"""AIS estimates of log Z against exact enumeration on tiny RBMs and DBMs."""
import math

import pytest
import torch

from dlgm.boltzmann.ais import ais, base_rate_bias, rbm_as_dbm, schedule, summarise
from dlgm.testing.dbm_enumeration import dbm_log_partition
from dlgm.testing.boltzmann_enumeration import all_binary_states, rbm_log_likelihood, rbm_log_partition
from dlgm.boltzmann.likelihood import mean_log_prob
from tiny_boltzmann import random_dbm, random_rbm


def test_schedule_follows_the_paper_segments():
    betas = schedule()
    assert len(betas) == 14_501 and betas[0] == 0 and betas[-1] == 1
    assert torch.all(betas[1:] > betas[:-1])
    assert int((betas <= 0.5).sum()) == 501 and int((betas > 0.9).sum()) == 10_000
    assert len(schedule(scale=0.1)) == 1 + 50 + 400 + 1000


def test_base_rate_bias_is_the_log_odds_of_the_smoothed_marginals():
    data = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    assert torch.allclose(torch.sigmoid(base_rate_bias(data, smoothing=0.0)), torch.tensor([0.75, 0.25]))
    assert torch.allclose(torch.sigmoid(base_rate_bias(data, smoothing=0.25)), torch.tensor([0.8, 0.4]))
    assert torch.isfinite(base_rate_bias(torch.zeros(3, 2))).all()


def test_summary_error_bars_use_the_standard_deviation_of_the_mean():
    lw = torch.log(torch.tensor([1.0, 2.0, 3.0, 6.0], dtype=torch.float64))
    r = summarise(lw, log_z_base=0.5, n_temperatures=10)
    sd = torch.tensor([1.0, 2.0, 3.0, 6.0]).std().item() / 2
    assert r.log_z == pytest.approx(0.5 + math.log(3.0))
    assert r.log_z_high == pytest.approx(0.5 + math.log(3.0 + 3 * sd))
    assert r.log_z_low is None  # 3 - 3 sd < 0: no finite lower bar
    r2 = summarise(torch.zeros(5, dtype=torch.float64), 1.0, 10)
    assert r2.log_z == r2.log_z_low == r2.log_z_high == pytest.approx(1.0)


def test_zero_temperature_steps_give_the_base_model_partition_function():
    rbm = random_rbm(5, 3, seed=3)
    with torch.no_grad():
        rbm.W.zero_()
        rbm.b_hid.zero_()
    bias = rbm.b_vis.detach().clone()
    r = ais(rbm_as_dbm(rbm), bias, schedule(((1.0, 7),)), n_runs=10, generator=torch.Generator().manual_seed(0))
    assert r.log_z == pytest.approx(float(rbm_log_partition(rbm).detach()), abs=1e-9)  # base model = target


@pytest.mark.parametrize("seed", [0])
def test_rbm_ais_matches_enumeration(seed):
    rbm = random_rbm(12, 8, seed)
    exact = float(rbm_log_partition(rbm).detach())
    v = all_binary_states(12)
    data = v[torch.multinomial(rbm_log_likelihood(rbm, v).exp(), 500, replacement=True,
                               generator=torch.Generator().manual_seed(seed))]
    r = ais(rbm_as_dbm(rbm), base_rate_bias(data), schedule(scale=0.1), n_runs=100,
            generator=torch.Generator().manual_seed(10 + seed))
    assert abs(r.log_z - exact) < 0.05
    assert r.log_z_low is not None and r.log_z_low <= exact <= r.log_z_high
    # the average test log-probability inherits the log Z error
    assert mean_log_prob(rbm_as_dbm(rbm), data, r.log_z, 1) == pytest.approx(
        float(rbm_log_likelihood(rbm, data).mean().detach()), abs=0.05)


@pytest.mark.parametrize("sizes,seed", [([8, 6, 4], 0), ([5, 4, 3, 3], 2)])
def test_dbm_ais_matches_enumeration(sizes, seed):
    dbm = random_dbm(sizes, seed)
    exact = float(dbm_log_partition(dbm))
    bias = torch.randn(sizes[0], generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 0.5
    r = ais(dbm, bias, schedule(scale=0.1), n_runs=100, generator=torch.Generator().manual_seed(20 + seed))
    assert abs(r.log_z - exact) < 0.05
    assert r.log_z_low is not None and r.log_z_low <= exact <= r.log_z_high


def test_float32_model_gives_the_same_estimate():
    dbm = random_dbm([8, 6, 4], seed=4)
    exact = float(dbm_log_partition(dbm))
    dbm32 = dbm.float()
    r = ais(dbm32, torch.zeros(8), schedule(scale=0.1), n_runs=100, generator=torch.Generator().manual_seed(4))
    assert abs(r.log_z - exact) < 0.05
