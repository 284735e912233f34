"""Full-sum hybrid end to end on synthetic speech; hand-label targets; the summary over folds."""
import math

import pytest
import torch

from dlgm.hmm.decode import decode
from dlgm.hmm.fullsum import full_sum_nll
from dlgm.hmm.graph import bigram, loop_graph
from dlgm.speech.hybrid import occupancy_log_priors, occupancy_shape, scaled_likelihood_scorer
from dlgm.speech.model import BLSTM
from dlgm.speech.scoring import error_rate, fold_summary
from dlgm.speech.systems import hand_label_states, start_from_hybrid
from dlgm.speech.train import LossPrior, SeqData, batch_loss, train
from dlgm.training import RunLoops
from speech_synthetic import make_corpus

pytestmark = pytest.mark.usefixtures("one_thread")

PHONES, K = 4, 3


def _split(corpus, lo, hi, log_self):
    return SeqData(corpus.feats[lo:hi], [torch.tensor(p) for p in corpus.phones[lo:hi]], log_self, K)


def test_fullsum_learns_from_a_flat_start_and_decodes_above_chance(tmp_path):
    corpus = make_corpus(56, phones=PHONES, dim=6, seed=3, separation=2.0)
    log_self = torch.full((PHONES * K,), math.log(corpus.self_loop))
    tr, dev = _split(corpus, 0, 40, log_self), _split(corpus, 40, 48, log_self)
    torch.manual_seed(0)
    cfg = {"optimizer": "adam", "learning_rate": 0.02, "momentum": 0.9, "batch_size": 8, "epochs": 12,
           "weight_noise": 0.0, "clip_norm": 5.0}
    model = train(BLSTM(6, 24, 1, PHONES * K), tr, dev, "fullsum", cfg, seed=0,
                  loops=RunLoops(tmp_path, identity={"t": 1}), stage="fullsum")
    rows = [r.split(",") for r in (tmp_path / "curve_fullsum.csv").read_text().splitlines()]
    header, first, last = rows[0], rows[1], rows[-1]
    col = header.index("train_loss")
    assert float(last[col]) < 0.5 * float(first[col])
    priors = occupancy_log_priors(model, tr.feats, corpus.phones[:40], log_self, K, batch_size=8)
    assert torch.allclose(priors.exp().sum(), torch.tensor(1.0, dtype=torch.float64), atol=1e-6)
    start, big, end = bigram(corpus.phones[:40], PHONES)
    graph = loop_graph([[p] for p in range(PHONES)], log_self.double(), K, start, big, end)
    units, states = decode(scaled_likelihood_scorer(model, priors), graph, corpus.feats[48:], batch_size=8)
    per = error_rate(corpus.phones[48:], units)
    frames = (torch.cat(states) == torch.cat(corpus.frame_states[48:])).float().mean()
    # chance: 1 of 4 phones (PER ~0.75 or worse), 1 of 12 states per frame
    assert per < 0.3, per
    assert frames > 0.6, frames


def test_fullsum_batch_loss_does_not_depend_on_padding():
    corpus = make_corpus(6, phones=PHONES, dim=6, seed=1)
    log_self = torch.full((PHONES * K,), math.log(0.5))
    data = _split(corpus, 0, 6, log_self)
    torch.manual_seed(0)
    model = BLSTM(6, 8, 1, PHONES * K).eval()
    with torch.no_grad():
        together, _, _ = batch_loss(model, data, list(range(6)), "fullsum")
        alone = sum(batch_loss(model, data, [i], "fullsum")[0] for i in range(6))
    assert torch.allclose(together, alone, rtol=1e-5)


