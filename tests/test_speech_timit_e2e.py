"""The TIMIT path end to end on the generated TIMIT-format tree: data layer -> every system -> metrics,
and the Snakemake DAG gains the TIMIT rows when data.timit_path is set (without it: test_pipeline)."""
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dlgm.atomic import torch_load
from dlgm.cli import main
from dlgm.data import timit
from timit_fixture import make_timit_tree, timit_meta_dir

REPO = Path(__file__).resolve().parents[1]
NET = {"hidden": 8, "layers": 1, "optimizer": "adam", "learning_rate": 0.01, "momentum": 0.9, "batch_size": 4,
       "epochs": 2, "weight_noise": 0.075, "clip_norm": 5.0, "decode_batch_size": 8, "lm_scale": 1.0,
       "insertion_penalty": 0.0}


def test_timit_fixture_runs_every_system(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="dlgm")
    root = make_timit_tree(tmp_path / "LDC93S1")
    data = tmp_path / "processed"
    timit.prepare_timit(root, timit_meta_dir(), data)
    runs = tmp_path / "runs"
    gmm = {"states_per_phone": 3, "mixtures": [1, 2], "iterations_per_mixture": 2, "var_floor": 0.01,
           "batch_size": 8, "decode_batch_size": 8, "lm_scale": 1.0, "insertion_penalty": 0.0}
    common = ["--data", str(data), "--seed", "0", "--threads", "1"]
    files = {system: {name: str(runs / system / f"{name}.{ext}") for name, ext in
                      (("metrics", "json"), ("model", "pt"), ("alignments", "pt"), ("example", "pt"), ("extras", "pt"))}
             for system in ("gmm", "hybrid", "hand", "fullsum", "ctc")}
    g, h, c = files["gmm"], files["hybrid"], files["ctc"]
    main(["rnn_hmm", "gmm-hmm", "--params", json.dumps(gmm), "--variant", "timit_gmm_hmm", *common,
          "--metrics", g["metrics"], "--model", g["model"], "--alignments", g["alignments"], "--example", g["example"]])
    hybrid = dict(NET, acoustic_scale=1.0, prior_scale=1.0, realign_rounds=1)
    main(["rnn_hmm", "hybrid", "--params", json.dumps(hybrid), "--variant", "timit_hybrid", *common,
          "--gmm", g["model"], "--alignments", g["alignments"], "--metrics", h["metrics"], "--model", h["model"],
          "--extras", h["extras"]])
    hand = files["hand"]
    main(["rnn_hmm", "hybrid", "--params", json.dumps(dict(hybrid, targets="hand_labels")),
          "--variant", "timit_hybrid_handlabels", *common, "--gmm", g["model"], "--alignments", g["alignments"],
          "--metrics", hand["metrics"], "--model", hand["model"], "--extras", hand["extras"]])
    f = files["fullsum"]
    main(["rnn_hmm", "fullsum", "--params", json.dumps(dict(NET, acoustic_scale=1.0, prior_scale=1.0, init_ce_epochs=1,
                                                                 init_from_hybrid=False, loss_prior_scale=0.5,
                                                                 loss_prior_window=2)),
          "--variant", "timit_fullsum", *common, "--gmm", g["model"], "--alignments", g["alignments"],
          "--metrics", f["metrics"], "--model", f["model"], "--extras", f["extras"]])
    # full-sum training from the trained hybrid: with no epochs the run keeps the hybrid's network exactly;
    # a file that is not a hybrid's model is refused before anything is written
    start = dict(NET, acoustic_scale=1.0, prior_scale=1.0, init_ce_epochs=0, init_from_hybrid=True,
                 loss_prior_scale=0.0, loss_prior_window=0, epochs=0)
    fh = {name: str(runs / "from_hybrid" / f"{name}.{ext}") for name, ext in
          (("metrics", "json"), ("model", "pt"), ("extras", "pt"))}
    args = ["rnn_hmm", "fullsum", "--params", json.dumps(start), "--variant", "timit_fullsum_from_hybrid", *common,
            "--gmm", g["model"], "--alignments", g["alignments"], "--metrics", fh["metrics"], "--model", fh["model"],
            "--extras", fh["extras"]]
    with pytest.raises(SystemExit):
        main([*args, "--hybrid", g["model"]])
    assert f"--hybrid {g['model']}: not a hybrid's model.pt" in caplog.text and not (runs / "from_hybrid").exists()
    main([*args, "--hybrid", h["model"]])
    kept, trained = torch_load(fh["model"])["model"], torch_load(h["model"])["model"]
    assert kept.keys() == trained.keys() and all(torch.equal(kept[k], trained[k]) for k in kept)
    started = json.loads(Path(fh["metrics"]).read_text())["metrics"]
    assert started["init_from_hybrid"] == 1.0
    # the start network decoded as the hybrid decodes it: exactly the hybrid run's own metrics
    trained = json.loads(Path(h["metrics"]).read_text())["metrics"]
    assert {k: started[f"start_{k}"] for k in ("test_per", "dev_per", "test_frame_accuracy")} == {
        k: trained[k] for k in ("test_per", "dev_per", "test_frame_accuracy")}
    assert not any(key.startswith("start_") for key in json.loads(Path(f["metrics"]).read_text())["metrics"])
    main(["rnn_hmm", "ctc", "--params", json.dumps(dict(NET, beam=4)), "--variant", "timit_ctc", *common,
          "--metrics", c["metrics"], "--model", c["model"], "--extras", c["extras"]])
    scored = {"test": scored_phone_count(root, "MDAB0"), "dev": scored_phone_count(root, "FAKS0")}
    for system in ("gmm", "hybrid", "hand", "fullsum", "ctc"):
        record = json.loads((runs / system / "metrics.json").read_text())
        assert record["paper"] == "rnn_hmm" and record["variant"].startswith("timit_")
        metrics = record["metrics"]
        for split, n in scored.items():  # a PER is a whole number of edits over the scored phones
            edits = metrics[f"{split}_per"] * n
            assert edits == pytest.approx(round(edits), abs=1e-9), (system, split, metrics)
        assert "test_der" not in metrics  # digits only for FSDD
        assert ("test_frame_accuracy" in metrics) == (system != "ctc")
    gmm = json.loads((runs / "gmm" / "metrics.json").read_text())["metrics"]
    # each fixture phone is a tone of its own: even this 2-Gaussian GMM-HMM finds most of them
    # (0.56 PER, 59% of frames here), where chance over 11 phones gets about 9% of frames
    assert gmm["test_per"] < 0.8 and gmm["test_frame_accuracy"] > 0.4, gmm
    fig = tmp_path / "fig"
    fullsum = json.loads((runs / "fullsum" / "metrics.json").read_text())["metrics"]
    assert fullsum["init_ce_epochs"] == 1 and fullsum["loss_prior_scale"] == 0.5 and fullsum["loss_prior_window"] == 2
    assert 0 < fullsum["train_min_duration_share"] < 1 and 0 < fullsum["train_top_phone_share"] < 1
    # the log names the phone the saved priors make most occupied (the metric gives only its share)
    shares = torch_load(f["model"])["priors"].exp().view(-1, 3).sum(1)
    top = json.loads((data / "meta.json").read_text())["phones"][int(shares.argmax())]
    assert float(shares.max()) == pytest.approx(fullsum["train_top_phone_share"], abs=1e-6)
    line = f"timit_fullsum: the phone most occupied in training (train_top_phone_share {float(shares.max()):.3f}): {top}\n"
    assert line in caplog.text, (line, caplog.text[-2000:])
    main(["rnn_hmm", "plot", "--metrics", *(files[s]["metrics"] for s in files), "--example", g["example"],
          "--extras", h["extras"], hand["extras"], f["extras"], c["extras"], "--state-path", str(fig / "timit_state_path.png"),
          "--per-by-system", str(fig / "timit_per_by_system.png"),
          "--phone-confusion", str(fig / "timit_phone_confusion.png")])
    caption = (fig / "timit_state_path.txt").read_text()
    for row in ("hand labels", "GMM-HMM forced alignment", "timit_hybrid,", "timit_hybrid_handlabels", "timit_fullsum",
                "timit_ctc"):
        assert row in caption, (row, caption)
    for name in ("state_path", "per_by_system", "phone_confusion"):
        assert (tmp_path / "fig" / f"timit_{name}.png").stat().st_size > 0
        assert (tmp_path / "fig" / f"timit_{name}.txt").read_text().strip()


