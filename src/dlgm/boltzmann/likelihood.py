"""Every likelihood number of an RBM or DBM, each with the evidence behind it: AIS log Z with its
convergence curve, diagnostics and guards; the test log-probability (exact given log Z for an RBM,
the mean-field bound for a DBM); SH09's estimate of the true log p(v) on the first test images
(per-image AIS over the hidden layers); and RAISE on the same images, with the AIS-RAISE gap; and
reverse AIS of log Z from the model's own chains, the upper side of bidirectional Monte Carlo.
SH09 Sec. 4.1 draws those images at random, 10 of each class (``logprob_per_class``); a mean over
100 images moves by about 1.5 nats with the draw (docs/dbm.md), so which ones is recorded.

Evaluation images are binary: SM08 and SH09 evaluate on binarised MNIST, and the bounds and
estimates here are for binary v. Grey-level images (values in [0, 1]) are binarised
stochastically (pixel on with probability its grey level), averaged over ``test_binarisations``
draws for the full-test-set numbers; the per-image estimates use the first draw.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import torch

from dlgm.boltzmann.ais import ais, base_rate_bias, dbm_bound_log_probs, model_samples, reverse_ais, schedule
from dlgm.boltzmann.ais_diagnostics import diagnose, log_z_lower_bounds
from dlgm.boltzmann.dbm import DBM
from dlgm.boltzmann.raise_ import raise_log_prob
from dlgm.boltzmann.rbm import bernoulli

def binarise(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Stochastic binarisation; binary input comes back unchanged."""
    if torch.all((x == 0) | (x == 1)):
        return x
    if x.min() < 0 or x.max() > 1:
        raise ValueError("images to binarise must lie in [0, 1]")
    return bernoulli(x, generator)


def estimate_images(labels: torch.Tensor | None, n: int, per_class: bool,
                    generator: torch.Generator | None) -> torch.Tensor:
    """Sorted indices of the test images for the per-image estimate: ``n`` drawn at random with the
    same number from each class (``per_class``), or else the first ``n``."""
    if not per_class:
        return torch.arange(n)
    if labels is None:
        raise ValueError("ais.logprob_per_class needs the test labels")
    classes = labels.unique()
    if n % classes.numel():
        raise ValueError(f"ais.logprob_images = {n} is not a multiple of the {classes.numel()} classes "
                         "(ais.logprob_per_class: true)")
    k, picks = n // classes.numel(), []
    for c in classes:
        members = torch.nonzero(labels == c).flatten()
        if members.numel() < k:
            raise ValueError(f"ais.logprob_images = {n}: class {int(c)} has {members.numel()} test images, "
                             f"fewer than {k}")
        picks.append(members[torch.randperm(members.numel(), generator=generator, device=labels.device)[:k]])
    return torch.cat(picks).sort().values


def log_probs(dbm: DBM, v: torch.Tensor, log_z: float, iterations: int) -> torch.Tensor:
    """log p(v) of each row given log Z, float64: exact for an RBM, the mean-field lower bound for a DBM
    (with label units: the bound on p(v) with the labels summed out, q(y) free)."""
    if dbm.n_states == 2:
        return dbm.even_log_prob_unnormalised([v, None]).double() - log_z
    return dbm_bound_log_probs(dbm, v, log_z, iterations)


def mean_log_prob(dbm: DBM, v: torch.Tensor, log_z: float, iterations: int) -> float:
    """Exact mean log p(v) given log Z for an RBM; the mean-field lower bound for a DBM."""
    return float(log_probs(dbm, v, log_z, iterations).mean())


def draw_spread(values: torch.Tensor, labels: torch.Tensor, per_class: int) -> tuple[float, float]:
    """Mean and standard deviation, over all draws of ``per_class`` items from each class without
    replacement, of the draw's mean of ``values``: how far a class-balanced subset's number can move
    with the choice of images alone."""
    means, variances = [], []
    for c in labels.unique():
        x = values[labels == c].double()
        if x.numel() < per_class:
            raise ValueError(f"class {int(c)} has {x.numel()} items, fewer than {per_class}")
        means.append(x.mean())
        finite = 1.0 - per_class / x.numel()  # sampling without replacement
        variances.append((x.var() if x.numel() > 1 else x.new_zeros(())) / per_class * finite)
    n = len(means)
    return float(torch.stack(means).mean()), float(torch.stack(variances).sum().sqrt() / n)


