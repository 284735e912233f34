"""HMM forward-backward: dlgm (batched over utterances, log space) against hmmlearn's compiled
forward/backward run one utterance at a time (its log-space and its scaling implementation; the
faster of the two is the peer), on the same random HMM and emissions (default 32 utterances x
1,000 frames x 100 states). Both give log-likelihoods and state posteriors; they are checked to
agree before timing. Target: dlgm at least 8x faster (ratio <= 0.125).
Usage: python -m benchmarks.bench_forward_backward [--threads 2] [--batch 32 --frames 1000 --states 100]
"""
from __future__ import annotations

import numpy as np
import torch
from hmmlearn import _hmmc

from benchmarks.common import paired, row, setup, standalone
from dlgm.hmm.inference import forward_backward


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


def run(args) -> list:
    device = setup(args)
    batch, frames, states = (2, 20, 5) if args.tiny else (args.batch, args.frames, args.states)
    rng = np.random.default_rng(0)
    transmat = rng.dirichlet(np.ones(states), size=states)
    startprob = rng.dirichlet(np.ones(states))
    log_emit = rng.normal(scale=3.0, size=(batch, frames, states))
    e = torch.tensor(log_emit, dtype=torch.float32, device=device)
    lt = torch.tensor(np.log(transmat), dtype=torch.float32, device=device)
    li = torch.tensor(np.log(startprob), dtype=torch.float32, device=device)

    def ours():
        return forward_backward(e, lt, li)

    def peer_log():
        return [hmmlearn_posteriors(startprob, transmat, log_emit[b]) for b in range(batch)]

    def peer_scaling():
        return [hmmlearn_posteriors_scaling(startprob, transmat, log_emit[b]) for b in range(batch)]

    ref, post = peer_log(), ours()
    ll_ref = np.array([r[0] for r in ref])
    rel = np.abs(post.loglik.double().cpu().numpy() - ll_ref) / np.abs(ll_ref)
    gap = max(np.abs(post.gamma[b].double().cpu().numpy() - ref[b][1]).max() for b in range(batch))
    # float32 carries ~7 digits of log-likelihoods of ~4,000 nats: posteriors agree to ~1e-2
    if not (rel.max() < 1e-5 and gap < 2e-2):
        raise AssertionError(f"dlgm and hmmlearn disagree: relative log-likelihood gap {rel.max():.1e}, "
                             f"posterior gap {gap:.1e}")
    t = paired([ours, peer_log, peer_scaling], args.repeats, device)
    peer = min(t[1:], key=lambda m: m[0])
    which = "log" if peer is t[1] else "scaling"
    name = f"HMM forward-backward, {batch} utterances x {frames} frames x {states} states"
    return [row("forward_backward", name, "utterance", t[0], f"hmmlearn ({which}, the faster of its two)", peer, "peer", args, device,
                0.125, scale=batch)]


def _args(p):
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--frames", type=int, default=1000)
    p.add_argument("--states", type=int, default=100)


main = standalone(run, __doc__, _args)

if __name__ == "__main__":
    main()
