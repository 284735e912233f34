"""An interim look at a speech run (`snakemake <run>/interim.json`, the system's command with
--interim): on a finished run it decodes exactly the run's own metrics and changes nothing of the
run; where the run has no checkpoint it fails naming the file and writes nothing."""
import json
import logging

import pytest

from conftest import snakemake
from dlgm.cli import main
from dlgm.metrics import read_metrics

RUNS = {"fsdd_hybrid": "hybrid", "fsdd_fullsum": "fullsum", "fsdd_ctc": "ctc",
        "timit_sample_fold0_hybrid_handlabels": "hybrid"}


def _files(folder):
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_interim_look_at_a_finished_run_is_the_run_itself(smoke_run):
    root = smoke_run / "data" / "runs" / "rnn_hmm"
    before = _files(root)
    targets = [f"data/runs/rnn_hmm/{variant}/seed0/interim.json" for variant in RUNS]
    # import lines in its log, as the smoke run's own jobs have them (tests/test_code_inputs.py reads them)
    snakemake(smoke_run, "--nolock", "--cores", "1", "--configfile", "config/smoke.yaml", "--", *targets,
              env={"PYTHONPROFILEIMPORTTIME": "1"})
    for variant, stage in RUNS.items():
        final = read_metrics(root / variant / "seed0" / "metrics.json")
        look = read_metrics(root / variant / "seed0" / "interim.json")
        assert look["metrics"] == final["metrics"], variant
        assert (look["variant"], look["config_hash"]) == (final["variant"], final["config_hash"])
        [progress] = look["extra"]["interim"]
        assert progress["stage"] == stage and progress["epochs_done"] == progress["epochs"] == 2
        assert 1 <= progress["best_dev_epoch"] <= 2
    after = {p: t for p, t in _files(root).items() if p.name not in ("interim.json", "interim.log")}
    assert after == before


@pytest.mark.slow
def test_interim_look_without_a_checkpoint_fails_naming_it_and_writes_nothing(smoke_run, tmp_path, caplog):
    run = smoke_run / "data" / "runs" / "rnn_hmm" / "fsdd_hybrid" / "seed0"
    gmm = smoke_run / "data" / "runs" / "rnn_hmm" / "fsdd_gmm_hmm" / "seed0"
    elsewhere = tmp_path / "not_started"
    config = read_metrics(run / "metrics.json")["config"]
    caplog.set_level(logging.ERROR)
    with pytest.raises(SystemExit):
        main(["rnn_hmm", "hybrid", "--params", json.dumps(config), "--data", str(smoke_run / "data/processed/fsdd"),
              "--variant", "fsdd_hybrid", "--seed", "0", "--threads", "1", "--gmm", str(gmm / "model.pt"),
              "--alignments", str(gmm / "alignments.pt"), "--metrics", str(elsewhere / "metrics.json"),
              "--model", str(elsewhere / "model.pt"), "--extras", str(elsewhere / "extras.pt"),
              "--interim", str(tmp_path / "interim.json")])
    assert f"no checkpoint {elsewhere / 'checkpoint_hybrid.pt'}" in caplog.text
    assert not elsewhere.exists() and not (tmp_path / "interim.json").exists()
