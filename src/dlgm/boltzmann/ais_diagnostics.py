"""Evidence that an AIS estimate of log Z can be trusted, and rigorous lower bounds that catch it
when it cannot.

Verdicts:
- "failed": the estimate lies below a deterministic lower bound on log Z (AIS underestimated
  log Z, so every log-probability computed with it is too high). Said loudly.
- "not converged": without a reverse run, no finite lower error bar (Z_hat - 3 sd <= 0) or the last
  two schedules of the convergence curve (ideally a doubling: curve scale 0.5, then 1) differ by
  more than the tolerance. With reverse AIS from the model's chains (which errs high where forward
  AIS errs low: bidirectional Monte Carlo) the bracket decides: the two further apart than the
  tolerance. Agreeing within it, they pin log Z from both sides, which is what the schedule checks
  only hint at; a schedule check that fails is then kept as a note, not a reason.
- "converged": otherwise.

Lower bounds, each <= log Z exactly (Z sums exp(-E) over all states, so any partial sum is less):
- "map_state": the unnormalised marginal of one state found by coordinate ascent on -E from each
  data image (and of the all-zero state), with either parity of layers summed out; the largest.
- "mean_field": log-sum-exp over distinct binary data images v of their mean-field bounds
  (each <= log Z(v), and the Z(v) of distinct images are disjoint parts of Z).
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field

import torch

from dlgm.boltzmann.ais import AISResult, ReverseAISResult
from dlgm.boltzmann.dbm import DBM
from dlgm.log_z_guards import ASCENT_SWEEPS

log = logging.getLogger("dlgm")
VERDICTS = ("converged", "not converged", "failed")


@torch.no_grad()
def log_z_lower_bounds(dbm: DBM, v: torch.Tensor, mean_field_iterations: int = 50,
                       ascent_sweeps: int = ASCENT_SWEEPS) -> dict[str, float]:
    """Both deterministic lower bounds on log Z from the binary images ``v`` (rows)."""
    dtype = dbm.weights[0].dtype
    v = v.to(dtype)
    if not torch.all((v == 0) | (v == 1)):
        raise ValueError("log_z_lower_bounds needs binary images v (binarise grey levels first)")
    v = torch.unique(v, dim=0)
    mu = dbm.mean_field(v, mean_field_iterations)
    mean_field = float(torch.logsumexp(dbm.variational_bound(mu).double(), 0))
    x = [v] + [dbm.mode(l, m, 0.5) for l, m in enumerate(mu[1:], start=1)]
    for _ in range(ascent_sweeps):  # each layer set to its best state given its neighbours: -E never falls
        for parity in (1, 0):
            for l in range(parity, dbm.n_states, 2):
                x[l] = dbm.mode(l, dbm.layer_input(x, l), 0.0)
    # the all-zero state too (labels at the first class): with the even layers summed out it is the
    # "all h1 off" mode, whose mass is sum softplus(b0) + sum softplus(b2) for a 2-layer DBM
    x = [torch.cat([layer, dbm.mode(l, torch.zeros_like(layer[:1]), 0.0)]) for l, layer in enumerate(x)]
    best = max(float(dbm.marginal_log_prob_unnormalised(x, p).double().max()) for p in (0, 1))
    return {"map_state": best, "mean_field": mean_field}


@dataclass
class AISDiagnostics:
    model: str
    verdict: str
    reasons: list[str]
    log_z: float
    log_z_low: float | None
    log_z_high: float
    ess: float
    n_runs: int
    n_temperatures: int
    tolerance: float
    curve: list[dict] = field(default_factory=list)
    lower_bounds: dict[str, float] = field(default_factory=dict)
    activity: list[dict] = field(default_factory=list)
    reverse: dict | None = None  # the reverse AIS run, when there was one
    notes: list[str] = field(default_factory=list)  # schedule checks that failed but the bracket overrules

    @property
    def converged(self) -> bool:
        return self.verdict == "converged"

    def as_dict(self) -> dict:
        return asdict(self)


def diagnose(curve: list[AISResult], lower_bounds: dict[str, float], tolerance: float,
             model: str, reverse: ReverseAISResult | None = None) -> AISDiagnostics:
    """The verdict on the last (longest) AIS run of ``curve`` (runs in order of schedule length),
    with the ``reverse`` run over the same schedule if there was one."""
    if not curve:
        raise ValueError("diagnose needs at least one AIS result")
    if not tolerance > 0:
        raise ValueError(f"AIS convergence tolerance must be positive, got {tolerance}")
    r, reasons, notes = curve[-1], [], []
    bound_name, bound = max(lower_bounds.items(), key=lambda kv: kv[1]) if lower_bounds else (None, -math.inf)
    if r.log_z < bound:
        reasons.append(f"log Z {r.log_z:.3f} is below the rigorous lower bound {bound:.3f} ({bound_name}): "
                       "the chains missed most of the probability mass")
        verdict = "failed"
    else:
        if r.log_z_low is None:
            reasons.append("no finite lower error bar (Z_hat - 3 sd <= 0)")
        if len(curve) < 2:
            reasons.append("no shorter schedule to compare with")
        elif abs(r.log_z - curve[-2].log_z) > tolerance:
            reasons.append(f"log Z moved by {r.log_z - curve[-2].log_z:+.3f} from {curve[-2].n_temperatures} to "
                           f"{r.n_temperatures} temperatures (tolerance {tolerance})")
        if reverse is not None:
            gap = reverse.log_z - r.log_z
            if abs(gap) > tolerance:
                reasons.append(f"reverse AIS from the model's chains gives log Z {reverse.log_z:.3f}, "
                               f"{gap:+.3f} from forward AIS (tolerance {tolerance})")
            else:
                notes = [f"{why}; overruled: reverse AIS gives log Z {reverse.log_z:.3f}, {gap:+.3f} from "
                         f"forward AIS (tolerance {tolerance})" for why in reasons]
                reasons = []
        verdict = "not converged" if reasons else "converged"
    d = AISDiagnostics(
        model, verdict, reasons, r.log_z, r.log_z_low, r.log_z_high, r.ess, r.n_runs, r.n_temperatures, tolerance,
        curve=[{"temperatures": c.n_temperatures, "log_z": c.log_z, "log_z_low": c.log_z_low,
                "log_z_high": c.log_z_high, "ess": c.ess} for c in curve],
        lower_bounds=dict(lower_bounds),
        activity=[{"beta": b, "mean_state": a} for b, a in r.activity],
        reverse=None if reverse is None else asdict(reverse), notes=notes,
    )
    if verdict == "failed":
        log.warning("AIS FAILED for %s: %s", model, "; ".join(reasons))
    elif verdict != "converged":
        log.warning("AIS not converged for %s: %s", model, "; ".join(reasons))
    elif notes:
        log.info("AIS converged for %s (forward and reverse agree): %s", model, "; ".join(notes))
    return d
