"""CRF speed: dlgm vs pytorch-crf, measured in the same run on the same inputs.

Times one log-likelihood (forward and backward, as in training) and one Viterbi decode of a
padded batch (default: 45 tags, batch 64, length 40, lengths drawn in [length/2, length]).
Usage: python benchmarks/bench_crf.py [--tags 45 --batch 64 --length 40 --repeats 30 --device auto --threads 0]
"""
from __future__ import annotations

import argparse
import time

import torch
import torchcrf

from dlgm.crf import LinearChainCRF
from dlgm.runinfo import device_name, pick_device


def paired_medians(ours, theirs, repeats: int, device: torch.device) -> tuple[float, float]:
    """Median seconds of each, timed alternately so that load from other processes hits both."""
    def once(fn):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    ours(), theirs()  # warm-up
    pairs = [(once(ours), once(theirs)) for _ in range(repeats)]
    return tuple(sorted(p[i] for p in pairs)[repeats // 2] for i in range(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=45)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    gen = torch.Generator().manual_seed(0)
    emissions = torch.randn(args.batch, args.length, args.tags, generator=gen).to(device)
    tags = torch.randint(0, args.tags, (args.batch, args.length), generator=gen).to(device)
    lengths = torch.randint(args.length // 2, args.length + 1, (args.batch,), generator=gen)
    lengths[0] = args.length
    mask = (torch.arange(args.length)[None] < lengths[:, None]).to(device)

    ours = LinearChainCRF(args.tags).to(device)
    oracle = torchcrf.CRF(args.tags, batch_first=True).to(device)
    with torch.no_grad():
        oracle.end_transitions.zero_()
        ours.transitions.copy_(oracle.transitions)
        ours.initial.copy_(oracle.start_transitions)
    em = emissions.clone().requires_grad_()

    def ours_ll():
        ours.log_likelihood(em, tags, mask).sum().backward()

    def oracle_ll():
        oracle(em, tags, mask, reduction="sum").backward()

    def ours_viterbi():
        with torch.no_grad():
            ours.decode(emissions, mask).cpu()  # pytorch-crf returns host lists: same end point

    def oracle_viterbi():
        with torch.no_grad():
            oracle.decode(emissions, mask)

    rows = {
        "log-likelihood fwd+bwd": paired_medians(ours_ll, oracle_ll, args.repeats, device),
        "viterbi": paired_medians(ours_viterbi, oracle_viterbi, args.repeats, device),
    }
    total = tuple(sum(r[i] for r in rows.values()) for i in range(2))
    rows["total"] = total
    print(f"device: {device_name(device)}; tags={args.tags} batch={args.batch} length={args.length}; "
          f"median of {args.repeats}, timed alternately")
    print(f"{'':26s}{'dlgm ms':>10s}{'pytorch-crf ms':>16s}{'speed-up':>10s}")
    for name, (a, b) in rows.items():
        print(f"{name:26s}{a * 1e3:10.2f}{b * 1e3:16.2f}{b / a:9.1f}x")


if __name__ == "__main__":
    main()
