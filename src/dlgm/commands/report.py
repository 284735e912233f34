"""`python -m dlgm report ...` commands."""
from __future__ import annotations

import json
from pathlib import Path

from dlgm.cli import add_command


def register(subparsers) -> None:
    p = add_command(subparsers, "build", build, "join metrics.json files with papers.yaml into index.html",
                    "papers", "html", "table", run=False)
    # the lists may be empty (a config that runs no paper, no reference runs), which add_command's "name+" refuses
    p.add_argument("--metrics", nargs="*", default=[], help="metrics.json files")
    p.add_argument("--figures", nargs="*", default=[], help="figure PNGs (reports/figures/<paper>/*.png)")
    p.add_argument("--reference", nargs="*", default=[], help="reference/**/metrics.json: the 'reference run' column")
    p.add_argument("--benchmarks", nargs="*", default=[],
                   help="tables of `python -m benchmarks` to show (this machine's, reference/benchmarks.csv)")
    p = add_command(subparsers, "export-reference", export_reference,
                    "copy finished runs (metrics, curves, logs, benchmarks, DBM weights) into reference/",
                    "runs", "out", run=False)
    p.add_argument("--papers", nargs="+", default=None, help="only these papers (default: all)")
    p.add_argument("--allow-dirty", action="store_true",
                   help="also export runs whose code version is a checkout with uncommitted changes")
    p.add_argument("--no-weights", action="store_true",
                   help="leave the trained weights (rbm.pt, dbm.pt) out of these runs (when reference/ nears its limit)")


def build(args) -> None:
    """``--params``: the config's report section (title, run_label, source) plus ``notes`` (paper ->
    sentences), ``ablations`` (the config's: paper -> list of {name, base, set, why, metrics}) and
    ``protocols`` ("paper/variant" of each reference run -> the parameters the config now gives it, or
    None). With ``source: reference`` the --metrics are the committed reference runs."""
    from dlgm.report.ablations import attach_ablations
    from dlgm.report.tables import attach_tables
    from dlgm.report.compare import build_sections, gather_runs, load_papers
    from dlgm.report.reference import attach_reference, note_protocol_changes
    from dlgm.report.render import figure_entries, render_html, write_summary_csv

    source = args.params.get("source", "runs")
    if source == "reference" and (args.figures or args.reference):
        raise ValueError("source reference: the report shows the reference runs alone (no --figures, no --reference)")
    papers = load_papers(args.papers)
    runs = gather_runs(args.metrics)
    sections = build_sections(papers, runs, args.params["notes"])
    figures = figure_entries(args.figures, Path(args.html))
    for section in sections:
        section.figures = figures.get(section.key, [])
    attach_ablations(sections, runs, args.params.get("ablations", {}))
    attach_tables(sections, papers, runs)
    reference = gather_runs(args.reference)
    protocols = args.params.get("protocols", {})
    attach_reference(sections, reference, protocols)
    note_protocol_changes(sections, runs if source == "reference" else reference, protocols)
    write_summary_csv(sections, args.table)
    label = "reference runs (reference/)" if source == "reference" else args.params["run_label"]
    render_html(sections, args.params["title"], args.html, run_label=label, source=source,
                benchmarks=args.benchmarks)
    print(json.dumps({"runs": len(runs), "figures": len(args.figures), "reference": len(args.reference)}))


def export_reference(args) -> None:
    from dlgm.reference import export

    written = export(args.runs, args.out, args.papers, args.allow_dirty, weights=not args.no_weights)
    print(json.dumps({"runs": [str(p) for p in written], "readme": str(Path(args.out) / "README.md")}))
