"""`python -m dlgm report ...` commands."""
from __future__ import annotations

import json
from pathlib import Path

from dlgm.cli import add_command


def register(subparsers) -> None:
    p = add_command(subparsers, "build", build, "join metrics.json files with papers.yaml into index.html",
                    "papers", "html", "table", run=False)
    # the two lists may be empty (a config that runs no paper), which add_command's "name+" refuses
    p.add_argument("--metrics", nargs="*", default=[], help="metrics.json files")
    p.add_argument("--figures", nargs="*", default=[], help="figure PNGs (reports/figures/<paper>/*.png)")


def build(args) -> None:
    """``--params``: the config's report section (title, run_label) plus ``notes`` (paper -> sentences)."""
    from dlgm.report.compare import build_sections, gather_runs, load_papers
    from dlgm.report.render import figure_entries, render_html, write_summary_csv

    papers = load_papers(args.papers)
    runs = gather_runs(args.metrics)
    sections = build_sections(papers, runs, args.params["notes"])
    figures = figure_entries(args.figures, Path(args.html))
    for section in sections:
        section.figures = figures.get(section.key, [])
    write_summary_csv(sections, args.table)
    render_html(sections, args.params["title"], args.html, run_label=args.params["run_label"])
    print(json.dumps({"runs": len(runs), "figures": len(args.figures)}))
