"""Forward-backward speed: dlgm (batched over utterances, log space) against hmmlearn's compiled
log-space forward/backward run one utterance at a time, on the same random HMM and emissions.

    python benchmarks/bench_forward_backward.py [--batch 32 --frames 1000 --states 100 --repeats 3]

Both compute the log-likelihood and the state posteriors of every utterance; the script checks
that they agree, then prints each one's time per utterance and the speed-up.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from hmmlearn import _hmmc

from dlgm.hmm.inference import forward_backward
from dlgm.runinfo import pick_device


def hmmlearn_posteriors(startprob, transmat, log_frameprob):
    """What hmmlearn's BaseHMM._score_log does per sequence (it takes probabilities, works in logs)."""
    loglik, fwd = _hmmc.forward_log(startprob, transmat, log_frameprob)
    bwd = _hmmc.backward_log(startprob, transmat, log_frameprob)
    post = fwd + bwd
    post -= post.max(axis=1, keepdims=True)
    post = np.exp(post)
    return loglik, post / post.sum(axis=1, keepdims=True)


def hmmlearn_posteriors_scaling(startprob, transmat, log_frameprob):
    """hmmlearn's default implementation='scaling' (probabilities rescaled per frame)."""
    shift = log_frameprob.max(axis=1, keepdims=True)
    frameprob = np.exp(log_frameprob - shift)
    loglik, fwd, scaling = _hmmc.forward_scaling(startprob, transmat, frameprob)
    bwd = _hmmc.backward_scaling(startprob, transmat, frameprob, scaling)
    post = fwd * bwd
    return loglik + shift.sum(), post / post.sum(axis=1, keepdims=True)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--states", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (hmmlearn uses one; on a loaded 2-core machine 2 threads thrash)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    transmat = rng.dirichlet(np.ones(args.states), size=args.states)
    startprob = rng.dirichlet(np.ones(args.states))
    log_emit = rng.normal(scale=3.0, size=(args.batch, args.frames, args.states))
    device = pick_device(args.device)

    def run_hmmlearn():
        return [hmmlearn_posteriors(startprob, transmat, log_emit[b]) for b in range(args.batch)]

    def run_hmmlearn_scaling():
        return [hmmlearn_posteriors_scaling(startprob, transmat, log_emit[b]) for b in range(args.batch)]

    dtype = getattr(torch, args.dtype)
    e = torch.tensor(log_emit, dtype=dtype, device=device)
    lt = torch.tensor(np.log(transmat), dtype=dtype, device=device)
    li = torch.tensor(np.log(startprob), dtype=dtype, device=device)

    def run_dlgm():
        post = forward_backward(e, lt, li)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return post

    ref, ours = run_hmmlearn(), run_dlgm()  # also a warm-up
    ll_ref = np.array([r[0] for r in ref])
    ll_scaling = np.array([r[0] for r in run_hmmlearn_scaling()])
    assert np.allclose(ll_scaling, ll_ref, rtol=1e-9), "hmmlearn's two implementations disagree"
    rel = np.abs(ours.loglik.double().cpu().numpy() - ll_ref) / np.abs(ll_ref)
    gap = max(np.abs(ours.gamma[b].double().cpu().numpy() - ref[b][1]).max() for b in range(args.batch))
    # float32 carries ~7 digits of log-likelihoods of ~4,000 nats: posteriors agree to ~1e-2
    assert rel.max() < 1e-5 and gap < 2e-2, (rel.max(), gap)
    t_log = best_of(run_hmmlearn, args.repeats)
    t_scaling = best_of(run_hmmlearn_scaling, args.repeats)
    t_ref = min(t_log, t_scaling)
    t_ours = best_of(run_dlgm, args.repeats)
    print(f"forward-backward, {args.batch} utterances x {args.frames} frames x {args.states} states "
          f"(torch threads: {torch.get_num_threads()}, device: {device})")
    print(f"  hmmlearn forward_log/backward_log (one utterance at a time):         {1e3 * t_log / args.batch:8.2f} ms/utterance")
    print(f"  hmmlearn forward_scaling/backward_scaling (one utterance at a time): {1e3 * t_scaling / args.batch:8.2f} ms/utterance")
    print(f"  dlgm.hmm.inference (batched over utterances, {args.dtype}):           {1e3 * t_ours / args.batch:8.2f} ms/utterance")
    print(f"  speed-up over hmmlearn's faster one: {t_ref / t_ours:.1f}x   (max |d loglik|/|loglik| {rel.max():.1e}, max |d posterior| {gap:.1e})")


if __name__ == "__main__":
    main()
