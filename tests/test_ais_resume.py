"""Resumable AIS: forward and reverse annealing runs that checkpoint as they go and, killed and
rerun, end with exactly the numbers of an uninterrupted run (and of a run that never checkpoints)."""
import pytest
import torch

from dlgm.atomic import torch_load
from dlgm.boltzmann.ais import ais, base_rate_bias, model_samples, reverse_ais, schedule
from dlgm.training import RunLoops
from tiny_boltzmann import random_dbm

pytestmark = pytest.mark.usefixtures("one_thread")
BETAS = schedule(((0.5, 17), (1.0, 40)))  # 57 steps: 20 chunks of 3 (the last of 0 remains none)


class Killed(Exception):
    pass


class KillAt:
    """RunLoops whose loop dies when it reaches chunk ``at`` (its checkpoint holds the chunks before)."""

    def __init__(self, loops: RunLoops, at: int):
        self.loops, self.at = loops, at

    def __call__(self, *args, **kwargs):
        loop = self.loops(*args, **kwargs)
        run = loop.run

        def run_until_killed(epoch_fn):
            def epoch(i):
                if i == self.at:
                    raise Killed(i)
                return epoch_fn(i)
            return run(epoch)

        loop.run = run_until_killed
        return loop


def gen(seed):
    return torch.Generator().manual_seed(seed)


def tiny(labels=False):
    return random_dbm([7, 5, 4], 3, 2.0, n_labels=3 if labels else 0)


@pytest.mark.parametrize("labels", [False, True])
@pytest.mark.parametrize("parameterisation", ["even", "odd"])
def test_forward_ais_killed_and_rerun_ends_as_an_uninterrupted_run(tmp_path, labels, parameterisation):
    dbm = tiny(labels)
    bias = base_rate_bias(torch.bernoulli(torch.full((50, 7), 0.3), generator=gen(1)))
    plain_gen = gen(0)
    plain = ais(dbm, bias, BETAS, 9, plain_gen, parameterisation)
    loops = RunLoops(tmp_path, identity={"test": 1})
    with pytest.raises(Killed):
        ais(dbm, bias, BETAS, 9, gen(0), parameterisation, KillAt(loops, 11), stage="ais_1")
    assert (tmp_path / "checkpoint_ais_1.pt").exists() and not list(tmp_path.glob("curve*"))
    before = sum(row["seconds"] for row in torch_load(tmp_path / "checkpoint_ais_1.pt")["rows"])
    resumed_gen = gen(0)  # a new process: the same seed, the checkpoint's state replaces it
    resumed = ais(dbm, bias, BETAS, 9, resumed_gen, parameterisation, loops, stage="ais_1")
    assert torch.equal(resumed.log_weights, plain.log_weights) and resumed.log_z == plain.log_z
    assert [(b, a) for b, a in resumed.activity] == [(b, a) for b, a in plain.activity]
    assert torch.equal(resumed_gen.get_state(), plain_gen.get_state())  # what comes after draws the same
    # a rerun that finds the run done returns it from the checkpoint, whatever its generator held
    done = ais(dbm, bias, BETAS, 9, gen(123), parameterisation, loops, stage="ais_1")
    assert torch.equal(done.log_weights, plain.log_weights)
    # its time counts the 11 slices before the kill as well (all 20 come from the checkpoint the last time)
    assert plain.seconds is None and resumed.seconds > before > 0 and done.seconds == resumed.seconds


def test_a_checkpoint_of_another_identity_is_not_resumed(tmp_path):
    dbm = tiny()
    bias = torch.zeros(7)
    with pytest.raises(Killed):
        ais(dbm, bias, BETAS, 9, gen(0), loops=KillAt(RunLoops(tmp_path, identity={"runs": 9}), 5))
    other = ais(dbm, bias, BETAS, 9, gen(7), loops=RunLoops(tmp_path, identity={"runs": 10}))
    assert torch.equal(other.log_weights, ais(dbm, bias, BETAS, 9, gen(7)).log_weights)


@pytest.mark.parametrize("labels", [False, True])
def test_reverse_ais_killed_and_rerun_ends_as_an_uninterrupted_run(tmp_path, labels):
    dbm = tiny(labels)
    bias = torch.zeros(7)
    start = model_samples(dbm, torch.bernoulli(torch.full((9, 7), 0.5), generator=gen(2)), 5, gen(3))
    plain = reverse_ais(dbm, bias, BETAS, start, gen(0))
    loops = RunLoops(tmp_path, identity={"test": 2})
    with pytest.raises(Killed):
        reverse_ais(dbm, bias, BETAS, start, gen(0), loops=KillAt(loops, 7))
    resumed = reverse_ais(dbm, bias, BETAS, start, gen(0), loops=loops)
    assert resumed.log_z == plain.log_z and resumed.ess == plain.ess
    assert plain.seconds is None and resumed.seconds > 0
