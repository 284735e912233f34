"""reference/: exporting finished runs (layout, what stays out, size limits, README table), and the
report built from it alone or with a "reference run" column beside this checkout's runs."""
import csv
import filecmp
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
import torch
import yaml

import dlgm.reference as reference
from conftest import copy_pipeline, snakemake
from dlgm.atomic import torch_save
from dlgm.cli import main
from dlgm.metrics import write_metrics
from dlgm.reference import (MARKER, ReferenceError, curve_seconds, export, find_runs, run_time,
                            typical_curve_seconds)

PAPERS = {
    "dbn": {"title": "Deep belief nets", "rows": [
        {"variant": "updown", "metric": "test_error", "paper_value": 0.0125, "tolerance": 0.002,
         "display": "percent", "label": "up-down error", "source": "HOT06"}]},
    "dbm": {"title": "Deep Boltzmann machines", "rows": [
        {"variant": "dbm2", "metric": "test_logprob", "paper_value": -84.62, "tolerance": 2.0,
         "display": "nats", "label": "log-prob", "source": "SH09"},
        {"variant": "ais_rbm_cd1", "metric": "test_logprob", "paper_value": -86.34, "tolerance": 2.0,
         "display": "nats", "label": "RBM log-prob", "source": "SM08"}]},
}
RBM = {"W": torch.arange(12.0).reshape(3, 4), "b": torch.zeros(3), "c": torch.ones(4)}


def _metrics(run: Path, paper, variant, seed, metrics, wall, version="0123abc"):
    """A metrics.json as the pipeline writes it, from a clean checkout of commit ``version``."""
    path = run / "metrics.json"
    write_metrics(path, paper=paper, variant=variant, seed=seed, split="test", metrics=metrics,
                  wall_seconds=wall, device="NVIDIA H200", config={"lr": 0.1, "variant": variant})
    record = json.loads(path.read_text())
    record["versions"]["dlgm"] = version  # not the checkout the tests run from
    path.write_text(json.dumps(record))


def _benchmark(path: Path, seconds: float):
    path.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:00\t100.0\n")


def make_runs(root: Path) -> Path:
    """A finished run set as the pipeline writes it, checkpoints and intermediate models included."""
    runs = root / "runs"
    rbm = runs / "dbm" / "ais_rbm_cd1" / "seed0"
    rbm.mkdir(parents=True)
    _metrics(rbm, "dbm", "ais_rbm_cd1", 0, {"test_logprob": -87.0, "log_z": 400.0}, 30.0)
    torch_save(RBM, rbm / "rbm.pt")
    torch_save({"epoch": 3, "state": RBM}, rbm / "checkpoint_rbm.pt")
    (rbm / "curve.csv").write_text("epoch,recon_error\n1,50.0\n")
    (rbm / "log.txt").write_text("12:00:00 INFO rbm_cd1 epoch 1/1\n")
    _benchmark(rbm / "benchmark.tsv", 40.0)
    dbm = runs / "dbm" / "dbm2" / "seed0"
    dbm.mkdir(parents=True)
    _metrics(dbm, "dbm", "dbm2", 0, {"test_logprob": -85.0}, 100.0)
    torch_save({"weights": [torch.ones(4, 3), torch.ones(3, 2)]}, dbm / "dbm.pt")
    torch_save({"W": torch.ones(4, 3)}, dbm / "pretrained.pt")
    torch_save({"epoch": 1}, dbm / "checkpoint_dbm.pt")
    (dbm / "dbm.ckpt").write_bytes(b"old checkpoint name")
    (dbm / "ais.json").write_text('{"log_z": 356.0}\n')
    for stage, seconds in (("pretrain", 50.0), ("train", 3600.0), ("finetune", 200.0)):
        (dbm / f"curve_{stage}.csv").write_text("epoch,x,seconds\n1,2,30.0\n2,2,30.0\n")  # 60 s a stage
        (dbm / f"log_{stage}.txt").write_text(f"{stage}\n")
        _benchmark(dbm / f"benchmark_{stage}.tsv", seconds)
    for seed, error in ((0, 0.012), (1, 0.014)):
        updown = runs / "dbn" / "updown" / f"seed{seed}"
        updown.mkdir(parents=True)
        _metrics(updown, "dbn", "updown", seed, {"test_error": error}, 60.0)
        torch_save({"W": torch.ones(2, 2)}, updown / "model.pt")  # DBN weights are not committed
        torch_save({"epoch": 2}, updown / "checkpoint_updown.pt")
        (updown / "curve_updown.csv").write_text("epoch,error\n1,0.1\n")
        (updown / "log_updown.txt").write_text("updown\n")
        _benchmark(updown / "benchmark_updown.tsv", 90.0)
    ctc = runs / "rnn_hmm" / "fsdd_ctc" / "seed0"
    ctc.mkdir(parents=True)
    _metrics(ctc, "rnn_hmm", "fsdd_ctc", 0, {"test_per": 0.2}, 10.0)
    (ctc / "ctc_curve.csv").write_text("epoch,loss\n1,3.0\n")
    folds = runs / "rnn_hmm" / "timit_sample_ctc" / "folds"  # `rnn_hmm folds`: the mean over fold runs
    folds.mkdir(parents=True)
    _metrics(folds, "rnn_hmm", "timit_sample_ctc", 0, {"test_per": 0.6, "test_per_fold_sd": 0.02}, 40.0)
    unfinished = runs / "nn_crf" / "ner_sll" / "seed0"  # no metrics.json: still running
    unfinished.mkdir(parents=True)
    (unfinished / "curve.csv").write_text("epoch\n1\n")
    return runs


