"""Every benchmark in one run, one table: python -m benchmarks [--threads N] [--device auto] [--tiny]

Prints loop, dlgm time, reference time (the loop's matrix products alone, or a peer library / plain
torch loop, timed in the same run), ratio = dlgm / reference, target, device and threads. Each
benchmark runs in a fresh Python process, as each Snakemake rule does, so that one benchmark's
large buffers, thread pools and imported libraries cannot change the next one's timings. Writes the
table to reports/tables/benchmarks.csv (--out) and prints the projected wall time of each paper's
protocol on this device (dlgm.projection) beside any rule's measured benchmark.tsv.
(bench_speech_features.py times data preparation from the FSDD archive and is not in the table.)
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import (bench_crf, bench_dbm, bench_finetune, bench_forward_backward, bench_rbm_cd1,
                        bench_speech_epoch, bench_updown, bench_window)
from benchmarks.common import parser, print_rows, read_csv, write_csv

REPO = Path(__file__).resolve().parents[1]

MODULES = {"cd": bench_rbm_cd1, "dbm": bench_dbm, "updown": bench_updown, "finetune": bench_finetune,
           "crf": bench_crf, "window": bench_window, "forward_backward": bench_forward_backward, "speech": bench_speech_epoch}
# Without --threads each benchmark runs at the thread count of the rules it projects: the window
# network's and the speech networks' rules run one thread each (workflow/rules/nn_crf.smk and
# rnn_hmm.smk; tests/test_benchmarks.py checks that), the others two.
RULE_THREADS = {"window": 1, "speech": 1}
DEFAULT_THREADS = 2


def run_all(argv=None, file=None) -> list:
    file = file or sys.stdout
    p = parser(__doc__, default_threads=None, default_help="each benchmark at its rules' thread count (RULE_THREADS)")
    p.add_argument("--only", nargs="+", choices=list(MODULES), help="run only these benchmarks")
    p.add_argument("--out", default="reports/tables/benchmarks.csv", help="CSV of the table ('' = none)")
    p.add_argument("--config", default="config/config.yaml", help="config whose protocol is projected ('' = none)")
    p.add_argument("--configfile", nargs="*", default=[], help="overlays applied on top, as snakemake does")
    p.add_argument("--runs-root", default=".", help="folder holding data/runs/ whose benchmark.tsv files are "
                   "printed beside the projection")
    p.add_argument("--project-only", action="store_true", help="run no benchmark: project from the --out table")
    args = p.parse_args(argv)
    if args.project_only:
        return _project(args, args.out, file)
    common = ["--device", args.device, "--repeats", str(args.repeats)] + (["--tiny"] if args.tiny else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or MODULES:
            threads = args.threads if args.threads is not None else RULE_THREADS.get(name, DEFAULT_THREADS)
            print(f"[benchmarks] {name} ({threads} threads) ...", file=sys.stderr, flush=True)
            rows += _run_isolated(MODULES[name], ["--threads", str(threads), *common], Path(tmp) / f"{name}.csv")
    print_rows(rows, file=file)
    if args.out:
        write_csv(rows, args.out)
        print(f"table written to {args.out}", file=file)
    if args.config:
        _project(args, args.out or _temp_csv(rows), file)
    return rows


def _project(args, table, file) -> list:
    from dlgm.projection import NOT_PROJECTED, project, report_lines, table_and_quick_rates

    if not Path(table).is_file():
        raise SystemExit(f"--project-only: no benchmark table at {table}; run `python -m benchmarks` first "
                         "(or give --out the table to project from)")
    config = load_config(args.config, args.configfile)
    overlays = "".join(f" + {c}" for c in args.configfile)
    rates, basis = table_and_quick_rates(table, None if args.device == "auto" else args.device, same_device=False)
    print(f"\nprojected wall time per rule of {args.config}{overlays} on this device, from {table} ({basis})"
          f"{' (tiny sizes: indicative only)' if args.tiny else ''}; not included: {NOT_PROJECTED}:", file=file)
    print("\n".join(report_lines(project(config, rates), root=args.runs_root)), file=file)
    return []


def _run_isolated(module, argv, rows_out: Path) -> list:
    """Run one benchmark module in a fresh interpreter and read its rows back."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run([sys.executable, "-m", module.__name__, *argv, "--rows-out", str(rows_out)], cwd=REPO,
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark {module.__name__} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return read_csv(rows_out)


def load_config(path, overlays=()) -> dict:
    """config.yaml with the overlays merged in recursively, as snakemake's --configfile does."""
    import yaml

    def merge(base, over):
        for k, v in over.items():
            base[k] = merge(base.get(k, {}), v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
        return base
    config = yaml.safe_load(Path(path).read_text())
    for overlay in overlays:
        config = merge(config, yaml.safe_load(Path(overlay).read_text()) or {})
    return config


def _temp_csv(rows) -> str:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "benchmarks.csv"
    write_csv(rows, path)
    return str(path)


if __name__ == "__main__":
    run_all()
