"""The DBN commands end to end on a tiny synthetic MNIST: determinism, resume after a kill, divergence."""
import json

import pytest
import torch

from dlgm.cli import build_parser
from dlgm.training import TrainingDiverged

UPDOWN = {"sizes": [784, 12, 10], "top_size": 16, "train_images": 200,
          "greedy": {"epochs": 2, "batch_size": 20, "balanced_batches": True, "lr": 0.1, "weight_cost": 0.0002,
                     "momentum_initial": 0.5, "momentum_final": 0.9, "momentum_switch_epoch": 1, "cd_k": 1,
                     "mean_field_reconstruction": False, "init_std": 0.01},
          "updown": {"epochs": 2, "full_epochs": 1, "gibbs_schedule": [[0, 2], [1, 3]], "batch_size": 20,
                     "balanced_batches": True, "lr_generative": 0.01, "lr_recognition": 0.01, "lr_top": 0.01,
                     "momentum": 0.0, "weight_cost": 0.0},
          "samples_per_label": 2, "sample_gibbs_steps": 5}
FINETUNE = {"epochs": 4, "batch_size": 25, "optimizer": "sgd", "lr": 0.1, "lr_decay": 0.9, "momentum": 0.9, "weight_decay": 0.0,
            "top_only_epochs": 1, "init_std": 0.05}
PRETRAIN = {k: v for k, v in UPDOWN["greedy"].items() if k != "init_std"}
BACKPROP = {"sizes": [784, 12, 10], "train_images": None, "pretrain": {**PRETRAIN, "balanced_batches": False},
            "finetune": FINETUNE}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    """Synthetic digits: class c lights a band of pixels, plus noise; every class present."""
    root = tmp_path_factory.mktemp("mnist")
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 300), ("valid", 100), ("test", 100), ("train_full", 400)):
        labels = torch.arange(n) % 10
        images = (torch.rand(n, 784, generator=g) < 0.05).to(torch.uint8) * 255
        for c in range(10):
            images[labels == c, c * 70:(c + 1) * 70] = 255
        torch.save({"images": images, "labels": labels}, root / f"{split}.pt")
    return root


def run(*argv):
    args = build_parser().parse_args([str(a) for a in argv])
    args.func(args)


def updown_run(mnist, out, cfg=UPDOWN, variant="updown", greedy=True):
    data = ["--train", mnist / "train.pt", "--valid", mnist / "valid.pt", "--test", mnist / "test.pt"]
    common = ["--params", json.dumps(cfg), "--seed", 3, "--device", "cpu"]
    if greedy:
        run("dbn", "greedy", *common, *data, "--out", out / "greedy.pt")
    run("dbn", "updown", *common, "--variant", variant, *data, "--train-full", mnist / "train_full.pt",
        "--greedy", out / "greedy.pt", "--model", out / "model.pt", "--metrics", out / "metrics.json")
    return json.loads((out / "metrics.json").read_text())


def finetune_run(mnist, out, variant="baseline"):
    data = ["--train", mnist / "train.pt", "--valid", mnist / "valid.pt", "--test", mnist / "test.pt"]
    common = ["--params", json.dumps(BACKPROP), "--seed", 1, "--device", "cpu"]
    extra = []
    if variant == "backprop":
        run("dbn", "pretrain", *common, "--train", mnist / "train.pt", "--out", out / "pretrained.pt")
        extra = ["--pretrained", out / "pretrained.pt"]
    run("dbn", "finetune", *common, "--variant", variant, *extra, *data, "--model", out / "model.pt",
        "--metrics", out / "metrics.json")
    return json.loads((out / "metrics.json").read_text())


def test_same_seed_gives_the_same_metrics_twice(mnist, tmp_path):
    a = updown_run(mnist, tmp_path / "a")
    b = updown_run(mnist, tmp_path / "b")
    assert a["metrics"] == b["metrics"]
    assert set(a["metrics"]) >= {"test_error", "valid_error", "greedy_test_error", "greedy_valid_error"}
    assert a["variant"] == "updown" and a["paper"] == "dbn"
    c = finetune_run(mnist, tmp_path / "c", "backprop")
    d = finetune_run(mnist, tmp_path / "d", "backprop")
    assert c["metrics"] == d["metrics"] and c["variant"] == "backprop"


class Killed(Exception):
    pass


