"""Fine-tuning epochs: the backprop-fine-tuned DBN (HS06: 784-500-500-2000-10, logistic units, SGD with
momentum, batch 100) and the DBM classifier (SH09 Fig. 3: v and q(h2|v) -> 500 -> 1000 -> 10), each
timed over mini-batches of dlgm's own training code, against the same forward and backward matrix
products alone, and those products plus SGD's step (one pass over the weights and their momentum
buffers, which a step cannot skip; where the products are small and the weights large, as here
at batch 100, memory bandwidth makes it a visible share).
Usage: python -m benchmarks.bench_finetune [--threads 2] [--batches 50]
"""
from __future__ import annotations

import torch

from benchmarks.common import binary_images, gemm_floor, paired, row, setup, standalone
from dlgm.boltzmann.dbm_finetune import DBMClassifier, finetune
from dlgm.boltzmann.batches import shuffled_batches
from dlgm.dbn.finetune import DeepClassifier, make_optimizer, train_epoch
from dlgm.loop_products import dbm_classifier_spec, mlp_spec


def run(args) -> list:
    device = setup(args)
    tiny = args.tiny
    batch, n_batches = (20, 3) if tiny else (100, args.batches)
    x, y = binary_images(batch * n_batches, device, tiny)
    g = torch.Generator(device=device).manual_seed(0)
    rows = []

    dims = [784, 16, 16, 24] if tiny else [784, 500, 500, 2000]
    net = DeepClassifier(dims, 10, torch.Generator().manual_seed(0)).to(device)
    opt, _ = make_optimizer(net, {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "lr_decay": 1.0})

    def dbn_epoch():
        float(train_epoch(net, opt, x, y, shuffled_batches(x.shape[0], batch, g, device)))

    from dlgm.boltzmann.dbm import DBM

    sizes = [784, 16, 24] if tiny else [784, 500, 1000]
    dbm = DBM(sizes).to(device)
    with torch.no_grad():
        for w in dbm.weights:
            w.normal_(0, 0.05, generator=torch.Generator(device=device).manual_seed(0))
    clf = DBMClassifier(dbm, 10, generator=torch.Generator().manual_seed(0))
    q = [torch.rand(x.shape[0], sizes[2], device=device)]
    cfg = {"lr": 0.1, "momentum_initial": 0.5, "momentum_final": 0.9, "momentum_switch_epoch": 5,
           "weight_cost": 1e-5, "epochs": 1, "batch_size": batch}

    def dbm_epoch():
        finetune(clf, x, q, y, cfg, g)

    floor_dbn, flops_dbn = gemm_floor(mlp_spec(dims + [10], batch), n_batches, device)
    floor_dbm, flops_dbm = gemm_floor(dbm_classifier_spec(sizes, batch), n_batches, device)
    step_dbn, _ = gemm_floor(mlp_spec(dims + [10], batch), n_batches, device, updates=_n_params(net))
    step_dbm, _ = gemm_floor(dbm_classifier_spec(sizes, batch), n_batches, device, updates=_n_params(clf))
    t = paired([dbn_epoch, floor_dbn, dbm_epoch, floor_dbm, step_dbn, step_dbm], args.repeats, device)
    arch = "-".join(map(str, dims + [10]))
    rows.append(row("ft_dbn", f"DBN backprop fine-tuning {arch}, SGD, batch {batch}", "batch", t[0],
                    "its matrix products alone", t[1], "floor", args, device, 1.2, scale=n_batches,
                    flops=flops_dbn / n_batches))
    rows.append(row("ft_dbm", f"DBM fine-tuning {'-'.join(map(str, sizes))} (+q), SGD, batch {batch}", "batch", t[2],
                    "its matrix products alone", t[3], "floor", args, device, 1.2, scale=n_batches,
                    flops=flops_dbm / n_batches))
    for k, (key, ours) in enumerate((("ft_dbn", t[0]), ("ft_dbm", t[2]))):
        rows.append(row(key, rows[k].loop, "batch", ours, "its products + its SGD step over the weights", t[4 + k],
                        "floor", args, device, 1.2, scale=n_batches))
    return rows


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _args(p):
    p.add_argument("--batches", type=int, default=50, help="mini-batches per timing")


main = standalone(run, __doc__, _args)

if __name__ == "__main__":
    main()