def test_loss_prior_is_the_mean_posterior_of_the_observed_real_frames():
    torch.manual_seed(0)
    log_post = torch.randn(2, 5, 6).log_softmax(-1)
    log_post[1, 3:] = torch.tensor([0.0] + [-50.0] * 5)  # padding: must not count
    lengths = torch.tensor([5, 3])
    prior = LossPrior(6, 0.5, torch.device("cpu"))
    assert torch.allclose(prior(log_post, lengths, observe=True), log_post + 0.5 * math.log(6))
    prior(torch.zeros(1, 5, 6), torch.tensor([5]), observe=False)  # evaluation: not counted
    prior.next_epoch()
    real = torch.cat([log_post[0], log_post[1, :3]]).exp().double()
    assert torch.allclose(prior.log_prior.exp().double(), real.mean(0), atol=1e-6)
    shifted = prior(log_post, lengths, observe=False)
    assert torch.allclose(shifted, log_post - 0.5 * prior.log_prior)
    assert float(prior.sums.sum()) == 0.0  # counts start again each epoch


def test_running_loss_prior_is_the_decayed_mean_posterior_and_scores_each_batch_by_the_one_before():
    """window > 0: after every observed batch the prior is sum_b w_b * (batch b's posterior sums) /
    sum of all, w_b = exp(-(utterances observed after b) / window); a batch is scored by the prior
    from before it; evaluation and next_epoch leave it as it is."""
    torch.manual_seed(2)
    batches = [(torch.randn(2, 4, 5).log_softmax(-1), torch.tensor([4, 2])),
               (torch.randn(1, 3, 5).log_softmax(-1), torch.tensor([3])),
               (torch.randn(3, 2, 5).log_softmax(-1), torch.tensor([2, 1, 2]))]
    window = 3
    prior = LossPrior(5, 1.0, torch.device("cpu"), window=window)
    before = prior.log_prior.clone()
    for b, (log_post, lengths) in enumerate(batches):
        assert torch.allclose(prior(log_post, lengths, observe=True), log_post - before)
        expected = torch.zeros(5, dtype=torch.float64)
        for c, (lp, ln) in enumerate(batches[: b + 1]):
            after = sum(len(batches[d][1]) for d in range(c + 1, b + 1))
            frames = torch.cat([lp[i, : int(n)] for i, n in enumerate(ln)]).exp().double()
            expected += math.exp(-after / window) * frames.sum(0)
        assert torch.allclose(prior.log_prior.exp().double(), expected / expected.sum(), atol=1e-6), b
        before = prior.log_prior.clone()
    prior(torch.zeros(1, 5, 5), torch.tensor([5]), observe=False)
    prior.next_epoch()
    assert torch.equal(prior.log_prior, before)


def test_uniform_loss_prior_shifts_every_path_equally():
    """The first epoch's uniform prior adds scale * log E to every frame of every path: the loss
    moves by frames * scale * log E and its gradient does not move at all."""
    torch.manual_seed(1)
    log_self = torch.full((2 * K,), math.log(0.6))
    scores = torch.randn(2, 9, 2 * K).log_softmax(-1).requires_grad_(True)
    lengths, transcripts = torch.tensor([9, 7]), [[0, 1], [1]]
    plain = full_sum_nll(scores, lengths, transcripts, log_self, K)
    (g_plain,) = torch.autograd.grad(plain.sum(), scores)
    shifted_scores = LossPrior(2 * K, 0.7, torch.device("cpu"))(scores, lengths, observe=False)
    shifted = full_sum_nll(shifted_scores, lengths, transcripts, log_self, K)
    (g_shifted,) = torch.autograd.grad(shifted.sum(), scores)
    assert torch.allclose(plain - shifted, lengths * 0.7 * math.log(2 * K), atol=1e-5)
    assert torch.allclose(g_plain, g_shifted, atol=1e-6)