def scored_phone_count(root: Path, speaker: str) -> int:
    """Reference phones TIMIT scoring counts for a speaker: SI/SX sentences, folded 61 -> 39 with
    the Kaldi map (q deleted), utterance-edge h# not scored."""
    fold = {}
    for line in (timit_meta_dir() / "phones.60-48-39.map").read_text().splitlines():
        cols = line.split()
        if cols:
            fold[cols[0]] = cols[2] if len(cols) == 3 else None
    sentences = [p for p in root.rglob("*") if p.parent.name == speaker and p.suffix.lower() == ".phn"
                 and not p.stem.upper().startswith("SA")]
    return sum(1 for p in sentences for line in p.read_text().splitlines() if fold.get(line.split()[2]))


def test_dag_has_timit_rows_when_a_path_is_given(tmp_path):
    root = make_timit_tree(tmp_path / "LDC93S1")
    config = tmp_path / "timit.yaml"
    config.write_text(f"data:\n  timit_path: {root}\n")

    def jobs(*extra):
        out = subprocess.run([sys.executable, "-m", "snakemake", "-n", *extra, "--", "rnn_hmm_all"],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout + out.stderr

    with_timit = jobs("--configfile", "config/smoke.yaml", str(config))
    for target in ("prepare_timit", "timit_gmm_hmm", "timit_hybrid", "timit_hybrid_handlabels", "timit_fullsum",
                   "timit_ctc", "timit_phone_confusion.png", "timit_sample_fold0_fullsum", "timit_sample_fullsum/folds"):
        assert target in with_timit
