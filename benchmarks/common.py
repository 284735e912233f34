"""What every benchmark shares: its command line, paired timing, the MNIST-shaped data, the row.

A benchmark module defines ``run(args) -> list[Row]`` and ``main(argv=None)``. Each row sets one dlgm
loop beside a reference timed in the same run: ``floor`` (the loop's own matrix products, plain
``torch.mm`` into preallocated outputs) or ``peer`` (another library or a plain torch loop doing the
same work). ``ratio`` = dlgm time / reference time, so lower is better for both kinds.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from dlgm.allocator import keep_freed_memory
from dlgm.boltzmann.rbm import random_words
from dlgm.runinfo import device_name, pick_device

MNIST = Path("data/processed/mnist/train_full.pt")
FIELDS = ("key", "loop", "per", "dlgm_s", "reference", "reference_s", "kind", "ratio", "target", "met",
          "dlgm_median_s", "reference_median_s", "device", "threads", "size", "extra")


@dataclass
class Row:
    loop: str  # what is timed, with its sizes
    per: str  # the unit the times are given per: epoch, update, step, ...
    dlgm_s: float  # minimum over repeats
    reference: str
    reference_s: float
    kind: str  # floor | peer
    target: float | None = None  # largest acceptable ratio (None: measured only)
    dlgm_median_s: float = float("nan")
    reference_median_s: float = float("nan")
    device: str = ""
    threads: int = 0
    size: str = "paper"  # paper | tiny
    extra: dict = field(default_factory=dict)  # what the projection needs: flops of one `per`
    key: str = ""  # the loop's name in dlgm.projection (cd, dbm_update, ais, updown, ...)

    @property
    def ratio(self) -> float:
        return self.dlgm_s / self.reference_s

    @property
    def met(self) -> str:
        return "" if self.target is None else ("yes" if self.ratio <= self.target else "no")

    def as_dict(self) -> dict:
        out = asdict(self)
        out.update(ratio=self.ratio, met=self.met, target="" if self.target is None else self.target,
                   extra=json.dumps(self.extra, sort_keys=True))
        return {k: out[k] for k in FIELDS}


def parser(doc: str, default_threads: int | None = 2, default_help: str = "") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    p.add_argument("--threads", type=int, default=default_threads,
                   help=f"torch (and BLAS) CPU threads; 0 = library default; default: {default_help or default_threads}")
    p.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda")
    p.add_argument("--tiny", action="store_true", help="tiny sizes: checks that the benchmark runs (seconds)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (minimum and median are kept)")
    p.add_argument("--rows-out", default="", help="also write the rows to this CSV (python -m benchmarks reads it)")
    return p


def setup(args) -> torch.device:
    """Apply --threads to torch and to NumPy's BLAS (for the peers), keep freed heap memory in the
    process as every dlgm command does (``dlgm.allocator``; the peers run with it too), return the
    device."""
    keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(args.threads)
        except ImportError:
            pass
    return pick_device(args.device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def paired(fns: Sequence[Callable[[], object]], repeats: int, device: torch.device) -> list[tuple[float, float]]:
    """(minimum, median) seconds of each function, timed in turn repeat by repeat so that load from
    other processes falls on all of them alike; one untimed warm-up call each first."""
    for fn in fns:
        fn()
    sync(device)
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(max(1, repeats)):
        for fn, out in zip(fns, times):
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            out.append(time.perf_counter() - t0)
    return [(min(t), statistics.median(t)) for t in times]


def row(key: str, loop: str, per: str, ours: tuple[float, float], reference: str, theirs: tuple[float, float],
        kind: str, args, device: torch.device, target: float | None = None, scale: float = 1.0, **extra) -> Row:
    """A Row from two (min, median) pairs, each divided by ``scale`` (e.g. the number of updates timed)."""
    return Row(loop=loop, per=per, dlgm_s=ours[0] / scale, reference=reference, reference_s=theirs[0] / scale,
               kind=kind, target=target, dlgm_median_s=ours[1] / scale, reference_median_s=theirs[1] / scale,
               device=device_name(device), threads=torch.get_num_threads(), size="tiny" if args.tiny else "paper",
               extra=extra, key=key)


def binary_images(n: int, device: torch.device, tiny: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(images [n, 784] float32 in [0, 1], labels [n]): processed MNIST when present (and not --tiny),
    else random binary images of the same shape (a CD epoch costs the same on either)."""
    if not tiny and MNIST.exists():
        from dlgm.data.mnist import load_processed

        x, y = load_processed(MNIST, device)
        if x.shape[0] >= n:
            return x[:n].contiguous(), y[:n].contiguous()
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 784, generator=g) < 0.13).float()  # MNIST's mean pixel is ~0.13
    y = torch.randint(0, 10, (n,), generator=g)
    return x.to(device), y.to(device)