@pytest.mark.parametrize("window", [0, 4])
def test_training_with_the_loss_prior_resumes_exactly(tmp_path, window):
    """The priors are part of the checkpoint: 2 epochs, then a rerun to 3, ends where 3 epochs
    in one go end (a resume with a uniform prior would not), epoch or running priors."""
    corpus = make_corpus(12, phones=PHONES, dim=4, seed=2)
    log_self = torch.full((PHONES * K,), math.log(corpus.self_loop))
    tr, dev = _split(corpus, 0, 8, log_self), _split(corpus, 8, 12, log_self)
    cfg = {"optimizer": "adam", "learning_rate": 0.02, "momentum": 0.9, "batch_size": 4, "epochs": 3,
           "weight_noise": 0.0, "clip_norm": 5.0}

    def run(where, epochs):
        torch.manual_seed(0)
        model = BLSTM(4, 8, 1, PHONES * K)
        return train(model, tr, dev, "fullsum", {**cfg, "epochs": epochs}, seed=0, stage="fullsum",
                     loops=RunLoops(where, identity={"t": 1}), loss_prior_scale=1.0, loss_prior_window=window)

    whole = run(tmp_path / "whole", 3)
    run(tmp_path / "parts", 2)
    resumed = run(tmp_path / "parts", 3)
    saved = torch.load(tmp_path / "parts" / "checkpoint_fullsum.pt", weights_only=True)["state"]
    assert not torch.allclose(saved["loss_log_prior"], torch.full((PHONES * K,), -math.log(PHONES * K)))
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert (tmp_path / "whole" / "curve_fullsum.csv").read_text().splitlines()[1:] != []
    with pytest.raises(ValueError, match="loss_prior_scale 1.0.*'ce'"):
        train(BLSTM(4, 8, 1, PHONES * K), tr, dev, "ce", cfg, seed=0, stage="x", loops=RunLoops(), loss_prior_scale=1.0)
    with pytest.raises(ValueError, match="loss_prior_window 4.*loss_prior_scale > 0"):
        train(BLSTM(4, 8, 1, PHONES * K), tr, dev, "fullsum", cfg, seed=0, stage="x", loops=RunLoops(), loss_prior_window=4)


def test_the_start_from_the_hybrid_is_its_network_and_what_does_not_fit_is_refused():
    torch.manual_seed(1)
    weights = BLSTM(6, 8, 2, PHONES * K).state_dict()
    hybrid = {"model": weights, "priors": torch.zeros(PHONES * K)}  # a hybrid's model.pt
    cfg = {"init_from_hybrid": True, "init_ce_epochs": 0, "hidden": 8, "layers": 2}
    torch.manual_seed(2)
    model = BLSTM(6, 8, 2, PHONES * K)
    flat = {k: v.clone() for k, v in model.state_dict().items()}
    start_from_hybrid(model, {**cfg, "init_from_hybrid": False}, None)
    assert all(torch.equal(flat[k], v) for k, v in model.state_dict().items())  # a flat start stays flat
    start_from_hybrid(model, cfg, hybrid)
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert not torch.equal(flat["out.weight"], weights["out.weight"])
    with pytest.raises(ValueError, match="init_from_hybrid is True but the trained hybrid was not given"):
        start_from_hybrid(model, cfg, None)
    with pytest.raises(ValueError, match="init_from_hybrid is False but the trained hybrid was given"):
        start_from_hybrid(model, {**cfg, "init_from_hybrid": False}, hybrid)
    with pytest.raises(ValueError, match="init_from_hybrid and init_ce_epochs 3 are two starts"):
        start_from_hybrid(model, {**cfg, "init_ce_epochs": 3}, hybrid)
    with pytest.raises(ValueError, match="not the full-sum's \\(hidden 16, layers 2, 12 states\\)"):
        start_from_hybrid(BLSTM(6, 16, 2, PHONES * K), {**cfg, "hidden": 16}, hybrid)


