"""CD-k epoch of an RBM (default: CD-1, 784-500, 60,000 MNIST images, batch 100).

dlgm's ``cd_epoch`` against (floor) the epoch's matrix products alone -- per mini-batch, k + 1
products [B,V]x[V,H] up, k products [B,H]x[H,V] down and two [V,B]x[B,H] for the weight statistics,
each with plain torch.mm into a preallocated output, alone and with the random bits the epoch
draws -- and (peer) scikit-learn's BernoulliRBM, one
epoch on the same float32 images. Usage: python -m benchmarks.bench_rbm_cd1 [--threads 2] [--k 1]
"""
from __future__ import annotations


import torch

from benchmarks.common import binary_images, gemm_floor, paired, row, setup, standalone
from dlgm.boltzmann.rbm import RBM, MomentumSGD, cd_epoch, rbm_params
from dlgm.boltzmann.batches import shuffled_batches
from dlgm.loop_products import cd_spec, flops


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

    draws = batch * args.k * (n_vis + n_hid)  # one hidden sample per step, one visible per step
    spec = cd_spec(batch, n_vis, n_hid, args.k)
    fns = [ours, gemm_floor(spec, n_batches, device)[0], gemm_floor(spec, n_batches, device, draws=draws)[0]]
    peer = args.k == 1 and device.type == "cpu" and not args.skip_sklearn
    if peer:
        from sklearn.neural_network import BernoulliRBM

        data = x.cpu().numpy()  # float32: BernoulliRBM keeps float32 input in float32

        def sklearn():
            BernoulliRBM(n_components=n_hid, learning_rate=0.1, batch_size=batch, n_iter=1, random_state=0).fit(data)
        fns.append(sklearn)
    times = paired(fns, args.repeats, device)
    name = f"CD-{args.k} epoch, {n_vis}-{n_hid} RBM, {n} images, batch {batch}"
    per_epoch = flops(cd_spec(batch, n_vis, n_hid, args.k)) * n_batches
    rows = [row("cd", name, "epoch", times[0], "its matrix products alone", times[1], "floor", args, device, 1.2,
                flops=per_epoch),
            row("cd", name, "epoch", times[0], "its products + its random draws", times[2], "floor", args, device, 1.2)]
    if peer:
        rows.append(row("cd", name, "epoch", times[0], "scikit-learn BernoulliRBM (float32)", times[3], "peer", args,
                        device, 1.0, flops=per_epoch))
    return rows


def _args(p):
    p.add_argument("--k", type=int, default=1, help="Gibbs steps of CD-k")
    p.add_argument("--images", type=int, default=60000)
    p.add_argument("--hidden", type=int, default=500)
    p.add_argument("--skip-sklearn", action="store_true")


main = standalone(run, __doc__, _args)

if __name__ == "__main__":
    main()
