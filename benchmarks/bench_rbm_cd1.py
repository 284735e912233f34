"""Time one CD-1 epoch of a 784-500 RBM on MNIST (60,000 images, batch 100): dlgm against
scikit-learn's BernoulliRBM on the same data, and the floor set by the epoch's matrix products
(5 products of the shapes [100,784]x[784,500] per mini-batch, timed with plain torch.matmul).

    python benchmarks/bench_rbm_cd1.py [--mnist data/processed/mnist/train_full.pt] [--repeats 2] [--threads N]

On a CPU shared with other jobs, --threads 1 avoids OpenMP threads waiting for each other.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dlgm.boltzmann.rbm import RBM, MomentumSGD, cd_epoch, rbm_params
from dlgm.dbn.data import load_mnist, shuffled_batches
from dlgm.runinfo import pick_device

N_VIS, N_HID, BATCH = 784, 500, 100


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_dlgm(x, device, repeats):
    g = torch.Generator(device=device).manual_seed(0)
    rbm = RBM(N_VIS, N_HID).to(device)
    sgd = MomentumSGD(rbm_params(rbm)).to(device)
    best = float("inf")
    for _ in range(repeats):
        batches = shuffled_batches(x.shape[0], BATCH, g, device)
        sync(device)
        t0 = time.perf_counter()
        err = cd_epoch(rbm, sgd, x, batches, lr=0.1, momentum=0.5, weight_cost=2e-4, k=1, generator=g)
        float(err)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def time_matmul_floor(x, device, repeats):
    a = torch.rand(BATCH, N_VIS, device=device)
    w = torch.rand(N_VIS, N_HID, device=device)
    h = torch.rand(BATCH, N_HID, device=device)
    n_batches = x.shape[0] // BATCH
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        for _ in range(n_batches):
            a @ w, h @ w.t(), a @ w, a.t() @ h, a.t() @ h
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best, 5 * 2 * BATCH * N_VIS * N_HID * n_batches


def time_sklearn(x, repeats):
    from sklearn.neural_network import BernoulliRBM

    data = x.cpu().numpy()  # float32: BernoulliRBM keeps float32 input in float32
    best = float("inf")
    for _ in range(repeats):
        model = BernoulliRBM(n_components=N_HID, learning_rate=0.1, batch_size=BATCH, n_iter=1, random_state=0)
        t0 = time.perf_counter()
        model.fit(data)
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default="data/processed/mnist/train_full.pt")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for torch and for scikit-learn's BLAS (0 = their defaults)")
    args = parser.parse_args()
    if args.threads:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    device = pick_device("auto")
    x, _ = load_mnist(args.mnist, device)
    print(f"device {device}, torch threads {torch.get_num_threads()}, {x.shape[0]} images, batch {BATCH}")
    floor, flops = time_matmul_floor(x, device, args.repeats)
    ours = time_dlgm(x, device, args.repeats)
    print(f"matmul floor      {floor:7.2f} s/epoch  ({flops / 1e9:.0f} GFLOP, {flops / floor / 1e9:.1f} GFLOP/s)")
    print(f"dlgm CD-1         {ours:7.2f} s/epoch")
    if not args.skip_sklearn:
        theirs = time_sklearn(x, args.repeats)
        print(f"sklearn BernoulliRBM {theirs:7.2f} s/epoch  -> dlgm is {theirs / ours:.1f}x faster")


if __name__ == "__main__":
    main()
