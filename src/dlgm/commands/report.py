"""`python -m dlgm report ...` commands."""
from __future__ import annotations

import json
from pathlib import Path

from dlgm.cli import add_command, params_json


def register(subparsers) -> None:
    p = subparsers.add_parser("build", help="join metrics.json files with papers.yaml into index.html")
    p.add_argument("--papers", required=True, help="config/papers.yaml")
    p.add_argument("--metrics", nargs="*", default=[], help="metrics.json files")
    p.add_argument("--figures", nargs="*", default=[], help="figure PNGs (reports/figures/<paper>/*.png)")
    p.add_argument("--notes", type=params_json, default={}, help="JSON: paper -> list of notes")
    p.add_argument("--title", default="dlgm report")
    p.add_argument("--run-label", default="", help="which protocol produced the numbers")
    p.add_argument("--source", choices=("runs", "reference"), default="runs",
                   help="reference: --metrics are the committed reference runs (no figures)")
    p.add_argument("--reference", nargs="*", default=[], help="reference/**/metrics.json: the 'reference run' column")
    p.add_argument("--html", required=True)
    p.add_argument("--table", required=True, help="summary CSV")
    p.set_defaults(func=build)
    p = add_command(subparsers, "export-reference", export_reference,
                    "copy finished runs (metrics, curves, logs, benchmarks, DBM weights) into reference/",
                    "runs", "out", run=False)
    p.add_argument("--papers", nargs="+", default=None, help="only these papers (default: all)")


def build(args) -> None:
    from dlgm.report.compare import build_sections, gather_runs, load_papers
    from dlgm.report.reference import attach_reference
    from dlgm.report.render import figure_entries, render_html, write_summary_csv

    if args.source == "reference" and (args.figures or args.reference):
        raise ValueError("--source reference: the report shows the reference runs alone "
                         "(no --figures, no --reference)")
    papers = load_papers(args.papers)
    runs = gather_runs(args.metrics)
    sections = build_sections(papers, runs, args.notes)
    figures = figure_entries(args.figures, Path(args.html))
    for section in sections:
        section.figures = figures.get(section.key, [])
    attach_reference(sections, gather_runs(args.reference))
    write_summary_csv(sections, args.table)
    render_html(sections, args.title, args.html, run_label=args.run_label, source=args.source)
    print(json.dumps({"runs": len(runs), "figures": len(args.figures), "reference": len(args.reference)}))


def export_reference(args) -> None:
    from dlgm.reference import export

    written = export(args.runs, args.out, args.papers)
    print(json.dumps({"runs": [str(p) for p in written], "readme": str(Path(args.out) / "README.md")}))
