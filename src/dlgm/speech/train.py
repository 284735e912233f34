"""Training the BLSTM with frame cross-entropy (hybrid), CTC, or the full-sum HMM likelihood, through
the shared EpochLoop.

Data for the whole run lives on the device as lists of per-utterance tensors; a mini-batch is a
padded slice of utterances of similar length. The loss is summed over frames (CE) or labels
(CTC) or frames (full-sum: -log p(x | transcript's HMM), dlgm.hmm.fullsum) and averaged over the utterances of a batch, as in Graves' per-sequence updates. The model
with the lowest dev loss is kept (early-stopping selection, as in both papers).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F

from dlgm.hmm.batching import length_batches, pad, valid_mask
from dlgm.hmm.fullsum import full_sum_nll
from dlgm.speech.hybrid import log_frequencies
from dlgm.speech.model import BLSTM, WeightNoise
from dlgm.training import RunLoops


@dataclass
class SeqData:
    feats: list[torch.Tensor]  # [T, D] on the device
    targets: list[torch.Tensor]  # CE: [T] state ids; CTC: [L] label ids (1..C-1); full-sum: [L] phone ids
    # full-sum only: the transcript HMM's fixed self-loop log-probabilities [E] and states per phone
    log_self: torch.Tensor | None = None
    states_per_phone: int = 0

    @property
    def lengths(self) -> list[int]:
        return [len(f) for f in self.feats]


class LossPrior:
    """State priors inside the full-sum loss: frames score log p(s | x) - scale * log p(s), where
    p(s) is the network's mean posterior over training frames: with ``window`` 0, those of the
    previous epoch (uniform in the first epoch, which shifts every path equally and changes
    nothing); with ``window`` > 0, an exponentially decaying mean whose weights fall by e every
    ``window`` training utterances, refreshed after every update. The priors are not trained
    through, and a batch is scored by the priors from before it; a state the network puts on many
    frames is discounted, which counters a full-sum alignment where one state absorbs the silences."""

    def __init__(self, states: int, scale: float, device: torch.device, window: int = 0, floor: float = 1e-5):
        self.scale, self.window, self.floor = scale, window, floor
        self.log_prior = torch.full((states,), -math.log(states), device=device)
        self.sums = torch.zeros(states, dtype=torch.float64, device=device)

    def __call__(self, log_post: torch.Tensor, lengths: torch.Tensor, observe: bool) -> torch.Tensor:
        scored = log_post - self.scale * self.log_prior.to(log_post.dtype)
        if observe:
            real = valid_mask(lengths.to(log_post.device), log_post.shape[1])
            observed = (log_post.detach().exp() * real.unsqueeze(2)).sum((0, 1)).double()
            if self.window > 0:
                self.sums.mul_(math.exp(-len(lengths) / self.window)).add_(observed)
                self.log_prior.copy_(log_frequencies(self.sums, self.floor))
            else:
                self.sums += observed
        return scored

    def next_epoch(self) -> None:
        """Epoch priors (window 0): the observed frames' mean posterior becomes the prior and the
        counts start again. A running prior (window > 0) is already current: nothing to do."""
        if self.window == 0:
            self.log_prior.copy_(log_frequencies(self.sums, self.floor))
            self.sums.zero_()


def _batch(data: SeqData, idx: list[int]):
    x, lengths = pad([data.feats[i] for i in idx])
    host_lengths = torch.tensor([len(data.feats[i]) for i in idx])
    return x, lengths, host_lengths


def batch_loss(model: BLSTM, data: SeqData, idx: list[int], kind: str, prior: LossPrior | None = None):
    """(summed loss, number of scored units, correct frames or None) for one batch; ``prior``
    (full-sum only) divides the posteriors by state priors and, in training mode, observes them."""
    x, lengths, host_lengths = _batch(data, idx)
    scores = model(x, host_lengths)
    if kind == "ce":
        target, _ = pad([data.targets[i] for i in idx], value=-100)
        loss = F.cross_entropy(scores.reshape(-1, scores.shape[-1]), target.reshape(-1), ignore_index=-100, reduction="sum")
        correct = ((scores.argmax(-1) == target) & (target >= 0)).sum()
        return loss, int(host_lengths.sum()), correct
    if kind == "fullsum":
        transcripts = [data.targets[i].tolist() for i in idx]
        log_post = scores.log_softmax(-1)
        if prior is not None:
            log_post = prior(log_post, lengths, observe=model.training)
        nll = full_sum_nll(log_post, lengths, transcripts, data.log_self, data.states_per_phone)
        return nll.sum(), int(host_lengths.sum()), None
    log_probs = scores.log_softmax(-1).transpose(0, 1)
    labels = [data.targets[i] for i in idx]
    target_lengths = torch.tensor([len(t) for t in labels])
    loss = F.ctc_loss(log_probs, torch.cat(labels), host_lengths, target_lengths, blank=0, reduction="sum", zero_infinity=True)
    return loss, int(target_lengths.sum()), None


@torch.no_grad()
def evaluate(model: BLSTM, data: SeqData, kind: str, batch_size: int, prior: LossPrior | None = None) -> dict:
    model.eval()
    device = data.feats[0].device
    total, correct, count = torch.zeros((), device=device), torch.zeros((), device=device), 0
    for idx in length_batches(data.lengths, batch_size):
        loss, n, right = batch_loss(model, data, idx, kind, prior)
        total += loss
        count += n
        if right is not None:
            correct += right
    out = {"loss": total / count}
    if kind == "ce":
        out["frame_accuracy"] = correct / count
    return out


def train_step(model: BLSTM, data: SeqData, idx: list[int], kind: str, opt: torch.optim.Optimizer,
               noisy: WeightNoise, clip_norm: float, prior: LossPrior | None = None) -> tuple[torch.Tensor, int]:
    """One update on the batch ``idx``: the gradient of the mean loss at noisy weights (the noise is
    removed before the step), clipped to ``clip_norm`` when > 0. Returns (summed loss, scored units)."""
    with noisy():
        loss, n, _ = batch_loss(model, data, idx, kind, prior)
        opt.zero_grad(set_to_none=True)
        (loss / len(idx)).backward()
    if clip_norm > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    opt.step()
    return loss.detach(), n


def train(model: BLSTM, train_data: SeqData, dev_data: SeqData, kind: str, cfg: Mapping[str, Any], *, seed: int,
          loops: RunLoops, stage: str, loss_prior_scale: float = 0.0, loss_prior_window: int = 0) -> BLSTM:
    """Train for cfg['epochs'] epochs in the EpochLoop ``loops(stage, ...)`` makes (RunLoops);
    returns the model with the best dev loss. ``loss_prior_scale`` > 0 (full-sum only): the loss
    divides the posteriors by LossPrior's state priors to that power, dev loss included; they are
    the previous epoch's mean posterior, or (``loss_prior_window`` > 0) a running mean over about
    that many training utterances, refreshed every update. The priors
    move between epochs, yet at power 1 the dev losses stay comparable: posterior / prior is
    p(x_t | s) / p(x_t) (Bourlard & Morgan) when the prior is the network's mean posterior, so the
    loss is -log p(x | transcript) up to the dev frames' sum of log p(x_t), the same every epoch.
    At other powers it is a heuristic criterion."""
    device = train_data.feats[0].device
    if cfg["optimizer"] == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg["learning_rate"], momentum=cfg["momentum"])
    else:
        opt = torch.optim.Adam(model.parameters(), lr=cfg["learning_rate"])
    best = copy.deepcopy(model)
    best_dev = torch.full((), float("inf"), device=device)
    shuffle = torch.Generator().manual_seed(seed)
    noise = torch.Generator(device=device).manual_seed(seed + 1)
    noisy = WeightNoise(model, cfg["weight_noise"], noise)
    prior = None
    state = {"model": model, "best": best, "optimizer": opt, "best_dev": best_dev}
    if loss_prior_window > 0 and loss_prior_scale <= 0:
        raise ValueError(f"loss_prior_window {loss_prior_window}: a window for the loss's state priors needs loss_prior_scale > 0")
    if loss_prior_scale > 0:
        if kind != "fullsum":
            raise ValueError(f"loss_prior_scale {loss_prior_scale}: state priors in the loss need kind 'fullsum', not {kind!r}")
        prior = LossPrior(model.out.out_features, loss_prior_scale, device, loss_prior_window)
        state.update(loss_log_prior=prior.log_prior, loss_prior_sums=prior.sums)

    def epoch_fn(epoch: int) -> dict:
        model.train()
        total, count = torch.zeros((), device=device), 0
        for idx in length_batches(train_data.lengths, cfg["batch_size"], shuffle):
            loss, n = train_step(model, train_data, idx, kind, opt, noisy, cfg["clip_norm"], prior)
            total += loss
            count += n
        dev = evaluate(model, dev_data, kind, cfg["batch_size"], prior)
        if prior is not None:
            prior.next_epoch()
        if bool(dev["loss"] < best_dev):  # the one host sync of the epoch
            best_dev.copy_(dev["loss"])
            best.load_state_dict(model.state_dict())
        return {"train_loss": total / count, **{f"dev_{k}": v for k, v in dev.items()}}

    loops(stage, cfg["epochs"], state, {"shuffle": shuffle, "noise": noise}).run(epoch_fn)
    best.eval()
    return best
