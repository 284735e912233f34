"""Training loops of the DBM paper: CD-k RBMs, greedy pretraining and joint PCD/mean-field training.

Each stage runs through the ``EpochLoop`` that ``loops(stage, epochs, state, generators)`` makes
(``dlgm.training.RunLoops``: resume, finiteness checks, progress, curve; the caller decides the
files, the default writes none); an epoch is batched tensor code on the device and returns device
scalars (one host sync per epoch).
Hyperparameters arrive as a plain dict (the rule's ``--params``); keys are documented in
workflow/schemas/config.schema.yaml.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch

from dlgm.boltzmann.batches import momentum_at, shuffled_batches
from dlgm.boltzmann.dbm import DBM, dbm_from_rbms, dbm_statistics, pretraining_factors, random_chains
from dlgm.boltzmann.rbm import RBM, MomentumSGD, bernoulli, cd_epoch, rbm_params
from dlgm.cd_schedule import cd_ramp
from dlgm.training import EpochLoop, RunLoops


def train_rbm(
    rbm: RBM,
    data: torch.Tensor,
    cfg: Mapping[str, Any],
    generator: torch.Generator,
    loops: Callable[..., EpochLoop] = RunLoops(),
    *,
    stage: str,
    labels: torch.Tensor | None = None,
) -> list[dict]:
    """CD-``cfg['cd_k']`` training of ``rbm`` on ``data`` (probabilities in [0, 1]); with
    ``cfg['binarize']`` each epoch sees a fresh binary sample of the data, as the authors' code does.
    With ``cfg['cd_ramp_every']`` = N > 0 the k and the rate change by epoch (``cd_ramp``).
    ``labels``: one-hot rows of ``data``'s classes, for an RBM with label units (``cd_epoch``)."""
    updater = MomentumSGD(rbm_params(rbm)).to(data.device)
    loop = loops(stage, cfg["epochs"], {"rbm": rbm, "updater": updater}, {"sampler": generator})

    def epoch_fn(epoch: int) -> dict:
        x = bernoulli(data, generator) if cfg["binarize"] else data
        batches = shuffled_batches(x.shape[0], cfg["batch_size"], generator, x.device)
        k, lr = cd_ramp(cfg["cd_k"], cfg["lr"], cfg.get("cd_ramp_every", 0), epoch)
        err = cd_epoch(
            rbm, updater, x, batches, lr=lr, momentum=momentum_at(cfg, epoch),
            weight_cost=cfg["weight_cost"], k=k, generator=generator, labels=labels,
        )
        return {"recon_error": err}

    return loop.run(epoch_fn)


@torch.no_grad()
def _hidden_probs(rbm: RBM, x: torch.Tensor, chunk: int = 10000) -> torch.Tensor:
    return torch.cat([rbm.hidden_probs(x[i : i + chunk]) for i in range(0, x.shape[0], chunk)])


def pretrain_dbm(
    data: torch.Tensor,
    sizes: Sequence[int],
    layer_cfgs: Sequence[Mapping[str, Any]],
    generator: torch.Generator,
    init_seed: int,
    loops: Callable[..., EpochLoop] = RunLoops(),
    labels: torch.Tensor | None = None,
) -> tuple[DBM, list[dict]]:
    """Greedy layer-wise pretraining with the modified RBMs of SH09 (Section 3.1), then composition.
    Layer l > 0 trains on the hidden probabilities of layer l - 1 (computed with its doubled
    bottom-up weights), binarised afresh each epoch when its config asks for it; ``scale_biases``
    doubles each RBM's bias on its doubled side as well (the authors' rbm.m). With one-hot
    ``labels`` of the rows of ``data`` the top RBM has label units beside its visible units
    (rbm_l2.m) and the DBM gets them."""
    factors = pretraining_factors(len(sizes) - 1)
    rbms, rows, x = [], [], data
    for l, ((up, down), cfg) in enumerate(zip(factors, layer_cfgs)):
        init = torch.Generator().manual_seed(init_seed * 1000 + l)
        top_labels = labels if l + 1 == len(factors) else None
        n_labels = 0 if top_labels is None else top_labels.shape[1]
        rbm = RBM(sizes[l], sizes[l + 1], up, down, init_std=cfg["init_std"], generator=init,
                  n_labels=n_labels, scale_biases=cfg.get("scale_biases", False)).to(data.device)
        rows += train_rbm(rbm, x, cfg, generator, loops, stage=f"rbm{l + 1}", labels=top_labels)
        rbms.append(rbm)
        if l + 1 < len(factors):
            x = _hidden_probs(rbm, x)
    return dbm_from_rbms(rbms), rows


