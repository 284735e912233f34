"""RAISE, the per-image DBM log-probability, the AIS diagnostics and guards, against exact
enumeration on tiny RBMs (12x8) and DBMs (8-6-4)."""
import math

import pytest
import torch

from dlgm.boltzmann.ais import (
    ais, base_rate_bias, effective_sample_size, log_partition_given_v, rbm_as_dbm, schedule)
from dlgm.boltzmann.ais_diagnostics import diagnose, log_z_lower_bounds
from dlgm.boltzmann.dbm import DBM
from dlgm.testing.dbm_enumeration import dbm_log_partition, dbm_log_prob
from dlgm.testing.boltzmann_enumeration import all_binary_states
from dlgm.boltzmann.raise_ import raise_log_prob
from tiny_boltzmann import random_dbm, random_rbm

pytestmark = pytest.mark.usefixtures("one_thread")
SEEDS = range(10)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def model(kind, seed, scale):
    return rbm_as_dbm(random_rbm(12, 8, seed, scale)) if kind == "rbm" else random_dbm([8, 6, 4], seed, scale)


def model_data(dbm, seed, n=20):
    """``n`` exact samples of v from the model, and their exact mean log-probability."""
    vs = all_binary_states(dbm.sizes[0])
    data = vs[torch.multinomial(exact_log_prob(dbm, vs).exp(), n, replacement=True, generator=gen(seed))]
    return data, float(exact_log_prob(dbm, data).mean())


def exact_log_prob(dbm, v):
    if dbm.n_layers == 1:  # h summed out in closed form: no per-row enumeration
        return dbm.even_log_prob_unnormalised([v, None]) - dbm_log_partition(dbm)
    return dbm_log_prob(dbm, v)


def test_constant_pixels_give_finite_base_rates_and_ais():
    data = (torch.rand(50, 12, generator=gen(0)) < 0.5).double()
    data[:, 0], data[:, 1] = 0.0, 1.0  # one pixel always off, one always on
    bias = base_rate_bias(data)
    assert torch.isfinite(bias).all()
    p = torch.sigmoid(bias)
    assert p[0] == pytest.approx(0.05 / 1.05) and p[1] == pytest.approx(1 / 1.05)  # mirror images
    assert torch.allclose(bias[2:], base_rate_bias(data[:, 2:]))  # the other pixels are untouched
    rbm = random_rbm(12, 8, seed=1)
    r = ais(rbm_as_dbm(rbm), bias, schedule(((1.0, 200),)), 500, gen(1))  # sd of log Z about 0.014
    assert math.isfinite(r.log_z) and abs(r.log_z - float(dbm_log_partition(rbm_as_dbm(rbm)))) < 0.05
    with pytest.raises(ValueError, match="constant"):
        base_rate_bias(data, smoothing=0.0)
    with pytest.raises(ValueError, match="base_bias"):
        ais(rbm_as_dbm(rbm), torch.full((12,), math.inf, dtype=torch.float64), schedule(((1.0, 2),)), 2)


def test_effective_sample_size():
    assert effective_sample_size(torch.zeros(7)) == pytest.approx(7.0)
    assert effective_sample_size(torch.tensor([0.0, -1000.0, -1000.0])) == pytest.approx(1.0)
    w = torch.tensor([1.0, 2.0, 3.0])
    assert effective_sample_size(w.log()) == pytest.approx(36 / 14)


@pytest.mark.parametrize("sizes,seed", [([8, 6, 4], 0), ([5, 4, 3, 3], 1)])
def test_per_image_dbm_log_prob_matches_enumeration(sizes, seed):
    dbm = random_dbm(sizes, seed, scale=2.0)
    v = all_binary_states(sizes[0])[torch.randperm(2 ** sizes[0], generator=gen(seed))[:6]]
    exact = dbm_log_prob(dbm, v) + dbm_log_partition(dbm)  # log Z(v) of each image
    est = log_partition_given_v(dbm, v, schedule(((1.0, 2000),)), 200, gen(seed))
    assert torch.allclose(est, exact, atol=0.015), (est - exact)


@pytest.mark.parametrize("sizes", [[12, 8], [8, 6, 4], [5, 4, 3, 3]])
def test_odd_parameterisation_matches_enumeration(sizes):
    dbm = random_dbm(sizes, seed=3, scale=1.5)
    bias = torch.randn(sizes[0], generator=gen(3), dtype=torch.float64) * 0.5
    r = ais(dbm, bias, schedule(((1.0, 500),)), 100, gen(4), parameterisation="odd")
    assert abs(r.log_z - float(dbm_log_partition(dbm))) < 0.05
    assert len(r.activity) == 5 and r.activity[-1][0] == 1.0 and len(r.activity[-1][1]) == len(sizes)