EXPECTED = {
    "dbm/ais_rbm_cd1/seed0": {"metrics.json", "rbm.pt", "curve.csv", "log.txt", "benchmark.tsv"},
    "dbm/dbm2/seed0": {"metrics.json", "dbm.pt", "ais.json"} | {
        f"{kind}_{stage}.{ext}" for stage in ("pretrain", "train", "finetune")
        for kind, ext in (("curve", "csv"), ("log", "txt"), ("benchmark", "tsv"))},
    "dbn/updown/seed0": {"metrics.json", "curve_updown.csv", "log_updown.txt", "benchmark_updown.tsv"},
    "dbn/updown/seed1": {"metrics.json", "curve_updown.csv", "log_updown.txt", "benchmark_updown.tsv"},
    "rnn_hmm/fsdd_ctc/seed0": {"metrics.json", "ctc_curve.csv"},
    "rnn_hmm/timit_sample_ctc/folds": {"metrics.json"},
}


def _tree(root: Path) -> dict[str, set[str]]:
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and path.parent != root:
            found.setdefault(str(path.parent.relative_to(root)), set()).add(path.name)
    return found


def test_export_copies_what_the_runs_wrote_and_leaves_out_checkpoints(tmp_path):
    runs, out = make_runs(tmp_path), tmp_path / "reference"
    export(runs, out)
    assert _tree(out) == EXPECTED
    for folder, names in EXPECTED.items():
        for name in names:
            assert filecmp.cmp(runs / folder / name, out / folder / name, shallow=False)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "dbm", "dbn", "rnn_hmm"]  # no leftovers


def test_weights_load_with_weights_only(tmp_path):
    out = tmp_path / "reference"
    export(make_runs(tmp_path), out)
    rbm = torch.load(out / "dbm/ais_rbm_cd1/seed0/rbm.pt", weights_only=True)
    assert rbm.keys() == RBM.keys() and all(torch.equal(rbm[k], RBM[k]) for k in RBM)
    dbm = torch.load(out / "dbm/dbm2/seed0/dbm.pt", weights_only=True)
    assert [w.shape for w in dbm["weights"]] == [(4, 3), (3, 2)]


def test_pickled_objects_are_refused_naming_the_file(tmp_path):
    runs, out = make_runs(tmp_path), tmp_path / "reference"
    bad = runs / "dbm/dbm2/seed0/dbm.pt"
    torch.save(torch.nn.Linear(2, 2), bad)  # a module, not tensors: would unpickle code on load
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        export(runs, out)
    assert not out.exists()


