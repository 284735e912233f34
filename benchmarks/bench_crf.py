"""CRF log-likelihood (forward and backward, as in training) plus Viterbi: dlgm vs pytorch-crf.

Same inputs for both (default 45 tags, batch 64, length 40, lengths drawn in [length/2, length]),
timed alternately in the same run. Target: dlgm at least 4x faster (ratio <= 0.25).
Usage: python -m benchmarks.bench_crf [--threads 2] [--tags 45 --batch 64 --length 40]
"""
from __future__ import annotations

import torch

from benchmarks.common import paired, row, setup, standalone
from dlgm.crf import LinearChainCRF


def run(args) -> list:
    import torchcrf

    device = setup(args)
    tags, batch, length = (5, 4, 6) if args.tiny else (args.tags, args.batch, args.length)
    gen = torch.Generator().manual_seed(0)
    emissions = torch.randn(batch, length, tags, generator=gen).to(device)
    gold = torch.randint(0, tags, (batch, length), generator=gen).to(device)
    lengths = torch.randint(length // 2, length + 1, (batch,), generator=gen)
    lengths[0] = length
    mask = (torch.arange(length)[None] < lengths[:, None]).to(device)
    ours = LinearChainCRF(tags).to(device)
    oracle = torchcrf.CRF(tags, batch_first=True).to(device)
    with torch.no_grad():
        oracle.end_transitions.zero_()
        ours.transitions.copy_(oracle.transitions)
        ours.initial.copy_(oracle.start_transitions)
    em = emissions.clone().requires_grad_()

    def ours_step():
        ours.log_likelihood(em, gold, mask).sum().backward()
        with torch.no_grad():
            ours.decode(emissions, mask).cpu()  # pytorch-crf returns host lists: the same end point

    def oracle_step():
        oracle(em, gold, mask, reduction="sum").backward()
        with torch.no_grad():
            oracle.decode(emissions, mask)

    repeats = max(args.repeats, 10)  # a few milliseconds each: more repeats for a stable minimum
    t = paired([ours_step, oracle_step], repeats, device)
    name = f"CRF log-likelihood fwd+bwd + Viterbi, {tags} tags, batch {batch} x {length}"
    return [row("crf", name, "batch", t[0], "pytorch-crf", t[1], "peer", args, device, 0.25)]


def _args(p):
    p.add_argument("--tags", type=int, default=45)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--length", type=int, default=40)


main = standalone(run, __doc__, _args)

if __name__ == "__main__":
    main()
