"""DBN up-down step (default: HOT06's 784-500-500 directed layers under a 500+10 <-> 2000 top RBM,
batch 100, 3 Gibbs iterations in the top), timed over ``updown_epoch``, against the step's matrix
products alone and with the random bits the step draws. Usage: python -m benchmarks.bench_updown [--threads 2] [--k 3] [--batches 20]
"""
from __future__ import annotations

import torch

from benchmarks.common import binary_images, gemm_floor, paired, row, setup, standalone
from dlgm.boltzmann.rbm import RBM
from dlgm.boltzmann.batches import shuffled_batches
from dlgm.dbn.labelled import LabelledRBM
from dlgm.dbn.updown import UpDownDBN, updown_epoch
from dlgm.loop_products import flops, updown_spec


def make_dbn(sizes, top_size, device) -> UpDownDBN:
    g = torch.Generator().manual_seed(0)
    rbms = [RBM(a, b, init_std=0.05, generator=g) for a, b in zip(sizes[:-1], sizes[1:])]
    return UpDownDBN(rbms, LabelledRBM(sizes[-1], 10, top_size, init_std=0.05, generator=g)).to(device)


def run(args) -> list:
    device = setup(args)
    sizes, top, batch, n_batches = ([784, 16, 16], 24, 20, 3) if args.tiny else (args.sizes, args.top, 100, args.batches)
    x, y = binary_images(batch * n_batches, device, args.tiny)
    dbn = make_dbn(sizes, top, device)
    g = torch.Generator(device=device).manual_seed(0)
    lr = {"generative": 0.001, "recognition": 0.001, "top": 0.001}

    def ours():
        updown_epoch(dbn, x, y, shuffled_batches(x.shape[0], batch, g, device), args.k, lr, g)

    spec = updown_spec(sizes, top, 10, batch, args.k)
    # wake samples of the hidden layers and the top, k x (penultimate + top), sleep samples above v
    draws = batch * (sum(sizes[1:]) + top + args.k * (sizes[-1] + top) + sum(sizes[1:-1]))
    t = paired([ours, gemm_floor(spec, n_batches, device)[0], gemm_floor(spec, n_batches, device, draws=draws)[0]],
               args.repeats, device)
    name = f"DBN up-down step {'-'.join(map(str, sizes))} + 10 <-> {top}, k={args.k}, batch {batch}"
    return [row("updown", name, "update", t[0], "its matrix products alone", t[1], "floor", args, device, 1.2,
                scale=n_batches, flops=flops(spec)),
            row("updown", name, "update", t[0], "its products + its random draws", t[2], "floor", args, device, 1.2,
                scale=n_batches)]


def _args(p):
    p.add_argument("--sizes", type=int, nargs="+", default=[784, 500, 500])
    p.add_argument("--top", type=int, default=2000)
    p.add_argument("--k", type=int, default=3, help="Gibbs iterations in the top RBM")
    p.add_argument("--batches", type=int, default=20, help="mini-batches per timing")


main = standalone(run, __doc__, _args)

if __name__ == "__main__":
    main()