def test_killed_finetune_resumes_from_its_checkpoint(mnist, tmp_path, monkeypatch, caplog):
    reference = finetune_run(mnist, tmp_path / "ref")
    import dlgm.dbn.finetune as ft

    real, calls = ft.train_epoch, []

    def dies_in_epoch_3(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise Killed()
        return real(*args, **kwargs)

    monkeypatch.setattr(ft, "train_epoch", dies_in_epoch_3)
    with pytest.raises(Killed):
        finetune_run(mnist, tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.json").exists()
    monkeypatch.setattr(ft, "train_epoch", real)
    with caplog.at_level("INFO", logger="dlgm"):
        resumed = finetune_run(mnist, tmp_path / "run")
    assert "resumed from" in caplog.text and "after epoch 2" in caplog.text
    assert resumed["metrics"] == reference["metrics"]


def test_killed_greedy_run_resumes_inside_the_layer_it_was_training(mnist, tmp_path, monkeypatch, caplog):
    reference = updown_run(mnist, tmp_path / "ref")
    import dlgm.dbn.greedy as greedy

    real, calls = greedy.cd_epoch, []

    def dies_in_second_layer(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # rbm1 has 2 epochs: the 4th call is rbm2's second epoch
            raise Killed()
        return real(*args, **kwargs)

    monkeypatch.setattr(greedy, "cd_epoch", dies_in_second_layer)
    with pytest.raises(Killed):
        updown_run(mnist, tmp_path / "run")
    monkeypatch.setattr(greedy, "cd_epoch", real)
    with caplog.at_level("INFO", logger="dlgm"):
        resumed = updown_run(mnist, tmp_path / "run")
    assert "rbm2: resumed" in caplog.text and "after epoch 1" in caplog.text
    assert resumed["metrics"] == reference["metrics"]


def test_killed_up_down_with_momentum_resumes_with_its_velocities(mnist, tmp_path, monkeypatch, caplog):
    cfg = json.loads(json.dumps(UPDOWN))
    cfg["greedy"]["init_std"] = 0.1
    cfg["updown"].update(momentum=0.9, weight_cost=0.001)
    reference = updown_run(mnist, tmp_path / "ref", cfg, variant="updown_momentum")
    assert reference["variant"] == "updown_momentum" and reference["config"]["updown"]["momentum"] == 0.9
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "greedy.pt").write_bytes((tmp_path / "ref" / "greedy.pt").read_bytes())
    import dlgm.dbn.updown as updown

    real, calls = updown.updown_epoch, []

    def dies_in_epoch_2(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise Killed()
        return real(*args, **kwargs)

    monkeypatch.setattr(updown, "updown_epoch", dies_in_epoch_2)
    with pytest.raises(Killed):
        updown_run(mnist, tmp_path / "run", cfg, variant="updown_momentum", greedy=False)
    monkeypatch.setattr(updown, "updown_epoch", real)
    with caplog.at_level("INFO", logger="dlgm"):
        resumed = updown_run(mnist, tmp_path / "run", cfg, variant="updown_momentum", greedy=False)
    assert "updown: resumed" in caplog.text and "after epoch 1" in caplog.text
    assert resumed["metrics"] == reference["metrics"]
    # the velocities were restored: a restart from zero velocity would end with other weights
    ref_state, state = (torch.load(p / "model.pt")["state"] for p in (tmp_path / "ref", tmp_path / "run"))
    assert all(torch.equal(ref_state[k], state[k]) for k in ref_state)


def test_up_down_tests_the_net_best_on_validation_and_trains_it_on_all_images(mnist, tmp_path, monkeypatch, caplog):
    """HOT06 Sec. 6: the 44,000-image phase's net best on validation is tested, then trained on all
    60,000; the choice survives a kill inside the 60,000-image phase."""
    import csv

    cfg = json.loads(json.dumps(UPDOWN))
    cfg["updown"].update(epochs=4, full_epochs=2, lr_generative=0.05, lr_recognition=0.05, lr_top=0.05)
    reference = updown_run(mnist, tmp_path / "ref", cfg)["metrics"]
    rows = list(csv.DictReader((tmp_path / "ref" / "curve_updown.csv").open()))
    valid = [float(r["valid_error"]) for r in rows]
    assert reference["best_valid_error"] == pytest.approx(min(valid))
    assert reference["best_epoch"] == 1 + valid.index(min(valid))
    import dlgm.dbn.updown as updown

    real, calls, started = updown.updown_epoch, [], []

    def dies_in_the_full_phase(dbn, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # the first epoch on all images: it starts from the best net
            started.append({k: v.clone() for k, v in dbn.state_dict().items()})
            raise Killed()
        return real(dbn, *args, **kwargs)

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "greedy.pt").write_bytes((tmp_path / "ref" / "greedy.pt").read_bytes())
    monkeypatch.setattr(updown, "updown_epoch", dies_in_the_full_phase)
    with pytest.raises(Killed):
        updown_run(mnist, tmp_path / "run", cfg, greedy=False)
    monkeypatch.setattr(updown, "updown_epoch", real)
    from dlgm.commands.dbn import load_updown

    best_epoch = reference["best_epoch"]
    if best_epoch < 4:  # the full phase then starts from an earlier net than the last one
        last = torch.load(tmp_path / "run" / "checkpoint_updown.pt", weights_only=True)["state"]["dbn"]
        assert any(not torch.equal(last[k], started[0][k]) for k in last)
    assert all(torch.equal(v, torch.load(tmp_path / "run" / "checkpoint_updown.pt", weights_only=True)
                           ["state"]["best_dbn"][k]) for k, v in started[0].items())
    with caplog.at_level("INFO", logger="dlgm"):
        resumed = updown_run(mnist, tmp_path / "run", cfg, greedy=False)["metrics"]
    assert "updown: resumed" in caplog.text
    assert resumed == reference
    assert load_updown(tmp_path / "run" / "model.pt", "cpu")[0] is not None


def test_zero_up_down_epochs_report_the_greedy_net(mnist, tmp_path):
    """`updown.epochs: 0` (the greedy-only ablations) tests the greedy net itself, with finite metrics."""
    cfg = json.loads(json.dumps(UPDOWN))
    cfg["updown"].update(epochs=0, full_epochs=0)
    m = updown_run(mnist, tmp_path, cfg, variant="greedy_only")["metrics"]
    assert m["test_error"] == m["greedy_test_error"] and m["valid_error"] == m["greedy_valid_error"]
    assert m["best_valid_error"] == m["greedy_valid_error"] and m["best_epoch"] == 0
    assert m["best_valid_test_error"] == m["greedy_test_error"]


@pytest.mark.parametrize("init_std", [0.01, 0.1])
def test_greedy_starts_from_weights_of_the_configured_scale(mnist, tmp_path, init_std):
    cfg = json.loads(json.dumps(UPDOWN))
    cfg["greedy"].update(epochs=0, init_std=init_std)  # no training: greedy.pt holds the initial weights
    run("dbn", "greedy", "--params", json.dumps(cfg), "--seed", 0, "--device", "cpu", "--train", mnist / "train.pt",
        "--valid", mnist / "valid.pt", "--test", mnist / "test.pt", "--out", tmp_path / "greedy.pt")
    blob = torch.load(tmp_path / "greedy.pt")
    for weights in [r["W"] for r in blob["rbms"]] + [blob["top"]["rbm.W"], blob["top"]["U"]]:
        assert float(weights.std()) == pytest.approx(init_std, rel=0.3)  # 10 x 16 label weights: a noisy estimate


def test_divergence_stops_with_the_layer_and_epoch(mnist, tmp_path):
    cfg = json.loads(json.dumps(UPDOWN))
    cfg["greedy"]["lr"] = 1e38  # overflows float32 in the first epoch of the first RBM
    with pytest.raises(TrainingDiverged, match=r"rbm1: .* at epoch 1"):
        updown_run(mnist, tmp_path / "x", cfg)
    assert not (tmp_path / "x" / "greedy.pt").exists()


def test_bad_input_file_is_named(tmp_path):
    bad = tmp_path / "train.pt"
    torch.save({"pixels": torch.zeros(3)}, bad)
    with pytest.raises(ValueError, match="train.pt"):
        run("dbn", "pretrain", "--params", json.dumps(BACKPROP), "--train", bad, "--out", tmp_path / "p.pt")


def test_one_loader_reads_both_stacks_and_plot_draws_every_stage(mnist, tmp_path, monkeypatch):
    from dlgm.commands.dbn import load_stack
    from dlgm.plots import dbn as plots

    runs = {v: tmp_path / "runs" / v / "seed0" for v in ("updown", "backprop")}
    updown_run(mnist, runs["updown"])
    finetune_run(mnist, runs["backprop"], "backprop")
    assert sorted(p.name for p in runs["backprop"].glob("checkpoint_*")) == [
        "checkpoint_finetune.pt", "checkpoint_rbm1.pt", "checkpoint_rbm2.pt"]
    rbms, top, blob = load_stack(runs["updown"] / "greedy.pt", "cpu")
    assert [r.W.shape for r in rbms] == [(784, 12), (12, 10)] and top.U.shape == (10, 16) and "metrics" in blob
    rbms, top, _ = load_stack(runs["backprop"] / "pretrained.pt", "cpu")
    assert len(rbms) == 2 and top is None

    drawn = {}
    real_curves = plots.curves_figure
    monkeypatch.setattr(plots, "curves_figure", lambda r: drawn.setdefault("fig", real_curves(r)))
    figs = {name: tmp_path / f"{name}.png" for name in ("samples", "filters", "misclassified", "curves")}
    run("dbn", "plot", "--params", json.dumps(UPDOWN), "--device", "cpu", "--updown-model",
        runs["updown"] / "model.pt", "--pretrained", runs["backprop"] / "pretrained.pt", "--test", mnist / "test.pt",
        "--run-dirs", runs["updown"], runs["backprop"], *[a for n, f in figs.items() for a in (f"--{n}", f)])
    for png in figs.values():
        assert png.read_bytes()[:4] == b"\x89PNG" and png.with_suffix(".txt").read_text().strip()
    assert "5 alternating Gibbs iterations" in figs["samples"].with_suffix(".txt").read_text()
    rbm_ax, err_ax = drawn["fig"][0].axes
    assert [l.get_label() for l in rbm_ax.lines] == ["updown: rbm1", "updown: rbm2", "updown: top",
                                                     "backprop: rbm1", "backprop: rbm2"]
    lines = {l.get_label(): list(l.get_xdata()) for l in err_ax.lines}
    assert lines == {"updown: updown": [1, 2], "updown: updown_full": [3], "backprop: finetune": [1, 2, 3, 4]}
