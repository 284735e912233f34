"""CD-k epoch of an RBM (default: CD-1, 784-500, 60,000 MNIST images, batch 100).

dlgm's ``cd_epoch`` against (floor) the epoch's matrix products alone -- per mini-batch, k + 1
products [B,V]x[V,H] up, k products [B,H]x[H,V] down and two [V,B]x[B,H] for the weight statistics,
each with plain torch.mm into a preallocated output -- and (peer) scikit-learn's BernoulliRBM, one
epoch on the same float32 images. Usage: python -m benchmarks.bench_rbm_cd1 [--threads 2] [--k 1]
"""
from __future__ import annotations


import torch

from benchmarks.common import binary_images, paired, row, setup, standalone
from dlgm.boltzmann.rbm import RBM, MomentumSGD, cd_epoch, rbm_params
from dlgm.dbn.data import shuffled_batches


def gemm_flops(batch: int, n_vis: int, n_hid: int, k: int) -> int:
    return 2 * batch * n_vis * n_hid * (2 * k + 3)


def floor_epoch(n_batches, batch, n_vis, n_hid, k, device):
    """The GEMMs of one CD-k epoch, nothing else."""
    v = torch.rand(batch, n_vis, device=device)
    w = torch.rand(n_vis, n_hid, device=device)
    h = torch.rand(batch, n_hid, device=device)
    out_h, out_v, out_w = torch.empty_like(h), torch.empty_like(v), torch.empty_like(w)

    def run():
        for _ in range(n_batches):
            torch.mm(v, w, out=out_h)
            for step in range(k):
                torch.mm(h, w.t(), out=out_v)
                torch.mm(v, w, out=out_h)
            torch.mm(v.t(), h, out=out_w)
            torch.mm(v.t(), h, out=out_w)
    return run


def run(args) -> list:
    device = setup(args)
    n, n_vis, n_hid, batch = (1000, 784, 64, 100) if args.tiny else (args.images, 784, args.hidden, 100)
    x, _ = binary_images(n, device, args.tiny)
    g = torch.Generator(device=device).manual_seed(0)
    rbm = RBM(n_vis, n_hid, generator=torch.Generator().manual_seed(0)).to(device)
    sgd = MomentumSGD(rbm_params(rbm)).to(device)
    n_batches = n // batch

    def ours():
        batches = shuffled_batches(n, batch, g, device)
        float(cd_epoch(rbm, sgd, x, batches, lr=0.1, momentum=0.5, weight_cost=2e-4, k=args.k, generator=g))

    fns = [ours, floor_epoch(n_batches, batch, n_vis, n_hid, args.k, device)]
    peer = args.k == 1 and device.type == "cpu" and not args.skip_sklearn
    if peer:
        from sklearn.neural_network import BernoulliRBM

        data = x.cpu().numpy()  # float32: BernoulliRBM keeps float32 input in float32

        def sklearn():
            BernoulliRBM(n_components=n_hid, learning_rate=0.1, batch_size=batch, n_iter=1, random_state=0).fit(data)
        fns.append(sklearn)
    times = paired(fns, args.repeats, device)
    name = f"CD-{args.k} epoch, {n_vis}-{n_hid} RBM, {n} images, batch {batch}"
    flops = gemm_flops(batch, n_vis, n_hid, args.k) * n_batches
    rows = [row(name, "epoch", times[0], "its matrix products alone", times[1], "floor", args, device, 1.2,
                flops=flops, batches=n_batches)]
    if peer:
        rows.append(row(name, "epoch", times[0], "scikit-learn BernoulliRBM (float32)", times[2], "peer", args,
                        device, 1.0, flops=flops, batches=n_batches))
    return rows


def _args(p):
    p.add_argument("--k", type=int, default=1, help="Gibbs steps of CD-k")
    p.add_argument("--images", type=int, default=60000)
    p.add_argument("--hidden", type=int, default=500)
    p.add_argument("--skip-sklearn", action="store_true")


main = standalone(run, __doc__, _args)

if __name__ == "__main__":
    main()
