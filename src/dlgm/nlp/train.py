"""Training and scoring of the window network (WLL or SLL) with the shared EpochLoop.

Stochastic gradient with per-layer rates lambda / fan-in (Collobert et al. 2011, Sec. 3.5 and
Table 5) on mini-batches of sentences with the summed loss; model selection on a validation
split each epoch (the best epoch's weights are kept and survive a resume).
"""
from __future__ import annotations

import copy
import logging
from typing import Callable, Sequence

import numpy as np
import torch

from dlgm.nlp.batches import EncodedSplit, ordered_batches, bucketed_batches
from dlgm.nlp.evaluate import chunk_scores, token_accuracy
from dlgm.nlp.tags import to_iob2
from dlgm.nlp.window import WindowNetwork
from dlgm.training import RunLoops

log = logging.getLogger("dlgm")


class FanInSGD:
    """Plain SGD with one rate per parameter: lambda / fan-in of its layer (or lambda).

    Written out rather than torch.optim.SGD: the step is two lines, there is no state to
    checkpoint, and constructing a torch optimizer imports torch._dynamo (seconds per job).
    """

    def __init__(self, model: WindowNetwork, lr: float, scale_by_fan_in: bool):
        fans = model.fan_in()
        self.params = [p for _, p in model.named_parameters()]
        self.base_rates = [lr / fans[name] if scale_by_fan_in else lr for name, _ in model.named_parameters()]
        self.rates = list(self.base_rates)

    def scale(self, factor: float) -> None:
        self.rates = [rate * factor for rate in self.base_rates]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for p, rate in zip(self.params, self.rates):
            if p.grad is not None:
                p.add_(p.grad, alpha=-rate)


@torch.no_grad()
def predict(model: WindowNetwork, split: EncodedSplit, batch_size: int) -> list[list[int]]:
    """Best tag indices per sentence; one device-to-host copy for the whole split."""
    was_training = model.training
    model.eval()
    out = torch.full_like(split.words, -1)
    for idx in ordered_batches(split.lengths, batch_size):
        rows = torch.from_numpy(idx).to(split.words.device)
        longest = int(split.lengths[idx].max())
        words, caps, mask = split.words[rows, :longest], split.caps[rows, :longest], split.mask[rows, :longest]
        out[rows, :longest] = model.predict(model(words, caps), mask)
    model.train(was_training)
    host = out.cpu().numpy()
    return [host[i, :n].tolist() for i, n in enumerate(split.lengths)]


def score(task: str, gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """``chunk`` tasks: F1 over chunks (conlleval rules) and per type; ``pos``: accuracy."""
    if task == "pos":
        return {"accuracy": token_accuracy(gold, predicted)}
    result = chunk_scores(gold, predicted)
    # accuracy over IOB2 tags, so that it does not depend on the scheme trained with
    result["accuracy"] = token_accuracy([to_iob2(s) for s in gold], [to_iob2(s) for s in predicted])
    return result


def fit(model: WindowNetwork, train: EncodedSplit, validate: Callable[[], float], cfg: dict,
        loops: RunLoops) -> list[dict]:
    """Train ``cfg["epochs"]`` epochs in the EpochLoop ``loops("train", ...)`` makes (RunLoops: it
    names the checkpoint and curve); leave ``model`` holding the weights of the best validation epoch."""
    device = train.words.device
    optimizer = FanInSGD(model, cfg["lr"], cfg["lr_fan_in"])
    best_model = copy.deepcopy(model)
    best = torch.full((), -1.0)
    # numpy's global stream shuffles the batches: EpochLoop saves and restores it on resume
    rng = np.random
    batch_size = cfg["batch_size"]

    def epoch_fn(epoch: int) -> dict:
        decay = 1.0 / (1.0 + cfg["lr_decay"] * epoch)
        optimizer.scale(decay)
        batches = bucketed_batches(train.lengths, batch_size, rng)
        order = torch.from_numpy(np.concatenate(batches)).to(device)  # one copy per epoch
        total = torch.zeros((), device=device)
        start = 0
        for idx in batches:
            rows = order[start : start + len(idx)]
            start += len(idx)
            longest = int(train.lengths[idx].max())
            mask = train.mask[rows, :longest]
            scores = model(train.words[rows, :longest], train.caps[rows, :longest])
            loss = model.loss(scores, train.tags[rows, :longest], mask)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.detach()
        valid = validate()
        if valid > float(best):
            best.fill_(valid)
            best_model.load_state_dict(model.state_dict())
        return {"loss_per_word": total / float(train.lengths.sum()), "valid": valid,
                "best_valid": float(best), "lr_scale": decay}

    rows = loops("train", cfg["epochs"], {"model": model, "best_model": best_model, "best": best}).run(epoch_fn)
    model.load_state_dict(best_model.state_dict())
    return rows

