"""The report shows an AIS-based number whose AIS did not converge (or failed its guard) as such:
greyed, no difference and no verdict against the paper; RAISE's number keeps its place."""
import csv
import json

import torch
import yaml

from dlgm.cli import main
from dlgm.metrics import write_metrics

PAPERS = {"dbm": {"title": "Deep Boltzmann machines", "rows": [
    {"variant": v, "metric": "test_logprob", "paper_value": -84.62, "tolerance": 2.0, "display": "nats",
     "label": f"{v} log-prob", "source": "SH09 Table 1"} for v in ("dbm2", "dbm3", "rbm")]}}


def test_unconverged_and_failed_ais_get_no_verdict(tmp_path):
    (tmp_path / "papers.yaml").write_text(yaml.safe_dump(PAPERS))
    runs = []
    for variant, converged, verdict in (("dbm2", 0.0, "not converged"), ("dbm3", 0.0, "failed"),
                                        ("rbm", 1.0, "converged")):
        path = tmp_path / variant / "metrics.json"
        write_metrics(path, paper="dbm", variant=variant, seed=0, split="test",
                      metrics={"test_logprob": -84.0, "test_logprob_raise": -90.0, "ais_converged": converged},
                      wall_seconds=1.0, device=torch.device("cpu"), config={}, extra={"ais_verdict": verdict})
        runs.append(str(path))
    html, table = tmp_path / "index.html", tmp_path / "summary.csv"
    main(["report", "build", "--papers", str(tmp_path / "papers.yaml"), "--metrics", *runs,
          "--params", json.dumps({"title": "t", "notes": {}, "run_label": None}), "--html", str(html), "--table", str(table)])
    rows = {r["variant"]: r for r in csv.DictReader(table.open()) if r["metric"] == "test_logprob"}
    assert rows["dbm2"]["verdict"] == "AIS not converged" and rows["dbm2"]["difference"] == ""
    assert rows["dbm3"]["verdict"] == "AIS failed" and rows["dbm3"]["difference"] == ""
    assert rows["rbm"]["verdict"] == "within tolerance"
    text = html.read_text()
    assert "AIS not converged" in text and "AIS failed" in text
    assert text.count('class="num nopaper"') >= 4  # the two flagged values in both tables
