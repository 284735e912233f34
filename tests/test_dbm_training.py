"""DBM training loops and the `dlgm dbm` commands: determinism, resume after a kill, divergence,
the fine-tuning network, and the metrics the commands write."""
import itertools
import json

import pytest
import torch
import torch.nn.functional as F

from dlgm import cd_schedule
from dlgm.boltzmann import dbm_train
from dlgm.boltzmann.dbm import DBM
from dlgm.boltzmann.dbm_finetune import DBMClassifier, error_rate, finetune, posterior_features
from dlgm.boltzmann.dbm_train import pretrain_dbm, sparsity_penalty, sparsity_targets, train_dbm
from dlgm.cli import main
from dlgm.training import RunLoops, TrainingDiverged

JOINT = {"batch_size": 20, "n_chains": 10, "mean_field_iterations": 3, "gibbs_steps": 2, "lr": 0.01,
         "lr_decay": 1.0001, "lr_min": 0.001, "momentum_initial": 0.5, "momentum_final": 0.9,
         "momentum_switch_epoch": 1, "weight_cost": 0.0002, "binarize": True, "epochs": 4,
         "model_statistics": "probabilities", "sparsity": {"targets": [0.2, 0.1], "cost": 0.001, "damping": 0.9}}
PRETRAIN = {"cd_k": 1, "batch_size": 20, "lr": 0.05, "momentum_initial": 0.5, "momentum_final": 0.9,
            "momentum_switch_epoch": 1, "weight_cost": 0.001, "init_std": 0.01, "binarize": True, "epochs": 2}