@pytest.mark.parametrize("kind", ["rbm", "dbm"])
def test_raise_errs_low_and_ais_high_on_short_schedules(kind):
    """10 seeds, peaked models (weight scale 3), 5 temperatures: RAISE lies below the exact mean
    test log-probability in at least 8 of 10 seeds (measured: 9/10 RBM, 10/10 DBM; with 10
    temperatures 7/10 and 10/10); AIS (exact log Z(v), estimated log Z) lies above it or within
    its 3-sigma bar in 10/10."""
    below = ais_ok = 0
    for seed in SEEDS:
        dbm = model(kind, seed, 3.0)
        data, exact = model_data(dbm, seed)
        bias, betas = base_rate_bias(data), schedule(((1.0, 5),))
        below += float(raise_log_prob(dbm, data, bias, betas, 10, gen(seed)).log_prob.mean()) < exact
        r = ais(dbm, bias, betas, 100, gen(100 + seed))
        mean_log_zv = float((exact_log_prob(dbm, data) + dbm_log_partition(dbm)).mean())
        ais_ok += mean_log_zv - (r.log_z_low if r.log_z_low is not None else -math.inf) >= exact
    assert below >= 8
    assert ais_ok == len(SEEDS)


@pytest.mark.parametrize("kind", ["rbm", "dbm"])
def test_raise_and_ais_converge_to_exact(kind):
    errors = {}
    for k in (10, 1000):
        raise_err = ais_err = 0.0
        for seed in range(3):
            dbm = model(kind, seed, 3.0)
            data, exact = model_data(dbm, seed)
            bias, betas = base_rate_bias(data), schedule(((1.0, k),))
            raise_err += abs(float(raise_log_prob(dbm, data, bias, betas, 10, gen(seed)).log_prob.mean()) - exact) / 3
            r = ais(dbm, bias, betas, 100, gen(10 + seed))
            ais_err += abs(r.log_z - float(dbm_log_partition(dbm))) / 3
        errors[k] = (raise_err, ais_err)
    assert errors[1000][0] < 0.05 and errors[1000][1] < 0.05, errors
    assert errors[1000][0] < errors[10][0] / 2, errors


def test_short_schedule_on_a_peaked_model_is_not_converged():
    rbm = rbm_as_dbm(random_rbm(20, 10, seed=5, scale=3.0))
    bias = torch.zeros(20, dtype=torch.float64)
    short = [ais(rbm, bias, schedule(((1.0, k),)), 20, gen(k)) for k in (2, 4)]
    d = diagnose(short, {}, tolerance=0.1, model="peaked rbm")
    assert d.verdict == "not converged" and not d.converged and d.reasons
    long = [ais(rbm, bias, schedule(((1.0, k),)), 100, gen(k)) for k in (1000, 2000)]
    d = diagnose(long, log_z_lower_bounds(rbm, (torch.rand(50, 20, generator=gen(0)) < 0.5).double()),
                 tolerance=0.1, model="peaked rbm")
    assert d.verdict == "converged", d.reasons
    assert d.as_dict()["curve"][-1]["temperatures"] == 2000 and 1 <= d.ess <= 100


def test_lower_bounds_are_below_exact_log_z():
    rbm = rbm_as_dbm(random_rbm(12, 8, seed=2, scale=2.0))
    all_v = all_binary_states(12)
    b = log_z_lower_bounds(rbm, all_v)  # every image: the mean-field bounds of an RBM are exact
    assert b["mean_field"] == pytest.approx(float(dbm_log_partition(rbm)), abs=1e-9)
    for seed in range(3):
        dbm = random_dbm([8, 6, 4], seed, scale=3.0)
        data, _ = model_data(dbm, seed, n=50)
        b = log_z_lower_bounds(dbm, torch.cat([data, data]))  # duplicates must not count twice
        exact = float(dbm_log_partition(dbm))
        assert b["map_state"] <= exact and b["mean_field"] <= exact
        assert b["mean_field"] > exact - 3.0
    dbm = random_dbm([8, 6, 4], 0, scale=0.1)
    with torch.no_grad():
        dbm.biases[1].fill_(-20.0)  # h1 always off: the mass is the "all h1 off" mode's
    s0 = float(torch.nn.functional.softplus(dbm.biases[0]).sum() + torch.nn.functional.softplus(dbm.biases[2]).sum())
    b = log_z_lower_bounds(dbm, torch.ones(1, 8, dtype=torch.float64))
    assert b["map_state"] == pytest.approx(s0, abs=1e-9) and b["map_state"] <= float(dbm_log_partition(dbm)) + 1e-12
    with pytest.raises(ValueError, match="binary"):
        log_z_lower_bounds(rbm, all_v * 0.5)


