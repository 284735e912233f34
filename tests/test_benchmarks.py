"""The benchmarks run (tiny sizes), their table is well formed, and the projection adds up."""
from __future__ import annotations

import csv
import inspect
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmarks/ is a folder of the repository, not of the package
    sys.path.insert(0, str(REPO))

from benchmarks import __main__ as run_all_module  # noqa: E402
from benchmarks import gpu_check  # noqa: E402
from benchmarks.common import FIELDS  # noqa: E402
from dlgm import loop_products as products  # noqa: E402
from dlgm import projection  # noqa: E402
from dlgm.boltzmann.ais_diagnostics import log_z_lower_bounds  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = ["--tiny", "--threads", "1", "--repeats", "1", "--device", "cpu"]


@pytest.mark.parametrize("name", list(run_all_module.MODULES))
def test_each_benchmark_runs_tiny_and_gives_finite_ratios(name, capsys):
    rows = run_all_module.MODULES[name].main(TINY)
    assert rows
    for r in rows:
        assert r.key and r.size == "tiny" and r.kind in ("floor", "peer")
        assert 0 < r.dlgm_s < 60 and 0 < r.reference_s < 60 and math.isfinite(r.ratio)
        assert r.met in ("", "yes", "no")
    assert rows[0].loop[:20] in capsys.readouterr().out


def test_run_all_writes_one_table_and_projects_every_paper(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    out = tmp_path / "benchmarks.csv"
    rows = run_all_module.run_all(TINY + ["--out", str(out), "--only", "cd", "dbm", "crf"])
    with open(out, newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == list(FIELDS)
    assert len(table) == len(rows) >= 4
    assert {r["key"] for r in table} >= {"cd", "dbm_update", "ais", "crf"}
    assert all(math.isfinite(float(r["ratio"])) and float(r["ratio"]) > 0 for r in table)
    text = capsys.readouterr().out
    assert "projected wall time per rule" in text and "dbm_train (dbm2)" in text and "total dbm" in text
    # no up-down row was run: project() says so instead of inventing a number, and the printed
    # projection takes the quick estimate for it and names it
    header = next(line for line in text.splitlines() if line.startswith("projected wall time per rule"))
    assert re.search(r"quick estimate \(a product and weight noise timed\) for [a-z_, ]*\bupdown\b", header), header
    assert re.search(r"dbn_updown +projected +[0-9.]+ (s|min|h) per seed", text), text
    assert "no benchmark row for updown" in "\n".join(
        p["basis"] for p in projection.project(run_all_module.load_config(REPO / "config/config.yaml"),
                                               projection.rates_from_table(out)))


def _rule_blocks(text: str) -> list[tuple[str, str]]:
    """(rule name, its indented body) of a rule file or of a dry run's job listing."""
    return re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)+)", text, flags=re.M)