def test_a_file_over_8_mib_is_refused_naming_it_and_nothing_is_written(tmp_path):
    runs, out = make_runs(tmp_path), tmp_path / "reference"
    big = runs / "dbm/ais_rbm_cd1/seed0/rbm.pt"
    torch_save({"W": torch.zeros(2**21 + 16)}, big)  # 8 MiB of float32 plus a little
    assert big.stat().st_size > 8 * 2**20
    with pytest.raises(ReferenceError, match=re.escape(str(big)) + r".*8 MiB limit"):
        export(runs, out)
    assert not out.exists()
    torch_save({"W": torch.zeros(2**21 - 2**12)}, big)  # just under the limit is fine
    export(runs, out)
    assert (out / "dbm/ais_rbm_cd1/seed0/rbm.pt").stat().st_size <= 8 * 2**20


def test_the_whole_folder_is_capped_counting_what_it_already_holds(tmp_path, monkeypatch):
    runs, out = make_runs(tmp_path), tmp_path / "reference"
    export(runs, out, papers=["dbm"])
    held = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    dbn = sum(p.stat().st_size for p in (runs / "dbn").rglob("*") if p.is_file() and reference.kept(p.name, "dbn"))
    readme = (out / "README.md").read_text()
    monkeypatch.setattr(reference, "MAX_TOTAL", held + dbn - 1)
    with pytest.raises(ReferenceError, match=rf"{re.escape(str(out))}: would hold .* MiB, over the"
                                             r" .* MiB limit of the whole folder \(largest files: .*dbm\.pt"):
        export(runs, out, papers=["dbn"])
    assert not (out / "dbn").exists() and (out / "README.md").read_text() == readme
    # re-exporting a run replaces it, so its old files do not count twice
    monkeypatch.setattr(reference, "MAX_TOTAL", held)
    export(runs, out, papers=["dbm"])


def test_a_run_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    runs, out = make_runs(tmp_path), tmp_path / "reference"
    export(runs, out)
    run = out / "dbn/updown/seed1"
    (run / "stale.txt").write_text("from an older export")
    before = (run / "metrics.json").read_bytes()
    _metrics(runs / "dbn/updown/seed1", "dbn", "updown", 1, {"test_error": 0.02}, 60.0)
    copies = []

    def failing_copy(src, dst):
        copies.append(src)
        if len(copies) == 6:  # seed0 (4 files) is replaced, seed1 fails half-copied
            raise OSError("disk full")
        return shutil.copy(src, dst)

    monkeypatch.setattr(reference.shutil, "copy2", failing_copy)
    with pytest.raises(OSError, match="disk full"):
        export(runs, out, papers=["dbn"])
    assert (run / "metrics.json").read_bytes() == before and (run / "stale.txt").exists()
    assert _tree(out)["dbn/updown/seed0"] == EXPECTED["dbn/updown/seed0"]
    assert sorted(p.name for p in run.parent.iterdir()) == ["seed0", "seed1"]  # no staging folder left
    monkeypatch.undo()
    export(runs, out, papers=["dbn"])
    assert _tree(out)["dbn/updown/seed1"] == EXPECTED["dbn/updown/seed1"]
    assert '"test_error": 0.02' in (run / "metrics.json").read_text()