def toy_data(n=100, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    protos = (torch.rand(2, d, generator=g) > 0.5).float()
    labels = torch.randint(0, 2, (n,), generator=g)
    noise = torch.rand(n, d, generator=g) < 0.1
    return (protos[labels] + noise.float()).remainder(2).clamp(0.05, 0.95), labels


def trained(seed, epochs=4, run_dir=None):
    data, _ = toy_data()
    g = torch.Generator().manual_seed(seed)
    dbm, _ = pretrain_dbm(data, [16, 8, 6], [PRETRAIN, PRETRAIN], g, seed)
    rows, chains = train_dbm(dbm, data, {**JOINT, "epochs": epochs}, g, RunLoops(run_dir, {"t": 1}))
    return dbm, rows, chains


def test_same_seed_gives_the_same_model_and_another_seed_does_not():
    a, rows_a, _ = trained(0)
    b, rows_b, _ = trained(0)
    c, _, _ = trained(1)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert [r["recon_error"] for r in rows_a] == [r["recon_error"] for r in rows_b]
    assert not torch.equal(a.weights[0], c.weights[0])


def test_a_killed_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    reference, _, chains_ref = trained(0)
    calls = {"n": 0}
    real = dbm_train.dbm_statistics

    def dies_in_epoch_3(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2 * 5 + 2:  # 5 batches per epoch: die inside the third epoch
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(dbm_train, "dbm_statistics", dies_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        trained(0, run_dir=tmp_path)
    assert torch.load(tmp_path / "checkpoint_dbm.pt", weights_only=True)["epoch"] == 2
    monkeypatch.setattr(dbm_train, "dbm_statistics", real)
    resumed, rows, chains = trained(0, run_dir=tmp_path)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert all(torch.equal(x, y) for x, y in zip(reference.state_dict().values(), resumed.state_dict().values()))
    assert all(torch.equal(x, y) for x, y in zip(chains_ref, chains))


def test_divergence_stops_with_an_error_naming_the_stage_and_epoch():
    data, _ = toy_data()
    dbm = DBM([16, 8, 6])
    with torch.no_grad():
        dbm.weights[1][0, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"dbm: .* at epoch 1"):
        train_dbm(dbm, data, JOINT, torch.Generator().manual_seed(0))


def test_classifier_is_the_papers_network_for_two_layers():
    g = torch.Generator().manual_seed(0)
    dbm = DBM([5, 4, 3])
    with torch.no_grad():
        for p in list(dbm.weights) + list(dbm.biases):
            p.copy_(torch.randn(p.shape, generator=g))
    net = DBMClassifier(dbm, 2, generator=g)
    v = torch.rand(7, 5, generator=g)
    q2 = dbm.mean_field(v, 20)[2]
    h1 = torch.sigmoid(v @ dbm.weights[0] + q2 @ dbm.weights[1].t() + dbm.biases[1])
    h2 = torch.sigmoid(h1 @ dbm.weights[1] + dbm.biases[2])
    expected = h2 @ net.out.weight.t() + net.out.bias
    assert torch.allclose(net(v, posterior_features(dbm, v, 20)), expected, atol=1e-6)
    # at a mean-field fixed point the network's hidden layers reproduce the posterior means
    assert torch.allclose(h2, q2, atol=1e-5)


def test_finetuning_learns_a_separable_problem():
    data, labels = toy_data(200)
    g = torch.Generator().manual_seed(0)
    dbm, _ = pretrain_dbm(data, [16, 8, 6], [PRETRAIN, PRETRAIN], g, 0)
    q = posterior_features(dbm, data, 10)
    net = DBMClassifier(dbm, 2, generator=torch.Generator().manual_seed(0))
    cfg = {"epochs": 30, "batch_size": 20, "lr": 0.5, "momentum_initial": 0.5, "momentum_final": 0.9,
           "momentum_switch_epoch": 2, "weight_cost": 0.0}
    rows = finetune(net, data, q, labels, cfg, g)
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert error_rate(net, data, q, labels) < 0.05


# -- the commands, run in-process on a fake MNIST of 784-pixel images ------------------------------
def fake_mnist(folder, n):
    g = torch.Generator().manual_seed(n)
    protos = torch.rand(10, 784, generator=g) > 0.7
    labels = torch.arange(n) % 10
    flips = torch.rand(n, 784, generator=g) < 0.05
    images = ((protos[labels] ^ flips).to(torch.uint8) * 255)
    path = folder / f"mnist{n}.pt"
    torch.save({"images": images, "labels": labels}, path)
    return str(path)


AIS = {"runs": 10, "segments": [[0.5, 5], [1.0, 20]], "curve_scales": [0.5], "base_rate_smoothing": 0.05,
       "mean_field_iterations": 5, "train_subset": None, "convergence_tolerance": 0.5, "parameterisation": "even",
       "guard_images": 100, "logprob_images": 10, "logprob_runs": 5, "logprob_scale": 1.0, "test_binarisations": 1,
       "logprob_per_class": False, "reverse_sweeps": 5}


RBM_SETTINGS = {"n_hidden": 6, "epochs": 2, "batch_size": 20, "lr": 0.05, "momentum_initial": 0.5,
                "momentum_final": 0.9, "momentum_switch_epoch": 1, "weight_cost": 0.0002, "init_std": 0.01,
                "binarize": True}


def run_dbm_commands(tmp_path, train, test, seed, **extra):
    """The four commands of a DBM run; ``extra`` params (e.g. labels=True) go to every command."""
    out = tmp_path / f"run{seed}"
    model = {"sizes": [784, 8, 6], "pretrain_epochs": [1, 1], "epochs": 2, "enabled": True}
    base = {"train_limit": None, "model": model, **extra}
    ft = {"epochs": 2, "batch_size": 20, "lr": 0.1, "momentum_initial": 0.5, "momentum_final": 0.9,
          "momentum_switch_epoch": 1, "weight_cost": 0.0, "mean_field_iterations": 5}
    common = ["--seed", str(seed), "--device", "cpu"]
    main(["dbm", "pretrain", "--params", json.dumps({**base, "pretrain": {**PRETRAIN, "cd_ramp_every": [0, 1]}}), *common,
          "--train", train, "--out", str(out / "pretrained.pt")])
    main(["dbm", "train", "--params", json.dumps({**base, "joint": JOINT}), *common, "--init",
          str(out / "pretrained.pt"), "--train", train, "--out", str(out / "dbm.pt"), "--curve", str(out / "c.csv")])
    main(["dbm", "ais", "--params", json.dumps({**base, "ais": AIS}), *common, "--model", str(out / "dbm.pt"),
          "--train", train, "--test", test, "--out", str(out / "ais.json")])
    main(["dbm", "finetune", "--params", json.dumps({**base, "finetune": ft}), *common, "--variant", "dbm2",
          "--model", str(out / "dbm.pt"), "--ais", str(out / "ais.json"), "--train", train, "--test", test,
          "--metrics", str(out / "metrics.json"), "--curve", str(out / "cf.csv")])
    return json.loads((out / "metrics.json").read_text())


def test_dbm_commands_write_complete_and_reproducible_metrics(tmp_path):
    train, test = fake_mnist(tmp_path, 100), fake_mnist(tmp_path, 40)
    first = run_dbm_commands(tmp_path, train, test, seed=3)
    again = run_dbm_commands(tmp_path / "again", train, test, seed=3)
    written = sorted(p.name for p in (tmp_path / "run3").iterdir())
    assert written == ["ais.json", "c.csv", "cf.csv", "checkpoint_ais_0.5.pt", "checkpoint_ais_1.pt",
                       "checkpoint_ais_reverse.pt", "checkpoint_dbm.pt", "checkpoint_finetune.pt",
                       "checkpoint_rbm1.pt", "checkpoint_rbm2.pt", "curve_rbm1.csv", "curve_rbm2.csv", "dbm.pt",
                       "metrics.json", "pretrained.pt"]  # one checkpoint naming (AIS too); declared curves where asked
    assert first["metrics"] == again["metrics"]
    m = first["metrics"]
    assert set(m) == {"log_z", "log_z_low", "log_z_high", "test_logprob", "train_logprob", "test_error",
                      "test_logprob_estimate", "test_logprob_bound_subset", "test_logprob_raise",
                      "test_logprob_raise_gap", "ais_converged", "ais_ess", "log_z_reverse",
                      "test_logprob_at_log_z_reverse"}
    assert first["extra"]["ais_verdict"] in ("converged", "not converged", "failed")
    assert m["log_z_high"] >= m["log_z"] and (m["log_z_low"] is None or m["log_z_low"] <= m["log_z"])
    assert first["paper"] == "dbm" and first["variant"] == "dbm2" and first["extra"]["ais_curve"]
    # against exact enumeration of the 784-8-6 DBM the commands trained (2^14 hidden states)
    saved = torch.load(tmp_path / "run3" / "dbm.pt", weights_only=True)
    log_z, unnormalised = exact_dbm2(saved["state"])
    assert abs(m["log_z"] - log_z) < 3.0  # 25 temperatures: about 1 nat here; a wrong term costs tens
    # bidirectional Monte Carlo brackets it: forward AIS below, reverse AIS from the chains above
    assert m["log_z"] < log_z < m["log_z_reverse"] < log_z + 3.0  # measured: -0.79 and +1.19 nats
    for key, images in (("test_logprob", test), ("train_logprob", train)):
        exact = unnormalised(images_of(images)).mean().item()
        bound = m[key] + m["log_z"]  # E_q[-E] + H(q) of the mean-field posterior
        assert exact - 0.1 < bound <= exact + 1e-9, (key, bound, exact)  # tight for 8 + 6 hidden units
    first_unnormalised = unnormalised(images_of(test)[:10]).mean().item()  # the per-image estimate's images
    exact_first = first_unnormalised - log_z
    assert first_unnormalised - 0.1 < m["test_logprob_bound_subset"] + m["log_z"] <= first_unnormalised + 1e-9
    assert abs(m["test_logprob_estimate"] - exact_first) < 3.0  # inherits the 25-temperature log Z error
    assert m["test_logprob_raise_gap"] == pytest.approx(m["test_logprob_estimate"] - m["test_logprob_raise"])
    assert m["test_error"] * 40 == round(m["test_error"] * 40)  # a count over the 40 test images


def _all_states(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def images_of(path):
    return torch.load(path, weights_only=True)["images"].double() / 255


def exact_dbm2(state):
    """log Z of a 2-layer DBM and its log p*(v) (unnormalised), by enumerating both hidden layers."""
    w0, w1 = state["weights.0"].double(), state["weights.1"].double()
    b0, b1, b2 = (state[f"biases.{i}"].double() for i in range(3))
    h1, h2 = _all_states(w0.shape[1]), _all_states(w1.shape[1])
    pair = (h1 @ b1)[:, None] + (h2 @ b2)[None, :] + h1 @ w1 @ h2.T  # [H1, H2]
    log_z = torch.logsumexp((pair + F.softplus(b0 + h1 @ w0.T).sum(-1)[:, None]).flatten(), 0).item()
    h2_summed = torch.logsumexp(pair, 1)
    return log_z, lambda v: v @ b0 + torch.logsumexp(v @ w0 @ h1.T + h2_summed, 1)


def test_rbm_command_and_a_clear_error_for_bad_input(tmp_path, caplog):
    train, test = fake_mnist(tmp_path, 100), fake_mnist(tmp_path, 40)
    rbm = RBM_SETTINGS
    params = json.dumps({"train_limit": None, "rbm": rbm, "ais": AIS, "cd_k": 3})
    out = tmp_path / "rbm"
    main(["dbm", "rbm", "--params", params, "--variant", "ais_rbm_cd3", "--device", "cpu", "--train", train,
          "--test", test, "--model", str(out / "rbm.pt"), "--metrics", str(out / "metrics.json"),
          "--curve", str(out / "curve.csv")])
    record = json.loads((out / "metrics.json").read_text())
    assert record["variant"] == "ais_rbm_cd3"
    m, state = record["metrics"], {k: v.double() for k, v in torch.load(out / "rbm.pt", weights_only=True).items()}
    hidden = _all_states(rbm["n_hidden"])  # exact log Z: the visible units summed out per hidden state
    log_z = torch.logsumexp(hidden @ state["b_hid"] + F.softplus(state["b_vis"] + hidden @ state["W"].T).sum(-1), 0)
    assert abs(m["log_z"] - log_z.item()) < 3.0
    v = images_of(test)  # log p(v) = -F(v) - log Z with the AIS log Z
    minus_free_energy = (v @ state["b_vis"] + F.softplus(state["b_hid"] + v @ state["W"]).sum(-1)).mean()
    assert m["test_logprob"] == pytest.approx(minus_free_energy.item() - m["log_z"], abs=1e-6)
    # the ais command evaluates the RBM's weights again (as it does a reference run's), with the same exactness
    main(["dbm", "ais", "--params", params, "--device", "cpu", "--seed", "1", "--model", str(out / "rbm.pt"),
          "--train", train, "--test", test, "--out", str(out / "again.json")])
    again = json.loads((out / "again.json").read_text())["metrics"]
    assert abs(again["log_z"] - log_z.item()) < 3.0
    assert again["test_logprob"] == pytest.approx(minus_free_energy.item() - again["log_z"], abs=1e-6)
    torch.save({"W": torch.zeros(3)}, tmp_path / "neither.pt")
    with pytest.raises(SystemExit):
        main(["dbm", "ais", "--params", params, "--device", "cpu", "--model", str(tmp_path / "neither.pt"),
              "--train", train, "--test", test, "--out", str(out / "none.json")])
    assert "neither.pt: neither a DBM file" in caplog.text and not (out / "none.json").exists()
    torch.save({"images": torch.zeros(5, 10, dtype=torch.uint8), "labels": torch.zeros(5)}, tmp_path / "bad.pt")
    with pytest.raises(SystemExit):
        main(["dbm", "rbm", "--params", params, "--variant", "x", "--device", "cpu", "--train",
              str(tmp_path / "bad.pt"), "--test", test, "--model", str(out / "r2.pt"),
              "--metrics", str(out / "m2.json"), "--curve", str(out / "c2.csv")])
    assert not (out / "m2.json").exists()
    assert "bad.pt: images have shape (5, 10), expected [N, 784]" in caplog.text


def test_an_rbm_rerun_for_new_ais_settings_evaluates_the_trained_rbm_without_training_it_again(tmp_path,
                                                                                                monkeypatch):
    train, test = fake_mnist(tmp_path, 100), fake_mnist(tmp_path, 40)
    rbm = RBM_SETTINGS
    out = tmp_path / "rbm"

    def run(ais, rbm=rbm):
        main(["dbm", "rbm", "--params", json.dumps({"train_limit": None, "rbm": rbm, "ais": ais, "cd_k": 1}),
              "--variant", "ais_rbm_cd1", "--device", "cpu", "--train", train, "--test", test, "--model",
              str(out / "rbm.pt"), "--metrics", str(out / "metrics.json"), "--curve", str(out / "curve.csv")])
        return json.loads((out / "metrics.json").read_text()), torch.load(out / "rbm.pt", weights_only=True)

    first, weights = run(AIS)
    curve = (out / "curve.csv").read_text()
    monkeypatch.setattr(dbm_train, "cd_epoch", lambda *a, **k: pytest.fail("trained again"))
    again, same = run({**AIS, "logprob_per_class": True})
    assert all(torch.equal(weights[k], same[k]) for k in weights) and (out / "curve.csv").read_text() == curve
    assert again["metrics"]["log_z"] == first["metrics"]["log_z"]  # same generator state after training
    assert again["metrics"]["test_logprob"] == first["metrics"]["test_logprob"]
    assert again["extra"]["logprob_image_indices"] != first["extra"]["logprob_image_indices"]
    with pytest.raises(pytest.fail.Exception, match="trained again"):  # a training setting does retrain
        run(AIS, rbm={**rbm, "lr": 0.1})


def test_a_rerun_of_a_finished_stage_rewrites_its_curve_without_training(tmp_path, monkeypatch):
    data, _ = toy_data()
    curve = tmp_path / "declared" / "curve.csv"  # a rule's declared output, outside the default naming
    loops = RunLoops(tmp_path, {"a": 1}, curves={"dbm": curve})
    train_dbm(DBM([16, 8, 6]), data, JOINT, torch.Generator().manual_seed(0), loops)
    written = curve.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_dbm.pt", "declared"]
    curve.unlink()  # Snakemake removes declared outputs before rerunning a job
    monkeypatch.setattr(dbm_train, "dbm_statistics", lambda *a, **k: pytest.fail("trained again"))
    train_dbm(DBM([16, 8, 6]), data, JOINT, torch.Generator().manual_seed(0), loops)
    assert curve.read_text() == written


def test_three_layer_dbm_pretrains_trains_and_classifies():
    data, labels = toy_data()
    g = torch.Generator().manual_seed(0)
    dbm, rows = pretrain_dbm(data, [16, 8, 6, 5], [PRETRAIN] * 3, g, 0)
    assert [r["stage"] for r in rows] == ["rbm1"] * 2 + ["rbm2"] * 2 + ["rbm3"] * 2
    train_dbm(dbm, data, {**JOINT, "epochs": 1}, g)
    q = posterior_features(dbm, data, 5)
    assert [t.shape for t in q] == [(100, 6), (100, 5)]
    net = DBMClassifier(dbm, 2, generator=g)
    h1 = torch.sigmoid(data @ net.weights[0] + q[0] @ net.weights[1].t() + net.biases[0])
    h2 = torch.sigmoid(h1 @ net.weights[1] + q[1] @ net.weights[2].t() + net.biases[1])
    h3 = torch.sigmoid(h2 @ net.weights[2] + net.biases[2])
    assert torch.allclose(net(data, q), net.out(h3), atol=1e-6)


def test_plot_command_reads_the_run_files_and_draws_one_line_per_curve(tmp_path, caplog):
    from dlgm.plots import dbm as plots

    run = tmp_path / "runs" / "dbm2" / "seed0"
    run.mkdir(parents=True)
    torch.save({"sizes": [784, 8, 6], "fantasy": torch.rand(30, 784)}, run / "dbm.pt")
    curve = [{"temperatures": k, "log_z": 10.0 + 1 / k, "log_z_low": None, "log_z_high": 10.5} for k in (10, 100)]
    (run / "ais.json").write_text(json.dumps({"ais_curve": curve}))
    (run / "curve_dbm.csv").write_text("stage,epoch,recon_error,lr\ndbm,1,2.0,0.1\ndbm,2,1.5,0.1\n")
    (run / "curve_finetune.csv").write_text("stage,epoch,loss\nfinetune,1,0.7\n")
    figs = {name: tmp_path / f"{name}.png" for name in ("fantasy", "ais", "curves")}
    main(["dbm", "plot", "--models", str(run / "dbm.pt"), "--ais", str(run / "ais.json"),
          "--curves", str(run / "curve_dbm.csv"), str(run / "curve_finetune.csv"),
          "--fantasy-particles", str(figs["fantasy"]), "--ais-convergence", str(figs["ais"]),
          "--training-curves", str(figs["curves"])])
    for png in figs.values():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.with_suffix(".txt").read_text().strip()
    fig, _ = plots.training_curves_figure([("dbm2 seed0 dbm", [{"epoch": "1", "recon_error": "2.0"}]),
                                    ("empty", []), ("dbm2 seed0 finetune", [{"epoch": 1, "loss": 0.7}])])
    assert [line.get_label() for line in fig.axes[0].lines] == ["dbm2 seed0 dbm (recon_error)",
                                                              "dbm2 seed0 finetune (loss)"]
    fig, _ = plots.fantasy_particles_figure([("a", torch.rand(30, 784))])
    assert fig.axes[0].images[0].get_array().shape == (5 * 28, 5 * 28)  # the largest square grid of 30
    torch.save({"sizes": [784, 8, 6]}, run / "dbm.pt")
    with pytest.raises(SystemExit):
        main(["dbm", "plot", "--models", str(run / "dbm.pt"), "--ais", str(run / "ais.json"),
              "--curves", str(run / "curve_dbm.csv"), "--fantasy-particles", str(figs["fantasy"]),
              "--ais-convergence", str(figs["ais"]), "--training-curves", str(figs["curves"])])
    assert "dbm.pt: no 'fantasy' particles" in caplog.text


def test_sparsity_penalty_is_the_gradient_of_the_cross_entropy_to_the_targets():
    """One image, no damping: the running means are the mean-field activities mu, and the penalty is
    the gradient of cost x sum over hidden units of CE(target, sigmoid(total input)), with the other
    layers' activities in each total input held at mu (at the mean-field fixed point sigmoid(input)
    is mu itself)."""
    g = torch.Generator().manual_seed(4)
    dbm = DBM([5, 4, 3], dtype=torch.float64)
    for p_ in [*dbm.weights, *dbm.biases]:
        p_.data.copy_(torch.randn(p_.shape, generator=g, dtype=torch.float64))
    v = torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    mu = dbm.mean_field(v, 500)
    assert dbm.mean_field_residual(mu) < 1e-12
    targets, cost = [0.2, 0.1], 0.003
    means = [torch.full((n,), 0.5, dtype=torch.float64) for n in (4, 3)]
    penalty = sparsity_penalty(dbm, mu, means, targets, cost, damping=0.0)
    assert torch.allclose(means[0], mu[1][0]) and torch.allclose(means[1], mu[2][0])

    w0, w1, b1, b2 = (t.detach().clone().requires_grad_() for t in (dbm.weights[0], dbm.weights[1], *dbm.biases[1:]))
    ce = lambda t, x: -(t * F.logsigmoid(x) + (1 - t) * F.logsigmoid(-x)).sum()
    loss = cost * (ce(targets[0], b1 + v @ w0 + mu[2] @ w1.t()) + ce(targets[1], b2 + mu[1] @ w1))
    grads = torch.autograd.grad(loss, [w0, w1, b1, b2])
    for name, grad in zip(["W0", "W1", "b1", "b2"], grads):
        assert torch.allclose(penalty[name], grad, atol=1e-12), name
    assert torch.equal(penalty["b0"], torch.zeros(5, dtype=torch.float64))


def test_sparsity_running_means_are_damped_and_the_last_target_serves_the_layers_above():
    dbm = DBM([2, 1, 1], dtype=torch.float64)
    mu = [torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=torch.float64),
          torch.tensor([[0.2], [0.6]], dtype=torch.float64), torch.tensor([[0.0], [1.0]], dtype=torch.float64)]
    means = [torch.tensor([0.2], dtype=torch.float64), torch.tensor([0.1], dtype=torch.float64)]
    penalty = sparsity_penalty(dbm, mu, means, [0.2, 0.1], cost=0.01, damping=0.9)
    # q1 = 0.9 * 0.2 + 0.1 * 0.4 = 0.22, q2 = 0.9 * 0.1 + 0.1 * 0.5 = 0.14
    assert torch.allclose(means[0], torch.tensor([0.22], dtype=torch.float64))
    assert torch.allclose(means[1], torch.tensor([0.14], dtype=torch.float64))
    s1, s2 = 0.01 * 0.02, 0.01 * 0.04
    assert torch.allclose(penalty["W0"], torch.tensor([[s1], [0.5 * s1]], dtype=torch.float64))
    assert torch.allclose(penalty["W1"], torch.tensor([[0.4 * s2 + s1 * 0.5]], dtype=torch.float64))
    assert torch.allclose(penalty["b1"], torch.tensor([s1], dtype=torch.float64))
    assert sparsity_targets([0.2, 0.1], 3) == [0.2, 0.1, 0.1]
    with pytest.raises(ValueError, match="sparsity.targets"):
        sparsity_targets([], 2)



def test_cd_ramp_is_the_schedule_of_the_authors_rbm_l2():
    assert cd_schedule.cd_ramp(1, 0.05, 0, 150) == (1, 0.05)
    assert cd_schedule.cd_ramp(1, 0.05, 20, 0) == (1, 0.05)
    assert cd_schedule.cd_ramp(1, 0.05, 20, 19) == (1, 0.05)
    assert cd_schedule.cd_ramp(1, 0.05, 20, 20) == (2, 0.025)
    assert cd_schedule.cd_ramp(1, 0.05, 20, 199) == (10, pytest.approx(0.005))
    assert cd_schedule.cd_ramp(3, 0.1, 1, 1) == (6, 0.05)
    with pytest.raises(ValueError, match="cd_ramp_every"):
        cd_schedule.cd_ramp(1, 0.05, -1, 0)
    assert cd_schedule.layer_ramps([0, 20], 3) == [0, 20, 20]
    assert cd_schedule.layer_ramps([5], 2) == [5, 5]
    with pytest.raises(ValueError, match="cd_ramp_every"):
        cd_schedule.layer_ramps([], 2)


def test_a_ramped_rbm_runs_each_epoch_with_its_k_and_rate():
    from dlgm.boltzmann.batches import momentum_at, shuffled_batches
    from dlgm.boltzmann.rbm import RBM, MomentumSGD, bernoulli, cd_epoch, rbm_params

    data, _ = toy_data()
    cfg = {**PRETRAIN, "epochs": 3, "cd_ramp_every": 1}
    make = lambda: RBM(16, 8, init_std=0.01, generator=torch.Generator().manual_seed(4))  # noqa: E731
    ramped, by_hand = make(), make()
    dbm_train.train_rbm(ramped, data, cfg, torch.Generator().manual_seed(5), stage="rbm1")
    g, updater = torch.Generator().manual_seed(5), MomentumSGD(rbm_params(by_hand))
    for epoch, (k, lr) in enumerate([(1, 0.05), (2, 0.025), (3, 0.05 / 3)]):
        x = bernoulli(data, g)
        cd_epoch(by_hand, updater, x, shuffled_batches(100, 20, g, x.device), lr=lr,
                 momentum=momentum_at(cfg, epoch), weight_cost=cfg["weight_cost"], k=k, generator=g)
    assert torch.equal(ramped.W, by_hand.W) and torch.equal(ramped.b_hid, by_hand.b_hid)
    fixed = make()
    dbm_train.train_rbm(fixed, data, {**cfg, "cd_ramp_every": 0}, torch.Generator().manual_seed(5), stage="rbm1")
    assert not torch.equal(fixed.W, ramped.W)
