"""The report joins metrics with papers.yaml: mean ± sd over seeds, verdicts, notes, figures."""
import csv
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
import torch
import yaml

from dlgm.cli import main
from dlgm.figures import save_figure
from dlgm.metrics import MetricsError, read_metrics, write_metrics
from dlgm.report.compare import PapersError, load_papers

PAPERS = {
    "dbn": {"title": "Deep belief nets", "papers": ["HOT06"], "deviations": ["fewer epochs"],
            "rows": [{"variant": "updown", "metric": "test_error", "paper_value": 0.0125, "tolerance": 0.002,
                      "display": "percent", "label": "up-down error", "source": "HOT06 Table 1"},
                     {"variant": "backprop", "metric": "test_error", "paper_value": 0.012, "tolerance": 0.001,
                      "display": "percent", "label": "backprop error", "source": "HS06"}]},
    "dbm": {"title": "Deep Boltzmann machines", "rows": [
        {"variant": "dbm2", "metric": "test_logprob", "paper_value": -84.62, "tolerance": 2.0,
         "display": "nats", "label": "log-prob", "source": "SH09 Table 1"}]},
}


def _run(tmp_path, paper, variant, seed, metrics):
    path = tmp_path / "runs" / paper / variant / f"seed{seed}" / "metrics.json"
    write_metrics(path, paper=paper, variant=variant, seed=seed, split="test", metrics=metrics,
                  wall_seconds=1.5, device=torch.device("cpu"), config={"lr": 0.1})
    return str(path)


@pytest.fixture
def built(tmp_path):
    papers = tmp_path / "papers.yaml"
    papers.write_text(yaml.safe_dump(PAPERS))
    metrics = [
        _run(tmp_path, "dbn", "updown", 0, {"test_error": 0.0120}),
        _run(tmp_path, "dbn", "updown", 1, {"test_error": 0.0140}),
        _run(tmp_path, "dbn", "backprop", 0, {"test_error": 0.0200, "valid_error": 0.019}),
    ]
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    figure = save_figure(fig, tmp_path / "reports" / "figures" / "dbn" / "curve.png", "A training curve.")
    html, table = tmp_path / "reports" / "index.html", tmp_path / "reports" / "tables" / "summary.csv"
    main(["report", "build", "--papers", str(papers), "--metrics", *metrics, "--figures", str(figure),
          "--notes", '{"rnn_hmm": ["TIMIT not supplied"]}', "--run-label", "quick config", "--html", str(html), "--table", str(table)])
    return html.read_text(), list(csv.DictReader(table.open()))


def test_mean_sd_and_verdicts(built):
    _, rows = built
    updown = next(r for r in rows if r["variant"] == "updown")
    assert float(updown["replicated_mean"]) == pytest.approx(0.013)
    assert float(updown["replicated_sd"]) == pytest.approx(0.0014142, rel=1e-4)
    assert updown["n_seeds"] == "2" and updown["verdict"] == "within tolerance"
    backprop = next(r for r in rows if r["variant"] == "backprop" and r["metric"] == "test_error")
    assert backprop["verdict"] == "outside tolerance"
    assert float(backprop["difference"]) == pytest.approx(0.008)
    assert next(r for r in rows if r["paper"] == "dbm")["verdict"] == "not run"
    # a metric with no published counterpart is still reported
    assert any(r["metric"] == "valid_error" and r["verdict"] == "no paper value" for r in rows)


def test_html_lists_all_papers_notes_and_figures(built):
    html, _ = built
    for section in ("dbn", "dbm", "rnn_hmm", "nn_crf"):
        assert f'id="{section}"' in html
    assert "1.30% ± 0.14%" in html
    assert "TIMIT not supplied" in html
    assert "Numbers from the <b>quick config</b>" in html
    assert "fewer epochs" in html
    assert 'src="figures/dbn/curve.png"' in html and "A training curve." in html
    assert "No runs of this paper yet" in html  # dbm, rnn_hmm, nn_crf have none
    assert re.search(r"data:image/png;base64,", html)  # seaborn comparison figure for dbn


def test_bad_papers_yaml_names_the_row(tmp_path):
    bad = tmp_path / "papers.yaml"
    bad.write_text(yaml.safe_dump({"dbn": {"rows": [{"variant": "x", "metric": "m", "label": "l",
                                                     "source": "s", "papr_value": 1}]}}))
    with pytest.raises(PapersError, match=r"dbn\.rows\[0\].*papr_value"):
        load_papers(bad)
    bad.write_text(yaml.safe_dump({"dbnn": {"rows": []}}))
    with pytest.raises(PapersError, match="unknown paper 'dbnn'"):
        load_papers(bad)


def test_metrics_writer_rejects_nan_and_reader_checks_keys(tmp_path):
    with pytest.raises(MetricsError, match="'test_error' is NaN"):
        _run(tmp_path, "dbn", "updown", 0, {"test_error": float("nan")})
    assert not (tmp_path / "runs" / "dbn" / "updown" / "seed0" / "metrics.json").exists()
    path = tmp_path / "m.json"
    path.write_text('{"paper": "dbn"}')
    with pytest.raises(MetricsError, match="missing keys"):
        read_metrics(path)


def test_metrics_record_has_provenance(tmp_path):
    record = read_metrics(_run(tmp_path, "dbn", "updown", 3, {"test_error": torch.tensor(0.5)}))
    assert record["metrics"] == {"test_error": 0.5}
    assert record["seed"] == 3 and record["config"] == {"lr": 0.1}
    assert len(record["config_hash"]) == 16
    assert {"python", "torch", "dlgm"} <= record["versions"].keys()
    assert record["device"].startswith("cpu")


def test_repository_papers_yaml_is_valid():
    papers = load_papers(Path(__file__).resolve().parents[1] / "config" / "papers.yaml")
    assert set(papers) == {"dbn", "dbm", "rnn_hmm", "nn_crf"}
    for section in papers.values():
        assert section["rows"], "every paper needs at least one published row"
