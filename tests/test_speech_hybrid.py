"""Hybrid decoding with the true posteriors; BLSTM training: learns, is reproducible, stops on NaN;
the papers' weight noise."""
import math

import pytest
import torch

from dlgm.hmm.decode import decode
from dlgm.hmm.graph import bigram, loop_graph
from dlgm.speech.hybrid import scaled_likelihood_scorer, state_log_priors
from dlgm.speech.model import BLSTM, WeightNoise
from dlgm.speech.train import SeqData, train
from dlgm.training import RunLoops, TrainingDiverged
from speech_synthetic import make_corpus


pytestmark = pytest.mark.usefixtures("one_thread")


class TruePosteriors(torch.nn.Module):
    """Stands in for a network: outputs log p(state | x_t) of the generating Gaussians and priors."""

    def __init__(self, means, log_priors):
        super().__init__()
        self.means, self.log_priors = means, log_priors.float()

    def forward(self, x, lengths):
        loglik = -0.5 * torch.cdist(x, self.means.unsqueeze(0)).pow(2)
        return (loglik + self.log_priors).log_softmax(-1)


def test_decoding_true_posteriors_recovers_reference():
    corpus = make_corpus(30, phones=5, dim=8, seed=2, separation=2.0)
    priors = state_log_priors(corpus.frame_states, 15)
    score = scaled_likelihood_scorer(TruePosteriors(corpus.means, priors), priors)
    log_self = torch.full((15,), math.log(corpus.self_loop), dtype=torch.float64)
    start, big, end = bigram(corpus.phones, 5)
    graph = loop_graph([[p] for p in range(5)], log_self, 3, start, big, end)
    units, states = decode(score, graph, corpus.feats, batch_size=8)
    assert sum(u == r for u, r in zip(units, corpus.phones)) >= 28
    frames = torch.cat(states) == torch.cat(corpus.frame_states)
    assert frames.float().mean() > 0.97


@pytest.mark.parametrize("prior_scale", [0.0, 0.5, 1.0])
def test_scaled_likelihoods_divide_by_the_priors_to_the_prior_scale(prior_scale):
    corpus = make_corpus(4, phones=3, dim=4, seed=1)
    priors = state_log_priors(corpus.frame_states, 9)
    net = TruePosteriors(corpus.means, priors)
    x, lengths = corpus.feats[0][None], torch.tensor([len(corpus.feats[0])])
    got = scaled_likelihood_scorer(net, priors, 2.0, prior_scale)(x, lengths)
    # log p(x | state) + const when prior_scale = 1: the generating Gaussians' log-likelihood up to a per-frame constant
    want = 2.0 * (net(x, lengths) - prior_scale * priors.float())
    torch.testing.assert_close(got, want)
    if prior_scale == 1.0:
        loglik = -0.5 * torch.cdist(x, corpus.means.unsqueeze(0)).pow(2)
        torch.testing.assert_close(got - got[..., :1], 2.0 * (loglik - loglik[..., :1]), atol=1e-4, rtol=1e-4)


def _cfg(**over):
    cfg = {"optimizer": "adam", "learning_rate": 0.01, "momentum": 0.9, "batch_size": 8, "epochs": 3,
           "weight_noise": 0.0, "clip_norm": 5.0}
    cfg.update(over)
    return cfg


def _data(kind, seed):
    corpus = make_corpus(24, phones=4, dim=6, seed=seed)
    targets = corpus.frame_states if kind == "ce" else [torch.tensor(p) + 1 for p in corpus.phones]
    return SeqData(corpus.feats[:16], targets[:16]), SeqData(corpus.feats[16:], targets[16:])


@pytest.mark.parametrize("kind", ["ce", "ctc"])
def test_training_learns_and_is_reproducible(kind, tmp_path):
    outputs = 12 if kind == "ce" else 5
    results = []
    for run in range(2):
        torch.manual_seed(0)
        model = BLSTM(6, 16, 2, outputs)
        tr, dev = _data(kind, seed=4)
        best = train(model, tr, dev, kind, _cfg(weight_noise=0.01), seed=0,
                     loops=RunLoops(tmp_path / str(run), identity={"k": kind}), stage=kind)
        curve = (tmp_path / str(run) / f"curve_{kind}.csv").read_text().splitlines()
        results.append((curve, [p.detach().clone() for p in best.parameters()]))
    first, last = results[0][0][1].split(","), results[0][0][-1].split(",")
    assert float(last[2]) < float(first[2])  # train loss fell
    assert [r.split(",")[:-1] for r in results[0][0]] == [r.split(",")[:-1] for r in results[1][0]]
    for a, b in zip(results[0][1], results[1][1]):
        assert torch.equal(a, b)


def test_nan_stops_with_a_clear_error(tmp_path):
    model = BLSTM(6, 8, 1, 12)
    tr, dev = _data("ce", seed=5)
    tr.feats[0] = tr.feats[0].clone()
    tr.feats[0][0, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match="hybrid.*epoch 1"):
        train(model, tr, dev, "ce", _cfg(epochs=1), seed=0, loops=RunLoops(), stage="hybrid")


def test_weight_noise_adds_the_fresh_draws_and_takes_them_off_again():
    """Inside the block each weight is clean + randn(shape) * std from the same generator, as when
    the noise was drawn into fresh tensors (every tensor here has 16 values or more, torch's
    vectorised sampler); after it, the weights are (clean + noise) - noise again, a gradient taken
    inside reaches them, and an error inside still removes the noise."""
    torch.manual_seed(0)
    model = BLSTM(4, 8, 2, 16)
    clean = [p.detach().clone() for p in model.parameters()]
    noisy = WeightNoise(model, 0.075, torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    for _ in range(2):  # the buffers are reused: the second draw continues the generator
        draws = [torch.randn(c.shape, generator=gen) * 0.075 for c in clean]
        with noisy():
            for p, c, d in zip(model.parameters(), clean, draws):
                assert torch.equal(p.detach(), c + d)
            model(torch.randn(1, 3, 4), torch.tensor([3])).sum().backward()
        for p, c, d in zip(model.parameters(), clean, draws):
            assert torch.equal(p.detach(), (c + d) - d)
            assert p.grad is not None and bool(p.grad.abs().sum() > 0)
        clean = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(RuntimeError, match="inside"):
        with noisy():
            raise RuntimeError("inside")
    for p, c in zip(model.parameters(), clean):
        assert torch.allclose(p.detach(), c, atol=1e-7)
    clean = [p.detach().clone() for p in model.parameters()]
    off = WeightNoise(model, 0.0)
    assert off.buffers == []
    with off():
        for p, c in zip(model.parameters(), clean):
            assert torch.equal(p.detach(), c)