def test_each_benchmark_runs_at_the_thread_count_of_the_rules_it_projects(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    threads = {}  # rule -> its threads, as the rule files give them
    for smk in sorted((REPO / "workflow/rules").glob("*.smk")):
        for rule, body in _rule_blocks(smk.read_text()):
            if found := re.search(r"^    threads: (\d+)", body, flags=re.M):
                threads[rule] = int(found.group(1))
    rows = run_all_module.run_all(["--tiny", "--repeats", "1", "--device", "cpu", "--out", "", "--config", "",
                                   "--only", "cd", "window", "speech"])
    timed_at = {r.key: int(r.threads) for r in rows}
    assert timed_at["cd"] == run_all_module.DEFAULT_THREADS and timed_at["window_sll"] == timed_at["hybrid"] == 1
    config = run_all_module.load_config(REPO / "config/config.yaml")
    checked = set()
    for job in projection.project(config, _rates(1e-9)):
        rule = job["match"][0]
        for key in set(job["work"]) & set(timed_at):
            assert timed_at[key] == threads[rule], (rule, key)
            checked.add(rule)
    assert {"dbn_pretrain", "nn_crf_train", "rnn_hmm_hybrid", "rnn_hmm_fullsum", "rnn_hmm_ctc"} <= checked


def test_the_projection_names_every_training_job_of_the_full_dag_by_its_benchmark_file(tmp_path):
    """Each projected job is a job of ``snakemake -n`` under config.yaml, under the benchmark.tsv its
    rule writes (where --runs-root and the report look), and every speech training job is projected:
    each system on FSDD and on every fold of the TIMIT sample."""
    from conftest import copy_pipeline, require_mirror, snakemake

    require_mirror()
    proc = snakemake(copy_pipeline(tmp_path / "dry"), "-n", "--cores", "4")
    dag = {}
    for rule, body in _rule_blocks(proc.stdout + proc.stderr):
        if found := re.search(r"^    benchmark: (\S+)$", body, flags=re.M):
            dag.setdefault(rule, set()).add(found.group(1))
    projected = {}
    for job in projection.project(run_all_module.load_config(REPO / "config/config.yaml"), _rates(1e-9)):
        projected.setdefault(job["match"][0], set()).update(job["benchmark"].format(seed=s) for s in job["seeds"])
    for rule, benchmarks in projected.items():
        assert benchmarks <= dag.get(rule, set()), (rule, sorted(benchmarks - dag.get(rule, set())))
    speech = {rule for rule in dag if rule.startswith("rnn_hmm_") and rule not in ("rnn_hmm_gmm_hmm", "rnn_hmm_ablation")}
    assert speech == {"rnn_hmm_hybrid", "rnn_hmm_hybrid_handlabels", "rnn_hmm_fullsum", "rnn_hmm_ctc"}
    for rule in speech:
        assert projected[rule] == dag[rule], rule
    assert "data/runs/rnn_hmm/timit_sample_fold3_fullsum/seed0/benchmark_fullsum.tsv" in projected["rnn_hmm_fullsum"]


def test_a_failing_benchmark_process_is_named(tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)benchmark benchmarks.bench_crf failed \(exit 2\).*--no-such-flag"):
        run_all_module._run_isolated(run_all_module.MODULES["crf"], ["--no-such-flag"], tmp_path / "rows.csv")


def test_gemm_counts_match_the_written_out_formulas():
    assert products.flops(products.cd_spec(100, 784, 500, 1)) == 2 * 100 * 784 * 500 * 5
    assert products.flops(products.cd_spec(10, 7, 5, 3)) == 2 * 10 * 7 * 5 * 9
    # DBM 784-500-1000: bottom-up 2, mean-field 3 per sweep, Gibbs 4 per sweep, statistics 4, reconstruction 1
    spec = products.dbm_update_spec([784, 500, 1000], 100, 100, 10, 5)
    assert len(spec) == 2 + 30 + 20 + 4 + 1
    a, b = 100 * 784 * 500, 100 * 500 * 1000
    assert products.flops(spec) == 2 * ((a + b) + 10 * (a + 2 * b) + 5 * (2 * a + 2 * b) + 2 * (a + b) + a)
    assert products.flops(products.ais_spec([784, 500, 1000], 100)) == 2 * (2 * a + 2 * b)
    assert products.flops(products.clamped_ais_spec([784, 500, 1000], 100)) == 2 * 2 * b
    assert products.flops(products.clamped_ais_spec([784, 500, 500, 1000], 1)) == 2 * 2 * (500 * 500 + 500 * 1000)
    # an MLP: forward, weight gradients, input gradients of every layer above the first
    assert products.flops(products.mlp_spec([4, 3, 2], 5)) == 2 * 5 * (12 + 6 + 12 + 6 + 6)
    assert products.lstm_flops(1, 1, 2, 3, inputs=4, train=False) == 2 * 2 * 4 * 2 * 6 + 2 * 2 * 2 * 3
    from dlgm.speech.model import BLSTM

    for layers, hidden, outputs, inputs in ((1, 2, 3, 4), (3, 5, 7, 123)):
        model = BLSTM(inputs, hidden, layers, outputs)
        assert products.lstm_weights(layers, hidden, outputs, inputs) == sum(p.numel() for p in model.parameters())


def _rates(s_per_flop):
    keys = ("cd", "dbm_update", "ais", "updown", "ft_dbn", "ft_dbm", "weight_noise", *projection.QUICK_FACTOR)
    return {k: {"s_per_flop": s_per_flop, "device": "cpu", "basis": "test"} for k in keys}


def test_projection_is_the_configs_work_times_the_rate():
    config = run_all_module.load_config(REPO / "config/config.yaml")
    jobs = {p["rule"]: p for p in projection.project(config, _rates(1e-9))}
    assert len(jobs["dbn_finetune (baseline)"]["seeds"]) == len(config["dbn"]["variant_seeds"]["baseline"])
    assert jobs["dbn_updown"]["seeds"] == config["dbn"]["seeds"]
    train = jobs["dbm_train (dbm2)"]
    work = 500 * 600 * products.flops(products.dbm_update_spec([784, 500, 1000], 100, 100, 10, 5))
    assert train["seconds"] == pytest.approx(projection.STARTUP_S + work * 1e-9)
    assert 1e6 < train["seconds"] < 1e7  # ~300,000 updates of ~5 GFLOP at 1 GFLOP/s
    smoke = run_all_module.load_config(REPO / "config/config.yaml", [REPO / "config/smoke.yaml"])
    small = {p["rule"]: p for p in projection.project(smoke, _rates(1e-9))}
    assert small["dbm_train (dbm2)"]["seconds"] - projection.STARTUP_S < 1e-4 * train["seconds"]
    assert "dbm_train (dbm3)" not in small  # disabled models are not projected


def test_dbm_pretraining_projection_counts_the_cd_steps_of_each_epoch():
    config = run_all_module.load_config(REPO / "config/config.yaml")
    model, pre = config["dbm"]["models"]["dbm2"], config["dbm"]["pretrain"]
    model["pretrain_epochs"], pre["cd_k"] = [2, 3], 1
    per_batch = lambda a, b, k: 600 * products.flops(products.cd_spec(100, a, b, k))  # noqa: E731
    seconds = lambda: {p["rule"]: p for p in projection.project(config, _rates(1e-9))}[  # noqa: E731
        "dbm_pretrain (dbm2)"]["seconds"] - projection.STARTUP_S
    pre["cd_ramp_every"] = [0]
    assert seconds() == pytest.approx(1e-9 * (2 * per_batch(784, 500, 1) + 3 * per_batch(500, 1000, 1)))
    pre["cd_ramp_every"] = [0, 2]  # the top RBM's epochs run CD-1, CD-1, CD-2
    assert seconds() == pytest.approx(1e-9 * (2 * per_batch(784, 500, 1) + 2 * per_batch(500, 1000, 1)
                                              + per_batch(500, 1000, 2)))


def test_dbm_evaluation_projection_counts_every_ais_chain_and_bound():
    config = run_all_module.load_config(REPO / "config/config.yaml")
    a = config["dbm"]["ais"]
    assert (a["runs"], a["logprob_images"], a["logprob_runs"], a["logprob_scale"]) == (100, 100, 10, 0.1)
    assert (a["guard_images"], a["mean_field_iterations"], a["test_binarisations"], a["train_subset"]) == (1000, 50, 1, None)
    jobs = {p["rule"]: p for p in projection.project(config, _rates(1e-9))}
    A, B = 784 * 500, 500 * 1000  # multiply-adds per row of W0 and W1
    assert a["reverse_sweeps"] == 1000
    # the schedule, its shorter curve schedules, the reverse run and its chains' 1,000 Gibbs sweeps
    log_z_steps = 14500 * (2 + sum(a["curve_scales"])) + 1000
    # log Z: h1's and h2's inputs plus v's and h1's; per image: the same on the full path (RAISE) and
    # on the clamped path h1's and h2's inputs from each other only (v's product computed once)
    work = jobs["dbm_ais (dbm2)"]["work"]
    assert work["ais"] == pytest.approx(2 * (log_z_steps * 100 * (2 * A + 2 * B) + 1450 * 1000 * (2 * A + 2 * B + 2 * B)))
    # mean-field sweeps (h1 from v and h2, h2 from h1) on 10,000 test and 60,000 training images and the
    # 1,000 guard images, then 50 ascent sweeps over every layer of the guard images
    sweep = A + 2 * B
    assert work["dbm_update"] == 2 * (50 * 70000 * sweep + 50 * 1000 * sweep + 50 * 1000 * (2 * A + 2 * B))
    assert inspect.signature(log_z_lower_bounds).parameters["ascent_sweeps"].default == 50  # the sweeps counted
    rbm = jobs["dbm_rbm (CD-1)"]["work"]  # log p(v) exact: one product an image; no clamped path
    assert rbm["ais"] == pytest.approx(2 * (log_z_steps * 100 * 2 * A + 1450 * 1000 * 2 * A))
    assert rbm["dbm_update"] == 2 * (70000 * A + 50 * 1000 * A + 50 * 1000 * 2 * A)
    assert rbm["cd"] == 100 * 600 * products.flops(products.cd_spec(100, 784, 500, 1))


def test_projection_imports_without_torch():
    """Snakemake's onstart hook imports the projection: it must not pay for (or need) torch."""
    code = "import sys, dlgm.projection; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(REPO / "src")}).returncode == 0


def test_project_only_without_a_table_names_the_missing_file(tmp_path):
    with pytest.raises(SystemExit, match=r"no benchmark table at .*none\.csv"):
        run_all_module.run_all(["--project-only", "--out", str(tmp_path / "none.csv")])


def test_nn_crf_projection_counts_each_task_words_epochs_and_its_evaluation():
    config = run_all_module.load_config(REPO / "config/config.yaml")
    jobs = {p["rule"]: p for p in projection.project(config, _rates(1e-9))}
    ner = jobs["nn_crf_train (ner_sll)"]
    train = products.flops(products.window_spec(1, 275, 300, 17, train=True))
    assert train == 2 * (275 * 300 + 300 * 17) * 3  # forward, weight gradients, input gradients of both layers
    predict = products.flops(products.window_spec(1, 275, 300, 17, train=False))
    assert ner["work"] == {"window_sll": 30 * 203621 * train, "window_predict": (31 * 51362 + 46435) * predict}
    assert ner["seconds"] == pytest.approx(projection.NN_CRF_STARTUP_S + 1e-9 * sum(ner["work"].values()))
    assert ner["match"] == ("nn_crf_train", {"variant": "ner_sll"}) and ner["seeds"] == [0, 1, 2]
    assert "window_wll" in jobs["nn_crf_train (chunk_wll)"]["work"] and "nn_crf_train (pos_wsj_sll)" not in jobs
    # a run on the first sentences only (smoke config's limits) does that share of the work
    limited = {**config, "nn_crf": {**config["nn_crf"], "train_limit": 1404, "eval_limit": 325}}
    small = {p["rule"]: p for p in projection.project(limited, _rates(1e-9))}["nn_crf_train (ner_sll)"]
    assert small["work"]["window_sll"] == pytest.approx(ner["work"]["window_sll"] * 1404 / 14041)
    assert small["work"]["window_predict"] == pytest.approx(
        (31 * 51362 * 325 / 3250 + 46435 * 325 / 3453) * predict)


def test_speech_projection_counts_each_systems_epochs_on_each_corpus():
    config = run_all_module.load_config(REPO / "config/config.yaml")
    config["rnn_hmm"]["fullsum"]["init_ce_epochs"] = 3
    jobs = {p["rule"]: p for p in projection.project(config, _rates(1e-9))}
    lstm = products.lstm_flops
    # a TIMIT-sample fold: 10 training speakers and 2 dev speakers of 8 sentences (SA dropped)
    ctc = jobs["rnn_hmm_ctc (timit_sample_fold2)"]
    assert ctc["work"] == {"ctc": 60 * (80 * lstm(300, 3, 250, 62) + 16 * lstm(300, 3, 250, 62, train=False)),
                           "weight_noise": 60 * 80 * products.lstm_weights(3, 250, 62)}
    assert ctc["match"] == ("rnn_hmm_ctc", {"corpus": "timit_sample_fold2"})
    hybrid = 800 * lstm(300, 5, 500, 60) + 100 * lstm(300, 5, 500, 60, train=False)  # FSDD: 20 phones x 3 states
    # weight noise: every weight drawn once an update (batch 1: one update per training utterance)
    noise = 800 * products.lstm_weights(5, 500, 60)
    assert jobs["rnn_hmm_hybrid (fsdd)"]["work"] == {"hybrid": 60 * hybrid, "weight_noise": 60 * noise}
    assert jobs["rnn_hmm_fullsum (fsdd)"]["work"] == {"hybrid": 63 * hybrid, "weight_noise": 63 * noise}  # 3 CE epochs first
    assert "rnn_hmm_hybrid_handlabels (fsdd)" not in jobs and "rnn_hmm_hybrid_handlabels (timit_sample_fold3)" in jobs
    config["data"]["timit_sample"]["drop_sa"] = False
    config["rnn_hmm"]["timit_sample_folds"] = [1]
    kept = {p["rule"]: p for p in projection.project(config, _rates(1e-9)) if "timit_sample" in p["rule"]}
    assert sorted(kept) == [f"rnn_hmm_{s} (timit_sample_fold1)" for s in ("ctc", "fullsum", "hybrid", "hybrid_handlabels")]
    assert kept["rnn_hmm_ctc (timit_sample_fold1)"]["work"]["ctc"] == pytest.approx(ctc["work"]["ctc"] * 10 / 8)
    config["rnn_hmm"]["ctc"].update(weight_noise=0.0)
    config["rnn_hmm"]["hybrid"].update(batch_size=16)
    batched = {p["rule"]: p["work"] for p in projection.project(config, _rates(1e-9)) if "timit_sample" in p["rule"]}
    assert "weight_noise" not in batched["rnn_hmm_ctc (timit_sample_fold1)"]
    # 100 training utterances in batches of 16: 7 updates an epoch, each with one draw
    assert batched["rnn_hmm_hybrid (timit_sample_fold1)"]["weight_noise"] == 60 * 7 * products.lstm_weights(5, 500, 183)


def test_report_lines_set_a_measured_benchmark_beside_the_projection(tmp_path):
    config = run_all_module.load_config(REPO / "config/config.yaml", [REPO / "config/smoke.yaml"])
    projections = projection.project(config, _rates(1e-9))
    bench = tmp_path / "data/runs/dbm/dbm2/seed0/benchmark_train.tsv"
    bench.parent.mkdir(parents=True)
    bench.write_text("s\th:m:s\tmax_rss\n12.5\t0:00:12\t100\n")
    lines = projection.report_lines(projections, root=tmp_path)
    line = next(l for l in lines if "dbm_train (dbm2)" in l)
    assert "measured 12 s" in line
    pending = projection.report_lines(projections, root=tmp_path, pending_only=True)
    assert not any("dbm_train (dbm2)" in l for l in pending)


def test_a_resumed_rule_is_measured_with_the_epochs_its_log_kept_from_before_the_resume(tmp_path):
    from dlgm.epoch_log import resumed_epoch_line

    config = run_all_module.load_config(REPO / "config/config.yaml", [REPO / "config/smoke.yaml"])
    projections = projection.project(config, _rates(1e-9))
    run = tmp_path / "data/runs/dbm/dbm2/seed0"
    run.mkdir(parents=True)
    (run / "benchmark_train.tsv").write_text("s\th:m:s\tmax_rss\n100.0\t0:01:40\t100\n")
    earlier = [resumed_epoch_line(f"dbm epoch {i}/5 loss=1.0", s) for i, s in ((1, 30.25), (2, 29.75))]
    (run / "log_train.txt").write_text("\n".join(["10:00:00 INFO dbm: resumed from checkpoint after epoch 2",
                                                   *(f"10:00:00 INFO {line}" for line in earlier),
                                                   "10:00:31 INFO dbm epoch 3/5 loss=1.0 | 31.00s/epoch"]) + "\n")
    line = next(l for l in projection.report_lines(projections, root=tmp_path) if "dbm_train (dbm2)" in l)
    assert "measured 2.7 min" in line and "+ 2 epochs before a resume" in line
    (run / "log_train.txt").write_text("10:00:31 INFO dbm epoch 1/5 loss=1.0 | 31.00s/epoch\n")  # not resumed
    line = next(l for l in projection.report_lines(projections, root=tmp_path) if "dbm_train (dbm2)" in l)
    assert "measured 100 s (data/runs/dbm/dbm2/seed0/benchmark_train.tsv)" in line


def test_onstart_message_falls_back_to_the_quick_estimate_and_says_so(tmp_path):
    config = run_all_module.load_config(REPO / "config/config.yaml")
    text = projection.onstart_message(config, tmp_path / "missing.csv")
    assert "quick estimate" in text and "dbm_train (dbm2)" in text and "total dbm" in text


def test_onstart_message_fills_the_loops_an_older_table_lacks_with_the_quick_estimate(tmp_path):
    from benchmarks.common import Row, write_csv

    config = run_all_module.load_config(REPO / "config/config.yaml")
    table = tmp_path / "benchmarks.csv"
    write_csv([Row("DBM update", "update", 0.04, "products", 0.04, "floor", device="cpu (x86_64, 2 threads)",
                   key="dbm_update", extra={"flops": 4e9})], table)
    text = projection.onstart_message(config, table, jobs=[("dbm_train", {"dbm_model": "dbm2", "seed": "0"}),
                                                           ("nn_crf_train", {"variant": "ner_sll", "seed": "0"})])
    assert "benchmarks.csv (paper sizes); quick estimate (a product and weight noise timed) for ais, cd," in text
    # dbm_train from the table's rate: 300,000 updates of the config's flops at 0.04 s / 4e9 flops
    flops = products.flops(products.dbm_update_spec([784, 500, 1000], 100, 100, 10, 5))
    expected = projection.STARTUP_S + 500 * 600 * flops * 0.04 / 4e9
    assert re.search(rf"dbm_train \(dbm2\) +projected {projection.duration(expected):>8s}", text)
    assert "nn_crf_train (ner_sll)" in text and "— per seed" not in text


def test_onstart_message_projects_exactly_the_jobs_about_to_run(tmp_path):
    config = run_all_module.load_config(REPO / "config/config.yaml")
    jobs = [("dbm_train", {"dbm_model": "dbm2", "seed": "0"}), ("dbm_train", {"dbm_model": "dbm2", "seed": "1"}),
            ("dbm_rbm", {"cd": "25", "seed": "0"}), ("download", {"dataset": "mnist"})]
    text = projection.onstart_message(config, tmp_path / "missing.csv", jobs=jobs)
    assert "dbm_train (dbm2)" in text and "x 2" in text and "dbm_rbm (CD-25)" in text
    assert "dbm_train (dbm3)" not in text and "CD-1)" not in text and "dbn_" not in text
    assert "no training job" in projection.onstart_message(config, tmp_path / "missing.csv", jobs=jobs[3:])
    # an ablation's jobs run another protocol: they are not projected as the base variant's
    dbn = [("dbn_updown", {"dbn_variant": "updown", "seed": "0"}), ("dbn_updown", {"dbn_variant": "updown_short", "seed": "0"}),
           ("dbn_greedy", {"dbn_variant": "updown_short", "seed": "0"})]
    text = projection.onstart_message(config, tmp_path / "missing.csv", jobs=dbn)
    assert "dbn_updown" in text and "per seed x 1" in text and "dbn_greedy" not in text


def test_snakefile_onstart_hook_never_fails_the_workflow():
    snakefile = (REPO / "Snakefile").read_text()
    hook = snakefile[snakefile.index("onstart:"):]
    assert "onstart_message" in hook and "except Exception" in hook


def test_gpu_check_runs_on_cpu_tiny_and_writes_its_file(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    out = tmp_path / "gpu_check.txt"
    assert gpu_check.main(["--device", "cpu", "--tiny", "--threads", "1", "--repeats", "1", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.count("  parity ok ") == len(gpu_check.parity_checks(torch.device("cpu")))
    assert "CD-1 epoch" in text and "total dbm" in text and (tmp_path / "benchmarks.csv").exists()


def test_report_shows_each_given_table_that_exists(tmp_path):
    from benchmarks.common import Row
    from dlgm.report.render import render_html

    html, ours, theirs = tmp_path / "reports/index.html", tmp_path / "ours.csv", tmp_path / "reference.csv"
    render_html([], "t", html, benchmarks=[ours])
    assert 'id="speed"' not in html.read_text()  # a table that was never written is left out
    for path, seconds, threads in ((ours, 2.5, 2), (theirs, 0.5, 7)):
        rows = [Row("CD-1 epoch, 784-500", "epoch", seconds, "its matrix products alone", 2.0, "floor", 1.2,
                    device=f"cpu (x86_64, {threads} threads)", threads=threads, key="cd", extra={"flops": 1e12})]
        run_all_module.write_csv(rows, path)
    render_html([], "t", html, benchmarks=[ours, theirs])
    text = html.read_text()
    assert 'id="speed"' in text and text.count("CD-1 epoch, 784-500") == 2
    assert '<td class="num">7</td>' in text  # each row's thread count
    assert "1.25" in text and "2.500 s" in text and "0.25" in text and "500.000 ms" in text
    assert text.index(str(ours)) < text.index(str(theirs))


def test_ais_check_against_exact_enumeration_runs_tiny(capsys):
    from benchmarks import check_ais_mnist_rbm

    errors = check_ais_mnist_rbm.main(["--tiny", "--threads", "1", "--device", "cpu"])
    assert len(errors) == 1 and abs(errors[0]) < 5  # 145 temperatures on a 784-6 RBM: within a few nats
    assert "exact log Z" in capsys.readouterr().out


def test_speech_feature_benchmark_runs_tiny(capsys):
    from benchmarks import bench_speech_features
    from conftest import require_mirror

    bench_speech_features.main(["--tiny", "--repeats", "1", "--mirror", str(require_mirror())])
    assert "kaldi-native-fbank alone" in capsys.readouterr().out


def test_speech_benchmark_on_two_threads_times_each_network_against_one_thread(capsys):
    rows = run_all_module.MODULES["speech"].main(["--tiny", "--threads", "2", "--repeats", "1", "--device", "cpu"])
    on_threads = [r for r in rows if r.key == "threads"]
    assert [r.loop.split(",")[0] for r in on_threads] == ["hybrid BLSTM 1x8", "CTC BLSTM 1x8"]
    for r in on_threads:
        assert r.threads == 2 and r.reference == "the same loop on one thread" and math.isfinite(r.ratio)
    assert torch.get_num_threads() == 2  # restored after the one-thread reference
    one = run_all_module.MODULES["speech"].main(TINY)
    assert not [r for r in one if r.key == "threads"]  # on one thread there is nothing to compare