def random_params(shapes, device, seed: int = 0, std: float = 0.05) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(s, generator=g) * std).to(device) for s in shapes]


def print_rows(rows: Sequence[Row], file=None) -> None:
    """One table: loop, dlgm, reference, ratio (dlgm / reference), target, device, threads."""
    head = (f"{'loop':66s} {'per':9s} {'thr':>3s} {'dlgm':>11s} {'reference':>11s}  {'ratio':>6s} {'target':>7s} "
            f"{'met':3s}  reference")
    print(head, file=file)
    for r in rows:
        target = "" if r.target is None else f"<={r.target:.3g}"
        print(f"{r.loop[:66]:66s} {r.per:9s} {r.threads:>3} {_fmt(r.dlgm_s):>11s} {_fmt(r.reference_s):>11s}  "
              f"{r.ratio:6.2f} {target:>7s} {r.met:3s}  {r.reference} [{r.kind}]", file=file)
    if rows:
        devices = "; ".join(dict.fromkeys(r.device for r in rows))
        print(f"device: {devices}; torch {torch.__version__}; thr: threads; times are minima over repeats, "
              f"references timed alternately in the same run", file=file)


def write_csv(rows: Sequence[Row], path) -> None:
    from dlgm.atomic import write_text

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(r.as_dict() for r in rows)
    write_text(path, buf.getvalue())


def read_csv(path) -> list[Row]:
    """The rows ``write_csv`` wrote."""
    with open(path, newline="") as f:
        return [Row(loop=r["loop"], per=r["per"], dlgm_s=float(r["dlgm_s"]), reference=r["reference"],
                    reference_s=float(r["reference_s"]), kind=r["kind"],
                    target=float(r["target"]) if r["target"] else None,
                    dlgm_median_s=float(r["dlgm_median_s"]), reference_median_s=float(r["reference_median_s"]),
                    device=r["device"], threads=int(r["threads"]), size=r["size"],
                    extra=json.loads(r["extra"] or "{}"), key=r["key"]) for r in csv.DictReader(f)]


def _fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.1f} us"


def standalone(run: Callable, doc: str, add_args: Callable | None = None):
    """The ``main`` of a benchmark module: parse, run, print its rows."""
    def main(argv=None):
        p = parser(doc)
        if add_args:
            add_args(p)
        args = p.parse_args(argv)
        rows = run(args)
        print_rows(rows)
        if args.rows_out:
            write_csv(rows, args.rows_out)
        return rows

    return main


def gemm_floor(spec: Sequence[tuple[str, int, int, int]], repeat: int, device: torch.device, draws: int = 0,
               updates: int = 0):
    """A function running ``repeat`` times the matrix products listed in ``spec``, nothing else: each
    entry (layout, m, k, n) is one [m, k] x [k, n] product into a preallocated output; layout "nn"
    stores both operands as used, "nt" stores B as [n, k] and uses its transposed view (a weight
    applied top-down), "tn" stores A as [k, m] (a weight statistic x^T y). ``draws`` adds that many
    units' random bits per repeat (``dlgm.boltzmann.rbm.random_words`` into a preallocated buffer):
    what ``bernoulli`` cannot do without (on a CPU, torch's serial Mersenne Twister). ``updates``
    adds SGD's step over that many parameters (p -= lr * momentum buffer): the one pass over the
    weights that every step needs beside its products. Returns (fn, flops)."""
    ops = []
    for layout, m, k, n in spec:
        a = torch.rand(k, m, device=device).t() if layout == "tn" else torch.rand(m, k, device=device)
        b = torch.rand(n, k, device=device).t() if layout == "nt" else torch.rand(k, n, device=device)
        ops.append((a, b, torch.empty(m, n, device=device)))
    gen = torch.Generator(device=device).manual_seed(0)
    noise = random_words(draws, gen, device)
    params, buffer = torch.rand(updates, device=device), torch.rand(updates, device=device)

    def fn():
        for _ in range(repeat):
            for a, b, out in ops:
                torch.mm(a, b, out=out)
            if draws:
                random_words(draws, gen, device, out=noise)
            if updates:
                params.add_(buffer, alpha=-1e-3)
    return fn, 2 * repeat * sum(m * k * n for _, m, k, n in spec)