@torch.no_grad()
def evaluate(dbm: DBM, train_x: torch.Tensor, test_x: torch.Tensor, cfg: Mapping[str, Any],
             generator: torch.Generator | None, model: str, log=None,
             test_labels: torch.Tensor | None = None, loops=None) -> tuple[dict, dict]:
    """(metrics, extra) for metrics.json. ``cfg``: the config's `dbm.ais` section (keys documented
    in workflow/schemas/config.schema.yaml); ``test_labels`` choose the estimate's images per class.
    ``loops`` (``dlgm.training.RunLoops``): the forward and reverse AIS runs checkpoint as they go, so
    a killed evaluation resumes inside the run it was in (the other steps are minutes and rerun)."""
    scales = list(cfg["curve_scales"])
    if scales != sorted(scales) or (scales and scales[-1] >= 1):
        raise ValueError(f"ais.curve_scales must rise and stay below 1, got {scales}")
    bias = base_rate_bias(train_x, cfg["base_rate_smoothing"])
    segments = [tuple(s) for s in cfg["segments"]]
    curve, timings = [], []
    for scale in scales + [1.0]:
        t0 = time.perf_counter()
        curve.append(ais(dbm, bias, schedule(segments, scale), cfg["runs"], generator, cfg["parameterisation"],
                         loops, f"ais_{scale:g}"))
        timings.append(curve[-1].seconds or time.perf_counter() - t0)  # a resumed run counts its earlier slices
        if log:
            r = curve[-1]
            log.info("AIS %s: %d temperatures x %d runs: log Z %.3f [%s, %.3f], ESS %.1f (%.1fs)", model,
                     r.n_temperatures, r.n_runs, r.log_z, "-inf" if r.log_z_low is None else f"{r.log_z_low:.3f}",
                     r.log_z_high, r.ess, timings[-1])
    r = curve[-1]
    bounds = log_z_lower_bounds(dbm, binarise(train_x[: cfg["guard_images"]], generator), cfg["mean_field_iterations"])
    if log:
        log.info("AIS %s: lower bounds on log Z %s; mean state of (v, h1, ...) along the path: %s", model,
                 {k: round(b, 3) for k, b in bounds.items()},
                 "; ".join(f"beta {b:.2f}: " + ", ".join(f"{a:.4f}" for a in acts) for b, acts in r.activity))

    iters = cfg["mean_field_iterations"]
    subset = cfg["train_subset"] or train_x.shape[0]
    draws = [binarise(test_x, generator) for _ in range(cfg["test_binarisations"])]
    per_draw = [log_probs(dbm, v, r.log_z, iters) for v in draws]
    test_lp = sum(float(p.mean()) for p in per_draw) / len(draws)
    train_lp = mean_log_prob(dbm, binarise(train_x[:subset], generator), r.log_z, iters)

    chosen = estimate_images(test_labels, min(cfg["logprob_images"], test_x.shape[0]), cfg["logprob_per_class"],
                             generator)
    images = draws[0][chosen.to(test_x.device)]
    betas = schedule(segments, cfg["logprob_scale"])
    t0 = time.perf_counter()
    rai = raise_log_prob(dbm, images, bias, betas, cfg["logprob_runs"], generator)
    estimate = float(rai.log_zv.mean()) - r.log_z  # AIS: per-image log Z(v) (exact for an RBM) - AIS log Z
    # the bound on the estimate's own images separates how easy those images are from how loose the bound is
    subset_bound = mean_log_prob(dbm, images, r.log_z, iters)
    raise_lp = float(rai.log_prob.mean())
    if log:
        log.info("%s on %d test images: AIS estimate %.3f, RAISE %.3f (gap %.3f, %.1fs), bound %.3f",
                 model, images.shape[0], estimate, raise_lp, estimate - raise_lp, time.perf_counter() - t0, subset_bound)
    # last, so that every number above draws the same random numbers with or without it
    reverse = _reverse(dbm, train_x, bias, schedule(segments), cfg, generator, model, log, loops)
    diag = diagnose(curve, bounds, cfg["convergence_tolerance"], model, reverse)
    spread = {}
    if cfg["logprob_per_class"]:  # what an average draw of such images gives, and how far draws spread
        balanced, sd = draw_spread(per_draw[0], test_labels, images.shape[0] // test_labels.unique().numel())
        spread = {"test_logprob_bound_balanced": balanced, "test_logprob_bound_draw_sd": sd}
    metrics = {
        **r.as_metrics(), "test_logprob": test_lp, "train_logprob": train_lp,
        "test_logprob_estimate": estimate, "test_logprob_bound_subset": subset_bound, "test_logprob_raise": raise_lp, "test_logprob_raise_gap": estimate - raise_lp,
        **spread, "ais_converged": float(diag.converged), "ais_ess": diag.ess,
    }
    if reverse is not None:  # the bound had log Z been the reverse run's (lower where it lies above)
        metrics.update(log_z_reverse=reverse.log_z, test_logprob_at_log_z_reverse=test_lp + r.log_z - reverse.log_z)
    ais_curve = [{**c, "seconds": s} for c, s in zip(diag.curve, timings)]
    extra = {"ais_curve": ais_curve, "ais_runs": r.n_runs, "ais_verdict": diag.verdict,
             "ais_diagnostics": diag.as_dict(), "logprob_images": int(images.shape[0]),
             "logprob_image_indices": chosen.tolist()}
    return metrics, extra


def _reverse(dbm: DBM, train_x: torch.Tensor, bias: torch.Tensor, betas: torch.Tensor, cfg: Mapping[str, Any],
             generator: torch.Generator | None, model: str, log=None, loops=None):
    """Reverse AIS (``ais.reverse_sweeps`` > 0) from ``ais.runs`` chains started at random binarised
    training images and run that many Gibbs sweeps: the upper side of log Z beside forward AIS."""
    sweeps = cfg["reverse_sweeps"]
    if not sweeps:
        return None
    t0 = time.perf_counter()
    picks = torch.randperm(train_x.shape[0], generator=generator, device=train_x.device)[: cfg["runs"]]
    start = model_samples(dbm, binarise(train_x[picks], generator), sweeps, generator)
    rev = reverse_ais(dbm, bias, betas, start, generator, cfg["parameterisation"], sweeps, loops)
    if log:
        log.info("reverse AIS %s: %d runs from training images after %d Gibbs sweeps: log Z %.3f, ESS %.1f (%.1fs)",
                 model, rev.n_runs, sweeps, rev.log_z, rev.ess, time.perf_counter() - t0)
    return rev