def test_readme_keeps_its_header_and_tabulates_the_runs(tmp_path):
    runs, out = make_runs(tmp_path), tmp_path / "reference"
    out.mkdir()
    (out / "README.md").write_text(f"# Our reference\n\nHand-written.\n\n{MARKER}\n\nNo reference runs yet.\n")
    export(runs, out)
    text = (out / "README.md").read_text()
    header, table = text.split(MARKER)
    assert header == "# Our reference\n\nHand-written.\n\n"
    assert "No reference runs yet" not in table
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    rows = {tuple(cell.strip() for cell in line.strip("|").split("|")) for line in lines}
    commit = yaml.safe_load((runs / "dbm/dbm2/seed0/metrics.json").read_text())["versions"]["dlgm"]
    date = yaml.safe_load((runs / "dbm/dbm2/seed0/metrics.json").read_text())["finished"][:10]
    hashes = {v: yaml.safe_load((runs / v / "seed0/metrics.json").read_text())["config_hash"]
              for v in ("dbm/ais_rbm_cd1", "dbm/dbm2", "dbn/updown", "rnn_hmm/fsdd_ctc")}
    # per paper: runs, device, dates, commit, config hashes, sums of wall_seconds, benchmarks, curve seconds
    assert ("dbm", "2", "NVIDIA H200", date, f"`{commit}`",
            ", ".join(f"`{h}`" for h in sorted([hashes["dbm/ais_rbm_cd1"], hashes["dbm/dbm2"]])),
            "2.2 min", "64.8 min", "3.0 min", "3.0 min") in rows  # 30 + 100 s; 40 + 50 + 3600 + 200 s; 3 x 60 s
    assert ("dbn", "2", "NVIDIA H200", date, f"`{commit}`", f"`{hashes['dbn/updown']}`", "2.0 min", "3.0 min",
            "—", "—") in rows
    assert ("rnn_hmm", "1", "NVIDIA H200", date, f"`{commit}`", f"`{hashes['rnn_hmm/fsdd_ctc']}`",
            "10 s", "—", "—", "—") in rows
    assert ("dbm", "dbm2/seed0", "NVIDIA H200", date, f"`{commit}`", f"`{hashes['dbm/dbm2']}`",
            "100 s", "64.2 min", "3.0 min", "3.0 min", "dbm.pt") in rows
    assert [line.split("|")[2].strip() for line in lines[-5:]] == [
        "updown/seed0", "updown/seed1", "ais_rbm_cd1/seed0", "dbm2/seed0", "fsdd_ctc/seed0"]  # papers' order
    assert not any(line.startswith("| nn_crf") for line in lines)  # the unfinished run is not exported
    assert "timit_sample_ctc" not in table  # a summary over folds is no run: no row, no time counted twice


def test_the_command_exports_chosen_papers_and_names_bad_arguments(tmp_path, capsys):
    runs, out = make_runs(tmp_path), tmp_path / "reference"
    main(["report", "export-reference", "--runs", str(runs), "--out", str(out), "--papers", "dbm"])
    assert set(_tree(out)) == {"dbm/ais_rbm_cd1/seed0", "dbm/dbm2/seed0"}
    assert "dbm2/seed0" in capsys.readouterr().out
    # without weights: the runs' folders are replaced by ones without rbm.pt / dbm.pt, and the table says so
    main(["report", "export-reference", "--runs", str(runs), "--out", str(out), "--papers", "dbm", "--no-weights"])
    assert _tree(out) == {k: v - {"rbm.pt", "dbm.pt"} for k, v in EXPECTED.items() if k.startswith("dbm/")}
    assert "| 3.0 min | — |" in (out / "README.md").read_text()
    with pytest.raises(ReferenceError, match=r"--papers: unknown paper\(s\) \['dbx'\]"):
        find_runs(runs, ["dbx"])
    with pytest.raises(ReferenceError, match="--runs .*no finished run"):
        find_runs(runs, ["nn_crf"])
    moved = runs / "dbn/updown/seed7"
    (runs / "dbn/updown/seed1").rename(moved)
    with pytest.raises(ReferenceError, match=r"seed7/metrics.json: records dbn/updown/seed1"):
        find_runs(runs)


def _build(tmp_path, name, *args, source="runs", protocols=None):
    papers = tmp_path / "papers.yaml"
    papers.write_text(yaml.safe_dump(PAPERS))
    html, table = tmp_path / name / "index.html", tmp_path / name / "summary.csv"
    config = {"title": "t", "run_label": "my config", "notes": {}, "source": source, "protocols": protocols or {}}
    main(["report", "build", "--params", json.dumps(config), "--papers", str(papers), "--html", str(html),
          "--table", str(table), *args])
    return html.read_text(), {(r["variant"], r["metric"]): r for r in csv.DictReader(table.open())}


