"""The report joins metrics with papers.yaml: mean ± sd over seeds, verdicts, notes, figures."""
import csv
import json
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
    "rnn_hmm": {"title": "Speech", "rows": [
        {"variant": "timit_hybrid", "metric": "test_per", "paper_value": None, "tolerance": None,
         "display": "percent", "label": "hybrid PER, table unread", "source": "GJM13"},
        {"variant": "timit_gmm_hmm", "metric": "test_per", "display": "percent", "label": "GMM-HMM PER",
         "source": "ours"}]},
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
        _run(tmp_path, "rnn_hmm", "timit_hybrid", 0, {"test_per": 0.25}),
    ]
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    figure = save_figure(fig, tmp_path / "reports" / "figures" / "dbn" / "curve.png", "A training curve.")
    html, table = tmp_path / "reports" / "index.html", tmp_path / "reports" / "tables" / "summary.csv"
    main(["report", "build", "--papers", str(papers), "--metrics", *metrics, "--figures", str(figure),
          "--params", json.dumps({"title": "dlgm report", "run_label": "quick config",
                                  "notes": {"rnn_hmm": ["TIMIT not supplied"]}}),
          "--html", str(html), "--table", str(table)])
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
    assert "No runs of this paper yet" in html  # dbm and nn_crf have none
    assert re.search(r"data:image/png;base64,", html)  # seaborn comparison figure for dbn


def test_a_row_without_paper_value_gets_no_difference_and_no_verdict(built):
    html, rows = built
    hybrid = next(r for r in rows if r["variant"] == "timit_hybrid")
    assert float(hybrid["replicated_mean"]) == 0.25 and hybrid["n_seeds"] == "1"
    assert (hybrid["paper_value"], hybrid["difference"], hybrid["tolerance"]) == ("", "", "")
    assert hybrid["verdict"] == "no paper value"
    # a null row that was not run says so through its replicated cell, not through a verdict
    assert next(r for r in rows if r["variant"] == "timit_gmm_hmm")["verdict"] == "no paper value"
    section = html[html.index('id="rnn_hmm"'):html.index('id="nn_crf"')]
    row = next(tr for tr in section.split("<tr>") if "hybrid PER, table unread" in tr)
    paper, replicated, difference, tolerance, verdict = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)[1:6]
    assert "no paper value" in paper and "25.00%" in replicated
    assert difference == tolerance == "—" and verdict == "no paper value"
    assert "within tolerance" not in section and "outside tolerance" not in section
    assert "data:image/png" not in section  # nothing to draw against


def test_bad_papers_yaml_names_the_row(tmp_path):
    bad = tmp_path / "papers.yaml"
    bad.write_text(yaml.safe_dump({"dbn": {"rows": [{"variant": "x", "metric": "m", "label": "l",
                                                     "source": "s", "papr_value": 1}]}}))
    with pytest.raises(PapersError, match=r"dbn\.rows\[0\].*papr_value"):
        load_papers(bad)
    bad.write_text(yaml.safe_dump({"dbnn": {"rows": []}}))
    with pytest.raises(PapersError, match="unknown paper 'dbnn'"):
        load_papers(bad)
    row = {"variant": "x", "metric": "m", "label": "l", "source": "s"}
    for value, tolerance in ((0.1, None), (None, 0.01), ("1.2%", 0.01), (0.1, -0.01)):
        bad.write_text(yaml.safe_dump({"dbn": {"rows": [{**row, "paper_value": value, "tolerance": tolerance}]}}))
        with pytest.raises(PapersError, match=r"dbn\.rows\[0\]: paper_value and tolerance"):
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


REPO = Path(__file__).resolve().parents[1]
# Numbers a deviation may state beyond config values and paper values: MNIST's split sizes.
DATA_SIZES = {60_000.0, 50_000.0, 10_000.0}
NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?:e-?\d+)?%?")


def _numbers(x):
    if isinstance(x, dict):
        return [n for v in x.values() for n in _numbers(v)]
    if isinstance(x, list):
        return [n for v in x for n in _numbers(v)]
    return [float(x)] if isinstance(x, (int, float)) and not isinstance(x, bool) else []


