"""Render the report: HTML (Jinja2), a summary CSV and seaborn comparison figures."""
from __future__ import annotations

import base64
import csv
import datetime as dt
import io
from pathlib import Path
from typing import Iterable

import jinja2

from dlgm.atomic import write_text
from dlgm.timefmt import duration
from dlgm.report.benchmarks import load_benchmarks
from dlgm.report.compare import PaperSection, format_value
from dlgm.report.reference import reference_columns

TEMPLATES = Path(__file__).parent / "templates"


def figure_entries(paths: Iterable[str | Path], html_path: Path) -> dict[str, list[tuple[str, str]]]:
    """Group figure PNGs by paper (reports/figures/<paper>/...) with the caption beside each."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(Path(p) for p in paths):
        paper = path.parent.name if path.parent.parent.name == "figures" else path.parts[-2]
        caption_file = path.with_suffix(".txt")
        caption = caption_file.read_text().strip() if caption_file.exists() else path.stem
        rel = Path(_relpath(path, html_path.parent))
        grouped.setdefault(paper, []).append((str(rel), caption))
    return grouped


def _relpath(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path.resolve(), start.resolve())


def comparison_figure(section: PaperSection) -> str | None:
    """Paper value vs replicated (each seed a dot) per table row, as a data URI; None without runs."""
    rows = [r for r in section.rows if r.replicated is not None and r.paper_value is not None and r.ais_verdict is None]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    records = []
    for r in rows:
        scale = 100.0 if r.display == "percent" else 1.0
        name = f"{r.variant}\n{r.metric}"
        records += [{"row": name, "value": v * scale, "kind": "replicated (per seed)"} for v in r.replicated.values]
        records.append({"row": name, "value": r.paper_value * scale, "kind": "paper"})
    frame = pd.DataFrame.from_records(records)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(rows), 3.2))
    sns.stripplot(data=frame, x="row", y="value", hue="kind", ax=ax, size=7, jitter=0.08,
                  palette={"paper": "#d62728", "replicated (per seed)": "#1f77b4"})
    ax.set_xlabel("")
    ax.set_ylabel("value (% for rates)")
    ax.set_title(f"{section.title}: paper vs replicated")
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def summary_rows(sections: list[PaperSection]) -> list[dict]:
    out = []
    for section in sections:
        for r in section.rows + section.other:
            rep = r.replicated
            out.append({
                "paper": section.key, "variant": r.variant, "metric": r.metric, "label": r.label,
                "paper_value": r.paper_value, "replicated_mean": rep.mean if rep else None,
                "replicated_sd": rep.sd if rep else None, "n_seeds": len(rep.values) if rep else 0,
                "difference": r.difference, "tolerance": r.tolerance, "verdict": r.verdict, "ablations": " ".join(r.ablations), "source": r.source,
                **reference_columns(section, r),
            })
    return out


def write_summary_csv(sections: list[PaperSection], path: str | Path) -> None:
    rows = summary_rows(sections)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["paper"])
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def render_html(sections: list[PaperSection], title: str, path: str | Path, run_label: str = "",
                source: str = "runs", benchmarks: list[str | Path] = ()) -> None:
    """``benchmarks``: CSV tables of ``python -m benchmarks``, each shown with its path."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
    )
    env.globals["fmt"] = format_value
    env.globals["duration"] = duration
    html = env.get_template("index.html.j2").render(
        title=title, sections=sections, run_label=run_label,
        comparison={s.key: comparison_figure(s) for s in sections},
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        environment=_environment(sections), source=source,
        show_reference=any(s.reference for s in sections),
        benchmarks=[(str(table), rows) for table in benchmarks if (rows := load_benchmarks(table))],
    )
    write_text(path, html)


def _environment(sections: list[PaperSection]) -> list[dict]:
    out = []
    for s in sections:
        for run in s.runs:
            v = run.get("versions", {})
            out.append({
                "paper": s.key, "variant": run["variant"], "seed": run["seed"], "device": run["device"],
                "wall_seconds": run["wall_seconds"], "config_hash": run.get("config_hash", "—"),
                "dlgm": v.get("dlgm", "—"), "torch": v.get("torch", "—"), "python": v.get("python", "—"),
                "path": run["path"],
            })
    return out