def spurious_mode_dbm():
    """20-10-20 DBM whose mass sits in one mode (v = first 10 pixels on, h1 all on, h2 = first 10
    units on), which needs ~all of v and h2 right at once before h1 switches on: AIS over (v, h2)
    with h1 summed out starts in the 'all h1 off' region and never leaves it."""
    dbm = DBM([20, 10, 20], dtype=torch.float64)
    pattern = torch.cat([torch.ones(10), -torch.ones(10)]).double()
    with torch.no_grad():
        dbm.weights[0].copy_(4.0 * pattern[:, None].expand(20, 10))
        dbm.weights[1].copy_(4.0 * pattern[None, :].expand(10, 20))
        dbm.biases[1].fill_(-70.0)
    return dbm


def test_guard_catches_ais_stuck_in_a_spurious_mode():
    dbm = spurious_mode_dbm()
    mode = torch.cat([torch.ones(10), torch.zeros(10)]).double()
    data = torch.cat([mode[None].expand(5, -1), (torch.rand(45, 20, generator=gen(0)) < 0.5).double()])
    bias = base_rate_bias(data)
    curve = [ais(dbm, bias, schedule(((1.0, k),)), 50, gen(k)) for k in (100, 200)]
    stuck = 40 * math.log(2)  # the "all h1 off" mass: sum softplus(b0) + sum softplus(b2), b0 = b2 = 0
    assert abs(curve[-1].log_z - stuck) < 0.5  # the failure really happens
    bounds = log_z_lower_bounds(dbm, data)
    assert bounds["map_state"] >= 100.0 and bounds["mean_field"] >= 100.0  # -E of the mode: 400 + 400 - 700
    d = diagnose(curve, bounds, tolerance=0.1, model="spurious-mode dbm")
    assert d.verdict == "failed" and "below the rigorous lower bound" in d.reasons[0]
    assert d.activity[-1]["mean_state"][1] < 0.01  # h1 stayed off along the path


@pytest.mark.parametrize("kind", ["rbm", "dbm"])
def test_evaluate_reports_every_estimate_with_its_evidence(kind):
    from dlgm.boltzmann.likelihood import evaluate

    dbm = model(kind, 7, 1.0)
    train, _ = model_data(dbm, 8, n=200)
    test, _ = model_data(dbm, 9, n=40)
    grey = test * 0.998 + 0.001  # grey levels: binarised stochastically, almost surely to `test`
    cfg = {"runs": 50, "segments": [[1.0, 400]], "curve_scales": [0.5], "base_rate_smoothing": 0.05,
           "mean_field_iterations": 30, "train_subset": None, "logprob_images": 20, "logprob_scale": 1.0,
           "convergence_tolerance": 0.1, "parameterisation": "even", "guard_images": 1000, "logprob_runs": 10,
           "test_binarisations": 1, "logprob_per_class": False, "reverse_sweeps": 200}
    metrics, extra = evaluate(dbm, train, grey, cfg, gen(0), model=f"tiny {kind}")
    exact_log_z = float(dbm_log_partition(dbm))
    exact = float(exact_log_prob(dbm, test[:20]).mean())
    assert metrics["ais_converged"] == 1.0 and extra["ais_verdict"] == "converged"
    assert abs(metrics["log_z"] - exact_log_z) < 0.05 and abs(metrics["log_z_reverse"] - exact_log_z) < 0.05
    assert metrics["test_logprob_at_log_z_reverse"] == pytest.approx(
        metrics["test_logprob"] + metrics["log_z"] - metrics["log_z_reverse"], abs=1e-9)
    assert extra["ais_diagnostics"]["reverse"]["sweeps"] == 200
    assert abs(metrics["test_logprob_estimate"] - exact) < 0.1
    assert abs(metrics["test_logprob_raise"] - exact) < 0.1
    assert metrics["test_logprob_raise_gap"] == pytest.approx(
        metrics["test_logprob_estimate"] - metrics["test_logprob_raise"])
    full = float(exact_log_prob(dbm, test).mean())
    shift = exact_log_z - metrics["log_z"]  # the bounds use the AIS log Z
    if kind == "rbm":  # exact free energies given the AIS log Z
        assert metrics["test_logprob"] == pytest.approx(full + shift, abs=1e-9)
        assert metrics["test_logprob_bound_subset"] == pytest.approx(exact + shift, abs=1e-9)
    else:  # the mean-field bound lies below, on all images and on the estimate's own images
        assert metrics["test_logprob"] < full + shift
        assert exact - 2.0 < metrics["test_logprob_bound_subset"] < exact + shift
    d = extra["ais_diagnostics"]
    assert d["lower_bounds"]["mean_field"] <= exact_log_z and len(extra["ais_curve"]) == 2
    assert 0 < metrics["ais_ess"] <= 50


