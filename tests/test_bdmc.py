"""Reverse AIS from the model's own chains (the upper side of bidirectional Monte Carlo), checked
against log Z by enumeration on tiny RBMs and DBMs, with and without label units."""
import pytest
import torch

from dlgm.boltzmann.ais import (ReverseAISResult, ais, base_rate_bias, model_samples, rbm_as_dbm, reverse_ais, schedule,
                                summarise)
from dlgm.boltzmann.ais_diagnostics import diagnose
from dlgm.testing.dbm_enumeration import dbm_exact_samples, dbm_log_partition, dbm_model_statistics
from tiny_boltzmann import random_dbm, random_rbm

pytestmark = pytest.mark.usefixtures("one_thread")
KINDS = ["rbm", "dbm", "labels"]


def gen(seed):
    return torch.Generator().manual_seed(seed)


def model(kind, seed, scale=3.0):
    if kind == "rbm":
        return rbm_as_dbm(random_rbm(12, 8, seed, scale))
    return random_dbm([8, 6, 4], seed, scale) if kind == "dbm" else random_dbm([5, 4, 3], seed, scale, n_labels=3)


def base_bias(dbm, seed):
    return base_rate_bias(dbm_exact_samples(dbm, 200, gen(1000 + seed))[0])


@pytest.mark.parametrize("parameterisation", ["even", "odd"])
@pytest.mark.parametrize("kind", KINDS)
def test_reverse_ais_from_exact_samples_converges_to_exact_log_z(kind, parameterisation):
    """100 runs from exact samples, 1,000 temperatures: within 0.05 nats of enumeration (measured:
    at most 0.025 over 10 seeds, even parameterisation)."""
    for seed in range(3):
        dbm = model(kind, seed)
        r = reverse_ais(dbm, base_bias(dbm, seed), schedule(((1.0, 1000),)), dbm_exact_samples(dbm, 100, gen(seed)),
                        gen(50 + seed), parameterisation)
        assert abs(r.log_z - float(dbm_log_partition(dbm))) < 0.05, (kind, seed, r)
        assert r.n_runs == 100 and r.n_temperatures == 1000 and 1 <= r.ess <= 100


@pytest.mark.parametrize("parameterisation", ["even", "odd"])
@pytest.mark.parametrize("kind", KINDS)
def test_reverse_ais_errs_high_where_forward_ais_errs_low(kind, parameterisation):
    """One run from an exact sample over 5 temperatures of a peaked model (weight scale 3) is a
    stochastic upper bound on log Z: above the exact value in at least 15 of 20 seeds (measured:
    16-18 of 20 for each kind and parameterisation)."""
    above = 0
    for seed in range(20):
        dbm = model(kind, seed)
        r = reverse_ais(dbm, base_bias(dbm, seed), schedule(((1.0, 5),)), dbm_exact_samples(dbm, 1, gen(seed)),
                        gen(50 + seed), parameterisation)
        above += r.log_z >= float(dbm_log_partition(dbm))
    assert above >= 15


@pytest.mark.parametrize("kind", KINDS)
def test_model_samples_start_at_the_images_and_reach_the_model(kind):
    dbm = model(kind, 4, scale=1.0)
    v = torch.zeros(3000, dbm.sizes[0], dtype=torch.float64)  # every chain starts far from the model's mean
    start = model_samples(dbm, v, 0, gen(0))
    assert torch.equal(start[0], v) and [t.shape[1] for t in start] == dbm.state_sizes
    assert all(torch.all((t == 0) | (t == 1)) for t in start)
    if dbm.n_labels:
        assert torch.all(start[-1].sum(1) == 1)
    chains = model_samples(dbm, v, 50, gen(1))
    exact = dbm_model_statistics(dbm)
    for l in range(dbm.n_layers + 1):  # 3,000 chains: a mean's sd is below 0.01
        assert torch.allclose(chains[l].mean(0), exact[f"b{l}"], atol=0.04), l
    if dbm.n_labels:
        assert torch.allclose(chains[-1].mean(0), exact["c"], atol=0.04)


def test_diagnose_wants_forward_and_reverse_ais_to_agree():
    dbm = model("dbm", 0)
    betas = schedule(((1.0, 1000),))
    bias = base_bias(dbm, 0)
    curve = [ais(dbm, bias, schedule(((1.0, 500),)), 100, gen(1)), ais(dbm, bias, betas, 100, gen(2))]
    exact = float(dbm_log_partition(dbm))
    close = ReverseAISResult(exact + 0.02, 50.0, 100, 1000, 10)
    far = ReverseAISResult(exact + 3.0, 50.0, 100, 1000, 10)
    assert diagnose(curve, {}, 0.5, "tiny", close).verdict == "converged"
    d = diagnose(curve, {}, 0.5, "tiny", far)
    assert d.verdict == "not converged" and "reverse AIS" in d.reasons[-1] and d.reverse["log_z"] == exact + 3.0
    assert diagnose(curve, {}, 0.5, "tiny").reverse is None


def test_a_forward_reverse_bracket_overrules_the_schedule_checks_but_not_a_lower_bound():
    def forward(log_weights, temperatures):
        return summarise(torch.as_tensor(log_weights, dtype=torch.float64), 0.0, temperatures)
    short, long = forward([10.0] * 100, 500), forward([12.0] * 100, 1000)  # log Z 10, then 12: moved by 2
    lopsided = forward([0.0] * 99 + [50.0], 1000)  # one run carries the estimate: no finite lower bar
    assert (short.log_z, long.log_z, lopsided.log_z_low) == (10.0, 12.0, None)

    def rev(log_z):
        return ReverseAISResult(log_z, 50.0, 100, 1000, 10)
    d = diagnose([short, long], {}, 0.5, "m", rev(12.2))
    assert d.verdict == "converged" and d.reasons == []
    assert len(d.notes) == 1 and "moved by +2.000" in d.notes[0] and "+0.200 from forward AIS" in d.notes[0]
    d = diagnose([short, lopsided], {}, 0.5, "m", rev(lopsided.log_z - 0.3))
    assert d.verdict == "converged" and any("no finite lower error bar" in n for n in d.notes)
    d = diagnose([short, long], {}, 0.5, "m", rev(14.0))  # apart: every reason stands, none is a note
    assert d.verdict == "not converged" and len(d.reasons) == 2 and d.notes == []
    assert "moved by +2.000" in d.reasons[0] and "+2.000 from forward AIS" in d.reasons[1]
    assert diagnose([short, long], {}, 0.5, "m").verdict == "not converged"  # no reverse run: the schedule decides
    d = diagnose([short, long], {"map_state": 13.0}, 0.5, "m", rev(12.2))  # below a rigorous bound: no bracket helps
    assert d.verdict == "failed" and d.notes == []