def measured_looking_numbers(papers: dict, config_values: set) -> list[str]:
    """Numbers in papers.yaml text that neither a paper nor a config states: a deviation or note may
    name config constants, data sizes and paper values; a label or source only paper percentages."""
    rows = [r for section in papers.values() for r in section.get("rows", []) if r.get("paper_value") is not None]
    paper = {abs(r["paper_value"]) for r in rows}
    percent = {round(100 * r["paper_value"], 6) for r in rows if r.get("display") == "percent"}
    allowed = {abs(v) for v in config_values} | paper | DATA_SIZES
    bad = []
    for key, section in papers.items():
        texts = [(t, False) for field in ("deviations", "notes") for t in section.get(field, [])]
        texts += [(r[f], True) for r in section.get("rows", []) for f in ("label", "source")]
        for text, percentages_only in texts:
            for token in NUMBER.findall(text):
                value = abs(float(token.rstrip("%").replace(",", "")))
                ok = round(value, 6) in percent if token.endswith("%") else percentages_only or value in allowed
                if not ok:
                    bad.append(f"{key}: {token!r} in {text!r}")
    return bad


def test_papers_yaml_states_no_measured_numbers():
    config_values = {v for name in ("config", "quick", "smoke")
                     for v in _numbers(yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text()))}
    papers = load_papers(REPO / "config" / "papers.yaml")
    assert measured_looking_numbers(papers, config_values) == []
    # the check catches the kind of text it guards against
    papers["rnn_hmm"]["deviations"].append("without it the GMM-HMM's test digit error was 57% instead of 26%")
    papers["nn_crf"]["deviations"].append("SLL reaches 79.88 on testb, validation F1 86.6")
    papers["dbn"]["rows"][0]["source"] += " (ours: 3.10%)"
    assert len(measured_looking_numbers(papers, config_values)) == 5


def test_repository_paper_values_as_read():
    papers = load_papers(REPO / "config" / "papers.yaml")
    value = {(key, r["variant"], r["metric"]): r.get("paper_value") for key, s in papers.items() for r in s["rows"]}
    assert value[("rnn_hmm", "timit_hybrid", "test_per")] is None  # GJM13's table not read
    sh09 = {("dbm2", "test_logprob"): -84.62, ("dbm2", "train_logprob"): -83.61, ("dbm2", "log_z"): 356.18,
            ("dbm2", "test_logprob_estimate"): -82.86, ("dbm3", "test_logprob"): -85.10,
            ("dbm3", "train_logprob"): -84.49, ("dbm3", "log_z"): 456.57}
    assert {k: value[("dbm", *k)] for k in sh09} == sh09
    sm08 = [r for r in papers["dbm"]["rows"] if r["variant"].startswith("ais_rbm")]
    assert len(sm08) == 6 and all("not verified" in r["source"] for r in sm08)


def test_a_row_outside_tolerance_links_the_ablations_that_measure_it(tmp_path):
    papers = tmp_path / "papers.yaml"
    papers.write_text(yaml.safe_dump(PAPERS))
    metrics = [_run(tmp_path, "dbn", "updown", 0, {"test_error": 0.0300}),
               _run(tmp_path, "dbn", "backprop", 0, {"test_error": 0.0300}),
               _run(tmp_path, "dbn", "short", 0, {"test_error": 0.0350}),
               _run(tmp_path, "dbn", "short_lr", 0, {"test_error": 0.0330})]
    ablations = {"dbn": [{"name": "short", "base": "updown", "set": {"epochs": 3}, "why": "control"},
                         {"name": "short_lr", "base": "short", "set": {"lr": 0.1}, "why": "rate?"},
                         {"name": "short_valid", "base": "short", "set": {"lr": 0.2}, "why": "?", "metrics": ["valid_error"]}]}
    html, table = tmp_path / "index.html", tmp_path / "summary.csv"
    main(["report", "build", "--papers", str(papers), "--metrics", *metrics, "--params",
          json.dumps({"title": "r", "run_label": "", "notes": {}, "ablations": ablations}), "--html", str(html), "--table", str(table)])
    text = html.read_text()
    section = text[text.index('id="dbn"'):text.index('id="dbm"')]
    updown = next(tr for tr in section.split("<tr>") if "up-down error" in tr)
    backprop = next(tr for tr in section.split("<tr>") if "backprop error" in tr)
    assert "outside tolerance" in updown and "outside tolerance" in backprop
    # the chain short -> short_lr starts at updown; short_valid measures another metric
    assert re.findall(r'href="#ablation-dbn-(\w+)"', updown) == ["short", "short_lr"]
    assert 'id="ablation-dbn-short_lr"' in section
    assert "no ablation explains this row yet" in backprop and "ablation-dbn" not in backprop
    rows = {r["variant"]: r for r in csv.DictReader(table.open())}
    assert rows["updown"]["ablations"] == "short short_lr" and rows["backprop"]["ablations"] == ""