def _reference_metrics(out: Path) -> list[str]:
    return sorted(str(p) for p in out.glob("*/*/seed*/metrics.json"))


def test_report_from_reference_alone(tmp_path):
    out = tmp_path / "reference"
    export(make_runs(tmp_path), out)
    html, rows = _build(tmp_path, "from_reference", "--metrics", *_reference_metrics(out), source="reference")
    assert "Built from the reference runs committed in <code>reference/</code> alone" in html
    assert "Numbers from the <b>reference runs (reference/)</b>" in html and "my config" not in html
    assert "<th>reference run (mean ± sd)</th>" in html and "this run" not in html
    assert "<figure><a" not in html  # no per-run figures
    assert float(rows[("updown", "test_error")]["replicated_mean"]) == pytest.approx(0.013)
    assert rows[("updown", "test_error")]["n_seeds"] == "2"
    assert rows[("updown", "test_error")]["reference_mean"] == ""  # no second column of the same runs
    assert "NVIDIA H200" in html  # the run environment table lists the reference runs
    with pytest.raises(SystemExit):  # figures come from run folders: refused with reference
        _build(tmp_path, "bad", "--metrics", *_reference_metrics(out), "--figures", str(tmp_path / "x.png"),
               source="reference")


def test_reference_run_column_beside_this_run(tmp_path):
    runs, out = make_runs(tmp_path), tmp_path / "reference"
    export(runs, out, papers=["dbn", "dbm"])
    mine = tmp_path / "mine"
    _metrics(mine / "dbn/updown/seed0", "dbn", "updown", 0, {"test_error": 0.03}, 5.0)
    _metrics(mine / "rnn_hmm/fsdd_ctc/seed0", "rnn_hmm", "fsdd_ctc", 0, {"test_per": 0.3}, 5.0)
    this = sorted(str(p) for p in mine.glob("*/*/seed*/metrics.json"))
    # seed 1 was resumed: its benchmark (90 s) timed the last invocation, its epochs took 310 s
    (out / "dbn/updown/seed1/curve_updown.csv").write_text("epoch,error,seconds\n1,0.1,150\n2,0.1,160\n")
    html, rows = _build(tmp_path, "with_reference", "--metrics", *this, "--reference", *_reference_metrics(out))

    updown = rows[("updown", "test_error")]
    assert float(updown["replicated_mean"]) == pytest.approx(0.03) and updown["n_seeds"] == "1"
    assert float(updown["reference_mean"]) == pytest.approx(0.013)
    assert float(updown["reference_sd"]) == pytest.approx(0.0014142, rel=1e-4)
    assert updown["reference_n_seeds"] == "2" and updown["reference_device"] == "NVIDIA H200"
    assert float(updown["reference_wall_seconds"]) == (90.0 + 310.0) / 2  # per seed
    dbm2 = rows[("dbm2", "test_logprob")]
    assert dbm2["replicated_mean"] == "" and float(dbm2["reference_mean"]) == -85.0
    assert float(dbm2["reference_wall_seconds"]) == 3850.0  # every rule of the run
    ctc = rows[("fsdd_ctc", "test_per")]  # not exported: no reference value
    assert (ctc["reference_mean"], ctc["reference_n_seeds"]) == ("", "0")

    overview = html[html.index('id="overview"'):html.index('id="dbn"')]
    assert "<th>paper</th><th>reference run</th><th>this run</th>" in overview
    row = next(tr for tr in overview.split("<tr>") if "up-down error" in tr)
    paper, ref, this_run = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)[2:5]
    assert paper == "1.25%" and this_run == "3.00%"
    assert "1.30% ± 0.14%" in ref and "seeds 0, 1; NVIDIA H200; wall time 3.3 min per seed" in ref
    section = html[html.index('id="dbm"'):html.index('id="rnn_hmm"')]
    assert "-85.00" in section and "wall time 64.2 min per seed" in section

    plain, _ = _build(tmp_path, "without_reference", "--metrics", *this)
    assert "reference run" not in plain


