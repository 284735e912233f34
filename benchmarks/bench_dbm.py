"""Time one AIS temperature step (100 runs) and one joint-training update of the 784-500-1000 DBM
(batch 100, 100 fantasy particles, 10 mean-field sweeps, 5 Gibbs sweeps) on this machine's device:
dlgm against a NumPy float64 transcription of the same step (the authors' MATLAB code does these
matrix operations one per line), and the floor set by the step's matrix products alone. Then the
projected time of the full 2-layer protocol (pretraining, 500 epochs of joint training, AIS with
14,500 temperatures plus the shorter convergence runs).

    python benchmarks/bench_dbm.py [--steps 200] [--updates 20]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dlgm.boltzmann.ais import ais, schedule
from dlgm.boltzmann.dbm import DBM, dbm_statistics, random_chains
from dlgm.boltzmann.rbm import MomentumSGD
from dlgm.runinfo import device_name, pick_device

SIZES, RUNS, BATCH = [784, 500, 1000], 100, 100


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def random_dbm(device) -> DBM:
    g = torch.Generator().manual_seed(0)
    dbm = DBM(SIZES)
    with torch.no_grad():
        for w in dbm.weights:
            w.copy_(torch.randn(w.shape, generator=g) * 0.05)
        for b in dbm.biases:
            b.copy_(torch.randn(b.shape, generator=g) * 0.1)
    return dbm.to(device)


def best_of(fn, repeats, device):
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


# -- AIS -------------------------------------------------------------------------------------
def dlgm_ais_step(dbm, device, steps, repeats):
    g = torch.Generator(device=device).manual_seed(0)
    bias = torch.zeros(SIZES[0], device=device)
    betas = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    return best_of(lambda: ais(dbm, bias, betas, RUNS, g), repeats, device) / steps


def numpy_ais_step(dbm, steps, repeats):
    rng = np.random.default_rng(0)
    w1, w2 = (w.detach().cpu().double().numpy() for w in dbm.weights)
    b0, b1, b2 = (b.detach().cpu().double().numpy() for b in dbm.biases)
    base = np.zeros(SIZES[0])
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))
    softplus = lambda x: np.logaddexp(0.0, x)

    def run():
        v = (rng.random((RUNS, SIZES[0])) < sig(base)).astype(float)
        h2 = (rng.random((RUNS, SIZES[2])) < 0.5).astype(float)
        logw = np.zeros(RUNS)
        betas = np.linspace(0, 1, steps + 1)
        for bp, b in zip(betas[:-1], betas[1:]):
            total = v @ w1 + h2 @ w2.T + b1
            logw += (b - bp) * (v @ b0 + h2 @ b2 - v @ base) + (softplus(b * total) - softplus(bp * total)).sum(1)
            h1 = (rng.random(total.shape) < sig(b * total)).astype(float)
            v = (rng.random((RUNS, SIZES[0])) < sig(b * (h1 @ w1.T + b0) + (1 - b) * base)).astype(float)
            h2 = (rng.random((RUNS, SIZES[2])) < sig(b * (h1 @ w2 + b2))).astype(float)
        return logw

    return best_of(run, repeats, torch.device("cpu")) / steps


def matmul_floor_ais(device, steps, repeats):
    v, h1, h2 = (torch.rand(RUNS, n, device=device) for n in SIZES)
    w1, w2 = torch.rand(784, 500, device=device), torch.rand(500, 1000, device=device)

    def run():
        for _ in range(steps):
            v @ w1, h2 @ w2.t(), h1 @ w1.t(), h1 @ w2

    return best_of(run, repeats, device) / steps


# -- joint training ----------------------------------------------------------------------------
def dlgm_update(dbm, device, updates, repeats):
    g = torch.Generator(device=device).manual_seed(0)
    data = (torch.rand(updates, BATCH, SIZES[0], generator=g, device=device) < 0.2).float()
    chains = random_chains(dbm, RUNS, g)
    sgd = MomentumSGD(dbm.params()).to(device)

    def run():
        nonlocal chains
        for v in data:
            grads, chains, _ = dbm_statistics(dbm, v, chains, mean_field_iterations=10, gibbs_steps=5, generator=g)
            sgd.step(dbm.params(), grads, 1e-4, 0.9, 2e-4)

    return best_of(run, repeats, device) / updates


def numpy_update(dbm, updates, repeats):
    rng = np.random.default_rng(0)
    w1, w2 = (w.detach().cpu().double().numpy().copy() for w in dbm.weights)
    b0, b1, b2 = (b.detach().cpu().double().numpy().copy() for b in dbm.biases)
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))
    data = (rng.random((updates, BATCH, SIZES[0])) < 0.2).astype(float)
    cv, c1, c2 = ((rng.random((RUNS, n)) < 0.5).astype(float) for n in SIZES)
    inc = [np.zeros_like(w1), np.zeros_like(w2)]

    def run():
        nonlocal cv, c1, c2
        for v in data:
            m1 = sig(2 * v @ w1 + b1)
            m2 = sig(m1 @ w2 + b2)
            for _ in range(10):
                m1 = sig(v @ w1 + m2 @ w2.T + b1)
                m2 = sig(m1 @ w2 + b2)
            for _ in range(5):
                c1 = (rng.random(c1.shape) < sig(cv @ w1 + c2 @ w2.T + b1)).astype(float)
                cv = (rng.random(cv.shape) < sig(c1 @ w1.T + b0)).astype(float)
                c2 = (rng.random(c2.shape) < sig(c1 @ w2 + b2)).astype(float)
            g1 = v.T @ m1 / BATCH - cv.T @ c1 / RUNS
            g2 = m1.T @ m2 / BATCH - c1.T @ c2 / RUNS
            for w, g, i in ((w1, g1, inc[0]), (w2, g2, inc[1])):
                i *= 0.9
                i += 1e-4 * (g - 2e-4 * w)
                w += i

    return best_of(run, repeats, torch.device("cpu")) / updates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="AIS temperature steps per timing")
    parser.add_argument("--updates", type=int, default=20, help="DBM updates per timing")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--skip-numpy", action="store_true")
    args = parser.parse_args()
    device = pick_device(args.device)
    dbm = random_dbm(device)
    print(f"device: {device_name(device)}; torch {torch.__version__}; DBM {'-'.join(map(str, SIZES))}")

    ais_step = dlgm_ais_step(dbm, device, args.steps, args.repeats)
    floor = matmul_floor_ais(device, args.steps, args.repeats)
    print(f"AIS step, {RUNS} runs:      dlgm {ais_step * 1e3:8.3f} ms   matmul floor {floor * 1e3:8.3f} ms", end="")
    if not args.skip_numpy:
        print(f"   numpy float64 {numpy_ais_step(dbm, args.steps, args.repeats) * 1e3:8.3f} ms", end="")
    print()
    update = dlgm_update(dbm, device, args.updates, args.repeats)
    print(f"DBM update (MF 10, Gibbs 5): dlgm {update * 1e3:8.3f} ms", end="")
    if not args.skip_numpy:
        print(f"   numpy float64 {numpy_update(dbm, args.updates, args.repeats) * 1e3:8.3f} ms", end="")
    print()

    temps = len(schedule()) - 1
    ais_total = ais_step * temps * (1 + sum((0.01, 0.03, 0.1, 0.3)))
    joint_total = update * 600 * 500
    print(f"projected full 2-layer protocol on this device: joint training {joint_total / 3600:.2f} h "
          f"(300,000 updates), AIS {ais_total / 60:.1f} min ({temps} temperatures + convergence runs); "
          f"pretraining (300 CD-1 epochs of 600 updates) and fine-tuning not included")


if __name__ == "__main__":
    main()