def test_estimate_images_draw_the_same_number_of_each_class_at_random():
    from dlgm.boltzmann.likelihood import estimate_images

    labels = torch.tensor([2, 0, 1, 2, 2, 0, 1, 1, 0, 2, 1, 0])
    picks = estimate_images(labels, 6, True, gen(3))
    assert picks.tolist() == sorted(set(picks.tolist())) and len(picks) == 6
    assert torch.bincount(labels[picks], minlength=3).tolist() == [2, 2, 2]
    assert picks.tolist() == estimate_images(labels, 6, True, gen(3)).tolist()  # the seed fixes the draw
    draws = {tuple(estimate_images(labels, 3, True, gen(s)).tolist()) for s in range(20)}
    assert len(draws) > 1  # random, not the first of each class
    assert estimate_images(labels, 4, False, gen(3)).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("n, labels, message", [
    (5, [0, 1, 0, 1, 0, 1], "not a multiple of the 2 classes"),
    (6, [0, 1, 0, 1, 1, 1], "class 0 has 2 test images, fewer than 3"),
    (2, None, "needs the test labels"),
])
def test_estimate_images_refuse_what_cannot_be_balanced(n, labels, message):
    from dlgm.boltzmann.likelihood import estimate_images

    with pytest.raises(ValueError, match=message):
        estimate_images(None if labels is None else torch.tensor(labels), n, True, gen(0))


def test_evaluate_estimates_on_the_drawn_images_and_records_them():
    from dlgm.boltzmann.likelihood import evaluate, mean_log_prob

    rbm = model("rbm", 7, 1.0)
    train, _ = model_data(rbm, 8, n=200)
    test, _ = model_data(rbm, 9, n=40)
    labels = torch.arange(40) % 4
    cfg = {"runs": 50, "segments": [[1.0, 400]], "curve_scales": [0.5], "base_rate_smoothing": 0.05,
           "mean_field_iterations": 30, "train_subset": None, "logprob_images": 8, "logprob_scale": 1.0,
           "convergence_tolerance": 0.1, "parameterisation": "even", "guard_images": 1000, "logprob_runs": 10,
           "test_binarisations": 1, "logprob_per_class": True, "reverse_sweeps": 0}
    metrics, extra = evaluate(rbm, train, test, cfg, gen(0), model="tiny rbm", test_labels=labels)
    assert "log_z_reverse" not in metrics and extra["ais_diagnostics"]["reverse"] is None
    # the reverse run draws its random numbers last: every other number is the same with it
    with_reverse, _ = evaluate(rbm, train, test, {**cfg, "reverse_sweeps": 10}, gen(0), model="tiny rbm",
                               test_labels=labels)
    assert {k: with_reverse[k] for k in metrics} == metrics
    picks = torch.tensor(extra["logprob_image_indices"])
    assert torch.bincount(labels[picks]).tolist() == [2, 2, 2, 2] and extra["logprob_images"] == 8
    assert metrics["test_logprob_bound_subset"] == pytest.approx(
        mean_log_prob(rbm, test[picks], metrics["log_z"], 30), abs=1e-9)
    per_class = [mean_log_prob(rbm, test[labels == c], metrics["log_z"], 30) for c in range(4)]
    assert metrics["test_logprob_bound_balanced"] == pytest.approx(sum(per_class) / 4, abs=1e-9)
    assert metrics["test_logprob_bound_draw_sd"] > 0


def test_draw_spread_is_the_mean_and_sd_over_every_balanced_draw():
    from itertools import combinations

    from dlgm.boltzmann.likelihood import draw_spread

    values = torch.tensor([3.0, -1.0, 4.0, 1.5, -5.0, 9.0, 2.0, 6.0, -2.5])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 1])
    a, b = torch.nonzero(labels == 0).flatten().tolist(), torch.nonzero(labels == 1).flatten().tolist()
    draws = torch.tensor([float(values[list(i) + list(j)].double().mean())
                          for i in combinations(a, 2) for j in combinations(b, 2)], dtype=torch.float64)
    assert len(draws) == 6 * 10
    mean, sd = draw_spread(values, labels, 2)
    assert mean == pytest.approx(float(draws.mean()), abs=1e-12)
    assert sd == pytest.approx(float(draws.std(unbiased=False)), abs=1e-12)
    assert draw_spread(values, labels, 4)[1] == pytest.approx(
        float(values[b].double().std() / 4 ** 0.5 * (1 / 5) ** 0.5 / 2), abs=1e-12)  # class 0 fully drawn: no spread
    with pytest.raises(ValueError, match="class 0 has 4 items, fewer than 5"):
        draw_spread(values, labels, 5)