@pytest.mark.timeout(300)
def test_snakemake_rebuilds_the_report_from_reference_without_training(tmp_path):
    workdir = copy_pipeline(tmp_path / "pipeline")
    empty = snakemake(workdir, "-n", "--config", 'report={"source": "reference"}', check=False)
    assert empty.returncode != 0
    assert "reference/ holds no <paper>/<variant>/seed<N>/metrics.json" in empty.stdout + empty.stderr
    export(make_runs(tmp_path), workdir / "reference")
    dry = snakemake(workdir, "-n", "--config", 'report={"source": "reference"}').stdout
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", dry[dry.index("Job stats"):], flags=re.M))
    assert jobs == {"report": "1", "all": "1", "total": "2"}
    assert '"source": "reference"' in snakemake(workdir, "-n", "-p", "--config",
                                                'report={"source": "reference"}').stdout
    # the default builds from the runs, so it trains (and shows reference/ beside them)
    default = snakemake(workdir, "-n", "-p").stdout
    assert "dbm_train" in default
    assert "--reference reference/dbm/ais_rbm_cd1/seed0/metrics.json reference/dbm/dbm2" in default
    assert "reference/rnn_hmm/timit_sample_ctc/folds/metrics.json" in default
    assert re.search(r"--benchmarks\s+>", default)  # no speed table yet
    (workdir / "reference/benchmarks.csv").write_text("key,loop\n")
    (workdir / "reports/tables").mkdir(parents=True)
    (workdir / "reports/tables/benchmarks.csv").write_text("key,loop\n")
    with_tables = snakemake(workdir, "-n", "-p").stdout
    assert "--benchmarks reports/tables/benchmarks.csv reference/benchmarks.csv >" in with_tables
    # the report is told the parameters that the rules writing those runs' metrics.json now get
    commands = [shlex.split(line.removeprefix("Shell command: ")) for line in default.splitlines()
                if line.removeprefix("Shell command: ").startswith("python -m dlgm ")]

    def given(command, variant=None):  # the --params of `python -m dlgm <command>` (for that --variant)
        cmd = next(c for c in commands if c[3:5] == command.split()
                   and (variant is None or c[c.index("--variant") + 1] == variant))
        return json.loads(cmd[cmd.index("--params") + 1])
    protocols = given("report build")["protocols"]
    assert protocols["dbm/dbm2"] == given("dbm finetune", "dbm2")
    assert protocols["dbm/ais_rbm_cd1"] == given("dbm rbm", "ais_rbm_cd1")
    assert protocols["dbn/updown"]["updown"]["epochs"] > 0 and "rnn_hmm/fsdd_ctc" not in protocols


def test_the_typical_epoch_time_leaves_out_a_stretched_epoch(tmp_path):
    """One epoch that a pause or a busy machine stretched counts in the sum, not in the typical time."""
    (tmp_path / "curve_a.csv").write_text("epoch,seconds\n1,10\n2,12\n3,600\n")
    (tmp_path / "curve_b.csv").write_text("epoch,seconds\n1,5\n2,7\n")
    (tmp_path / "curve_empty.csv").write_text("epoch,seconds\n")
    assert curve_seconds(tmp_path) == 634.0
    assert typical_curve_seconds(tmp_path) == 3 * 12.0 + 2 * 6.0
    assert typical_curve_seconds(tmp_path / "missing") is None


def test_a_resumed_run_took_the_time_of_its_epochs(tmp_path):
    """Snakemake's benchmark times only the invocation that finished a resumed run."""
    _benchmark(tmp_path / "benchmark_train.tsv", 100.0)
    (tmp_path / "curve_train.csv").write_text("epoch,seconds\n1,400\n2,500\n")
    assert run_time(tmp_path) == 900.0
    (tmp_path / "curve_train.csv").write_text("epoch,seconds\n1,40\n")  # epochs within the one invocation
    assert run_time(tmp_path) == 100.0
    (tmp_path / "benchmark_train.tsv").unlink()
    assert run_time(tmp_path) == 40.0 and run_time(tmp_path / "missing") is None


