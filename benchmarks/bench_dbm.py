"""DBM joint-training update and AIS step (default: SH09's 784-500-1000 DBM).

Update: one mini-batch of ``train_dbm`` (batch 100, 10 mean-field sweeps, 100 persistent chains with
5 Gibbs sweeps, momentum step, reconstruction error), timed over whole epochs of ``train_dbm``.
AIS: one temperature of ``ais`` with 100 runs. Floors: the same products, plain torch.mm into
preallocated outputs; for AIS also those products plus the random bits a step must draw (16
per unit of every layer and run), which on a CPU come from torch's serial generator. --numpy adds a NumPy float64 transcription of the update as a peer.
Usage: python -m benchmarks.bench_dbm [--threads 2] [--updates 20] [--steps 200] [--numpy]
"""
from __future__ import annotations

import torch

from benchmarks.common import binary_images, gemm_floor, paired, row, setup, standalone
from dlgm.boltzmann.ais import ais
from dlgm.boltzmann.dbm import DBM
from dlgm.boltzmann.dbm_train import train_dbm
from dlgm.loop_products import ais_spec, dbm_update_spec


def random_dbm(sizes, device) -> DBM:
    g = torch.Generator().manual_seed(0)
    dbm = DBM(sizes)
    with torch.no_grad():
        for w in dbm.weights:
            w.copy_(torch.randn(w.shape, generator=g) * 0.05)
        for b in dbm.biases:
            b.copy_(torch.randn(b.shape, generator=g) * 0.1)
    return dbm.to(device)


def run(args) -> list:
    device = setup(args)
    sizes = [784, 16, 24] if args.tiny else args.sizes
    updates, steps = (3, 10) if args.tiny else (args.updates, args.steps)
    batch = chains = 20 if args.tiny else 100
    x, _ = binary_images(updates * batch, device, args.tiny)
    dbm = random_dbm(sizes, device)
    cfg = {"n_chains": chains, "epochs": 1, "batch_size": batch, "lr": 1e-4, "lr_decay": 1.000015, "lr_min": 1e-5,
           "mean_field_iterations": 10, "gibbs_steps": 5, "momentum_initial": 0.5, "momentum_final": 0.9,
           "momentum_switch_epoch": 5, "weight_cost": 2e-4, "binarize": True,
           "model_statistics": "probabilities", "sparsity": {"targets": [0.2, 0.1], "cost": 0.001, "damping": 0.9}}
    g = torch.Generator(device=device).manual_seed(0)

    def ours_update():
        train_dbm(dbm, x, cfg, g)

    def ours_ais():
        ais(dbm, torch.zeros(sizes[0], device=device), torch.linspace(0, 1, steps + 1, dtype=torch.float64), chains, g)

    up_floor, up_flops = gemm_floor(dbm_update_spec(sizes, batch, chains, 10, 5), updates, device)
    spec = ais_spec(sizes, chains)
    ais_floor, ais_flops = gemm_floor(spec, steps, device)
    ais_draws, _ = gemm_floor(spec, steps, device, draws=chains * sum(sizes))  # every layer is sampled once a step
    fns = [ours_update, up_floor, ours_ais, ais_floor, ais_draws]
    if args.numpy and not args.tiny:
        fns.append(numpy_update(dbm, x, batch, chains))
    t = paired(fns, args.repeats, device)
    arch = "-".join(map(str, sizes))
    upd = f"DBM update {arch}, MF 10, Gibbs 5, batch+chains {batch}"
    rows = [row("dbm_update", upd, "update", t[0], "its matrix products alone", t[1], "floor", args, device, 1.2,
                scale=updates, flops=up_flops / updates),
            row("ais", f"AIS step {arch}, {chains} runs", "step", t[2], "its matrix products alone",
                t[3], "floor", args, device, 1.2, scale=steps, flops=ais_flops / steps),
            row("ais", f"AIS step {arch}, {chains} runs", "step", t[2], "its products + its random draws",
                t[4], "floor", args, device, 1.2, scale=steps)]
    if len(t) > 5:
        rows.append(row("dbm_update", upd, "update", t[0], "NumPy float64 transcription", t[5], "peer", args, device, 1.0,
                        scale=updates))
    return rows


def numpy_update(dbm, x, batch, chains):
    """The authors' MATLAB code line by line, in NumPy float64 (2-layer DBMs only)."""
    import numpy as np

    rng = np.random.default_rng(0)
    w1, w2 = (w.detach().cpu().double().numpy().copy() for w in dbm.weights)
    b1, b2 = (b.detach().cpu().double().numpy().copy() for b in dbm.biases[1:])
    b0 = dbm.biases[0].detach().cpu().double().numpy().copy()
    data = x.cpu().double().numpy().reshape(-1, batch, x.shape[1])
    sig = lambda a: 1.0 / (1.0 + np.exp(-a))  # noqa: E731
    state = [(rng.random((chains, n)) < 0.5).astype(float) for n in (w1.shape[0], w1.shape[1], w2.shape[1])]
    inc = [np.zeros_like(w1), np.zeros_like(w2)]

    def run():
        cv, c1, c2 = state
        for v in data:
            v = (rng.random(v.shape) < v).astype(float)
            m2 = sig(sig(2 * v @ w1 + b1) @ w2 + b2)
            for _ in range(10):
                m1 = sig(v @ w1 + m2 @ w2.T + b1)
                m2 = sig(m1 @ w2 + b2)
            for _ in range(5):
                c1 = (rng.random(c1.shape) < sig(cv @ w1 + c2 @ w2.T + b1)).astype(float)
                cv = (rng.random(cv.shape) < sig(c1 @ w1.T + b0)).astype(float)
                c2 = (rng.random(c2.shape) < sig(c1 @ w2 + b2)).astype(float)
            for w, grad, i in ((w1, v.T @ m1 / batch - cv.T @ c1 / chains, inc[0]),
                               (w2, m1.T @ m2 / batch - c1.T @ c2 / chains, inc[1])):
                i *= 0.9
                i += 1e-4 * (grad - 2e-4 * w)
                w += i
            ((v - sig(m1 @ w1.T + b0)) ** 2).sum()
        state[:] = [cv, c1, c2]
    return run


def _args(p):
    p.add_argument("--sizes", type=int, nargs="+", default=[784, 500, 1000])
    p.add_argument("--updates", type=int, default=20, help="updates per timing")
    p.add_argument("--steps", type=int, default=200, help="AIS temperatures per timing")
    p.add_argument("--numpy", action="store_true", help="also time a NumPy float64 transcription (slow)")


main = standalone(run, __doc__, _args)

if __name__ == "__main__":
    main()