def test_occupancy_priors_are_the_forward_backward_occupancies():
    """Priors equal the normalised forward-backward occupancies (the loss gradient, taken here on
    a leaf tensor); a one-phone transcript puts all its frames on that phone's states."""
    class Constant(torch.nn.Module):
        def forward(self, x, lengths):
            return torch.zeros(x.shape[0], x.shape[1], 2 * K)

    feats = [torch.zeros(5, 1), torch.zeros(7, 1)]
    log_self = torch.full((2 * K,), math.log(0.5))
    priors = occupancy_log_priors(Constant(), feats, [[1], [0]], log_self, K, batch_size=2, floor=0.0)
    occupancy = torch.zeros(2 * K, dtype=torch.float64)
    for x, phones in zip(feats, ([1], [0])):
        scores = torch.full((1, len(x), 2 * K), -math.log(2 * K), requires_grad=True)
        full_sum_nll(scores, torch.tensor([len(x)]), [phones], log_self, K).sum().backward()
        occupancy -= scores.grad.double().sum((0, 1))
    assert torch.allclose(priors.exp(), occupancy / 12, atol=1e-6)
    assert torch.allclose(priors.exp()[:K].sum(), torch.tensor(7 / 12, dtype=torch.float64))


def test_occupancy_shape_exposes_the_degenerate_alignment():
    """A network that scores one state far above the rest: the full-sum path gives every other
    state of the transcript [0, 1, 0] its single minimum frame and that state the other 11 of 20:
    phone 0 holds 17 frames (11 + its 3 states twice), the shape of the flat-start TIMIT-sample runs."""
    class OneState(torch.nn.Module):
        def forward(self, x, lengths):
            scores = torch.full((x.shape[0], x.shape[1], 2 * K), -60.0)
            scores[..., 0] = 0.0
            return scores

    log_self = torch.full((2 * K,), math.log(0.5))
    priors = occupancy_log_priors(OneState(), [torch.zeros(20, 1)], [[0, 1, 0]], log_self, K, batch_size=1)
    shape = occupancy_shape(priors, [[0, 1, 0]], 20, K)
    assert shape["train_top_phone_share"] == pytest.approx(17 / 20, abs=1e-6)
    assert priors.exp()[0] == pytest.approx(13 / 20, abs=1e-6)
    assert shape["train_min_duration_share"] == pytest.approx(9 / 20)
    assert int(priors.exp().argmax()) == 0


def test_hand_label_states_split_each_phone_run_evenly():
    frames = torch.tensor([2, 2, 2, 2, 2, 2, 0, 0, 1])
    (states,) = hand_label_states([frames], 3)
    assert states.tolist() == [6, 6, 7, 7, 8, 8, 0, 1, 3]


def test_fold_summary_mean_and_sample_spread():
    out = fold_summary([{"test_per": 0.2, "test_der": 0.1}, {"test_per": 0.4}])
    assert out["folds"] == 2
    assert out["test_per"] == pytest.approx(0.3)
    assert out["test_per_fold_sd"] == pytest.approx(math.sqrt(0.02))
    assert "test_der" not in out
    with pytest.raises(ValueError, match="no runs"):
        fold_summary([])


def test_folds_command_writes_the_summary_record(tmp_path):
    from dlgm.cli import main
    from dlgm.metrics import read_metrics, write_metrics

    paths = []
    for fold, per in enumerate((0.5, 0.7)):
        path = tmp_path / f"timit_sample_fold{fold}_hybrid" / "metrics.json"
        path.parent.mkdir()
        write_metrics(path, paper="rnn_hmm", variant=f"timit_sample_fold{fold}_hybrid", seed=0, split="test",
                      metrics={"test_per": per}, wall_seconds=10.0 + fold, device="cpu", config={"hidden": 4})
        paths.append(str(path))
    out = tmp_path / "folds.json"
    main(["rnn_hmm", "folds", "--variant", "timit_sample_hybrid", "--metrics", *paths, "--out", str(out)])
    record = read_metrics(out)
    assert record["variant"] == "timit_sample_hybrid" and record["wall_seconds"] == 21.0
    assert record["metrics"]["test_per"] == pytest.approx(0.6)
    assert record["metrics"]["test_per_fold_sd"] == pytest.approx(math.sqrt(0.02))
    assert record["extra"]["runs"] == ["timit_sample_fold0_hybrid", "timit_sample_fold1_hybrid"]