def test_the_report_names_what_the_config_changed_since_a_reference_run(tmp_path):
    from dlgm.report.reference import protocol_changes

    recorded = {"greedy": {"lr": 0.1, "mean_field": False}, "sizes": [784, 500], "seed": 3}
    assert protocol_changes(recorded, {"greedy": {"lr": 0.1, "mean_field": False}, "sizes": [784, 500]}) == []
    assert protocol_changes(recorded, {"greedy": {"lr": 0.1, "mean_field": True, "k": 3}, "sizes": [784, 400]}) == [
        "greedy.k: not set → 3", "greedy.mean_field: false → true", "sizes: [784, 500] → [784, 400]"]
    assert protocol_changes(recorded, None) == ["it no longer has this run"]
    # a setting the run predates reads as the code's behaviour before it existed
    assert protocol_changes(recorded, {"greedy": {"lr": 0.1, "mean_field": False, "cd_ramp_every": [0]},
                                       "sizes": [784, 500], "ais": {"logprob_per_class": True}}) == [
        "ais.logprob_per_class: false → true"]
    assert protocol_changes(recorded, {"greedy": {"lr": 0.1, "mean_field": False, "cd_ramp_every": [0, 20]},
                                       "sizes": [784, 500]}) == ["greedy.cd_ramp_every: [0] → [0, 20]"]

    out = tmp_path / "reference"
    export(make_runs(tmp_path), out, papers=["dbn", "dbm"])  # every run records {"lr": 0.1, "variant": ...}
    protocols = {"dbn/updown": {"lr": 0.05}, "dbm/dbm2": {"lr": 0.1}, "dbm/ais_rbm_cd1": None}
    html, rows = _build(tmp_path, "alone", "--metrics", *_reference_metrics(out), source="reference",
                        protocols=protocols)
    notes = re.findall(r'<p class="note">(Since the reference run.*?)</p>', html, flags=re.S)
    assert notes == ["Since the reference run updown (seed 0, 1) the config has changed: lr: 0.1 → 0.05.",
                     "Since the reference run ais_rbm_cd1 (seed 0) the config has changed: it no longer has this run."]
    mine = tmp_path / "mine"
    _metrics(mine / "dbn/updown/seed0", "dbn", "updown", 0, {"test_error": 0.03}, 5.0)
    html, rows = _build(tmp_path, "beside", "--metrics", str(mine / "dbn/updown/seed0/metrics.json"),
                        "--reference", *_reference_metrics(out), protocols=protocols)
    assert rows[("updown", "test_error")]["reference_protocol_changes"] == "lr: 0.1 → 0.05"
    assert rows[("dbm2", "test_logprob")]["reference_protocol_changes"] == ""
    assert "protocol changed since</b> (see the notes)" in html and len(re.findall("Since the reference run", html)) == 2


def test_a_run_from_a_checkout_with_uncommitted_changes_is_refused_unless_allowed(tmp_path):
    runs, out = make_runs(tmp_path), tmp_path / "reference"
    _metrics(runs / "dbn/updown/seed1", "dbn", "updown", 1, {"test_error": 0.014}, 60.0, version="0123abc-dirty")
    with pytest.raises(ReferenceError, match=r"updown/seed1/metrics.json: ran from a checkout with uncommitted "
                                             r"changes \(versions.dlgm = '0123abc-dirty'\)"):
        export(runs, out)
    assert not out.exists()  # nothing written
    main(["report", "export-reference", "--runs", str(runs), "--out", str(out), "--allow-dirty"])
    assert "0123abc-dirty" in (out / "dbn/updown/seed1/metrics.json").read_text()


def test_a_summary_over_folds_must_lie_in_its_variant_folder(tmp_path):
    runs = make_runs(tmp_path)
    moved = runs / "rnn_hmm" / "timit_sample_hybrid" / "folds"
    (runs / "rnn_hmm" / "timit_sample_ctc").rename(moved.parent)
    with pytest.raises(ReferenceError, match=r"timit_sample_hybrid/folds/metrics.json: records "
                                             r"rnn_hmm/timit_sample_ctc/folds, but lies in rnn_hmm/timit_sample_hybrid/folds"):
        find_runs(runs)