def train_dbm(
    dbm: DBM,
    data: torch.Tensor,
    cfg: Mapping[str, Any],
    generator: torch.Generator,
    loops: Callable[..., EpochLoop] = RunLoops(),
    labels: torch.Tensor | None = None,
) -> tuple[list[dict], list[torch.Tensor]]:
    """Joint training (SH09, Algorithm 1): mean-field for the data-dependent statistics, persistent
    chains (fantasy particles) for the model statistics, SGD with momentum and weight cost; the
    learning rate decays per update as lr_t = max(lr / lr_decay**t, lr_min) (the authors' code).
    A DBM with label units takes the one-hot ``labels`` of the rows of ``data``, clamped in the
    positive phase (dbm_mf.m); U gets the weight cost and momentum, the labels no sparsity penalty.
    Returns the curve rows and the final fantasy particles."""
    device = data.device
    chains = random_chains(dbm, cfg["n_chains"], generator)
    updater = MomentumSGD(dbm.params()).to(device)
    sparsity = cfg["sparsity"]
    targets = sparsity_targets(sparsity["targets"], dbm.n_layers)
    means = [torch.full((n,), t, device=device, dtype=data.dtype) for n, t in zip(dbm.sizes[1:], targets)]
    state = {"dbm": dbm, "updater": updater, **{f"chain{l}": c for l, c in enumerate(chains)},
             **{f"sparsity_mean{l + 1}": m for l, m in enumerate(means)}}
    loop = loops("dbm", cfg["epochs"], state, {"sampler": generator})
    n_batches = data.shape[0] // cfg["batch_size"]

    def epoch_fn(epoch: int) -> dict:
        batches = shuffled_batches(data.shape[0], cfg["batch_size"], generator, device)
        err = torch.zeros((), device=device, dtype=data.dtype)
        lr = cfg["lr"]
        for i, idx in enumerate(batches):
            lr = max(cfg["lr"] / cfg["lr_decay"] ** (epoch * n_batches + i + 1), cfg["lr_min"])
            v = bernoulli(data[idx], generator) if cfg["binarize"] else data[idx]
            grads, new_chains, mu = dbm_statistics(
                dbm, v, chains, mean_field_iterations=cfg["mean_field_iterations"],
                gibbs_steps=cfg["gibbs_steps"], generator=generator, model_statistics=cfg["model_statistics"],
                labels=None if labels is None else labels[idx],
            )
            if sparsity["cost"]:
                for name, g in sparsity_penalty(dbm, mu, means, targets, sparsity["cost"], sparsity["damping"]).items():
                    grads[name] -= g
            for old, new in zip(chains, new_chains):
                old.copy_(new)
            updater.step(dbm.params(), grads, lr, momentum_at(cfg, epoch), cfg["weight_cost"])
            recon = torch.sigmoid(torch.addmm(dbm.biases[0], mu[1], dbm.weights[0].t()))
            err += ((v - recon) ** 2).sum() / v.shape[0]
        return {"recon_error": err / len(batches), "lr": lr}

    return loop.run(epoch_fn), chains


def sparsity_targets(targets: Sequence[float], n_layers: int) -> list[float]:
    """One target activity per hidden layer; the last given target serves the layers above it."""
    if not targets:
        raise ValueError("joint.sparsity.targets needs at least one target activity")
    return [float(targets[min(l, len(targets) - 1)]) for l in range(n_layers)]


@torch.no_grad()
def sparsity_penalty(dbm: DBM, mu: Sequence[torch.Tensor], means: list[torch.Tensor], targets: Sequence[float],
                     cost: float, damping: float) -> dict[str, torch.Tensor]:
    """The authors' sparsity penalty (dbm_mf.m; Hinton's practical guide, Section 11): descent
    directions keyed like ``DBM.params``, to be subtracted from the likelihood gradient.

    Each hidden layer l keeps a running mean q_l of its mean-field activity (updated in place:
    q_l <- damping q_l + (1 - damping) batch mean of mu_l). The penalty's derivative with respect to
    a unit's total input is s_l = cost (q_l - target_l), the derivative of cost x the cross-entropy
    between target and q_l if q_l were the unit's probability; it reaches each parameter that feeds
    that input: the bias, and the weights from below (times the batch mean of the layer below) and
    from above (times the batch mean of the layer above), so W[l] gets both layers' terms."""
    s = [None]
    for l in range(1, dbm.n_layers + 1):
        means[l - 1].mul_(damping).add_(mu[l].mean(0), alpha=1 - damping)
        s.append(cost * (means[l - 1] - targets[l - 1]))
    batch_means = [m.mean(0) for m in mu]
    out = {f"b{l}": s[l] for l in range(1, dbm.n_layers + 1)}
    out["b0"] = torch.zeros_like(dbm.biases[0])
    for l in range(dbm.n_layers):
        out[f"W{l}"] = torch.outer(batch_means[l], s[l + 1])
        if l > 0:
            out[f"W{l}"] += torch.outer(s[l], batch_means[l + 1])
    return out
