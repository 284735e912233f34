"""AIS against the exact log Z of an RBM trained on real data: a 784-15 RBM (CD-1, a few epochs on
MNIST) is small enough to enumerate its 2**15 hidden states. Prints, for schedules of increasing
length (100 runs each), the AIS estimate, its log(Z -+ 3 sd) bars, the exact value and the time.

    python -m benchmarks.check_ais_mnist_rbm [--hidden 15] [--threads 2] [--device auto] [--tiny]

Reads data/processed/mnist/train_full.pt when present (random binary images with --tiny or without it).
"""
from __future__ import annotations

import time

import torch

from benchmarks.common import binary_images, parser, setup
from dlgm.boltzmann.ais import ais, base_rate_bias, rbm_as_dbm, schedule
from dlgm.boltzmann.dbm_train import train_rbm
from dlgm.testing.boltzmann_enumeration import rbm_log_partition
from dlgm.boltzmann.rbm import RBM
from dlgm.runinfo import device_name


def main(argv=None) -> list[float]:
    p = parser(__doc__)
    p.add_argument("--images", type=int, default=10000)
    p.add_argument("--hidden", type=int, default=15)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--scales", type=float, nargs="+", default=[0.03, 0.1, 1.0])
    args = p.parse_args(argv)
    if args.tiny:
        args.images, args.hidden, args.epochs, args.scales = 500, 6, 1, [0.01]
    device = setup(args)
    x, _ = binary_images(args.images, device, args.tiny)
    errors = []
    g = torch.Generator(device=device).manual_seed(0)
    rbm = RBM(784, args.hidden, generator=torch.Generator().manual_seed(0)).to(device)
    cfg = {"epochs": args.epochs, "batch_size": 100, "lr": 0.05, "momentum_initial": 0.5, "momentum_final": 0.9,
           "momentum_switch_epoch": 2, "weight_cost": 0.0002, "cd_k": 1, "binarize": True}
    train_rbm(rbm, x, cfg, g, stage="rbm")
    with torch.no_grad():
        exact = float(rbm_log_partition(_as_double(rbm)))
        print(f"device {device_name(device)}; 784-{args.hidden} RBM; exact log Z {exact:.3f}")
        for scale in args.scales:
            t0 = time.perf_counter()
            r = ais(rbm_as_dbm(rbm), base_rate_bias(x), schedule(scale=scale), 100, g)
            low = "-inf" if r.log_z_low is None else f"{r.log_z_low:.3f}"
            print(f"{r.n_temperatures:6d} temperatures: AIS {r.log_z:.3f} [{low}, {r.log_z_high:.3f}]"
                  f"  error {r.log_z - exact:+.3f}  ({time.perf_counter() - t0:.1f}s)")
            errors.append(r.log_z - exact)
    return errors


def _as_double(rbm: RBM) -> RBM:
    copy = RBM(rbm.n_visible, rbm.n_hidden, dtype=torch.float64).to(rbm.W.device)
    copy.load_state_dict({k: v.double() for k, v in rbm.state_dict().items()})
    return copy


if __name__ == "__main__":
    main()
