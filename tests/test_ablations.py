"""Ablations: the changed parameters are checked against the base run's, and the report sets each
ablation's metrics beside its base run's."""
import json
import shlex

import pytest

from conftest import copy_pipeline, snakemake
from dlgm.ablations import AblationError, changes_text, with_changes, without_disabled
from dlgm.report.ablations import attach_ablations
from dlgm.report.compare import build_sections

BASE = {"hidden": 64, "learning_rate": 0.003, "optimizer": "adam", "fullsum": {"init_ce_epochs": 0, "lr": 0.1},
        "gap_ms": [100.0, 300.0], "limit": None}


def test_changes_merge_into_the_base_and_leave_the_rest():
    out = with_changes(BASE, {"hidden": 128, "fullsum": {"init_ce_epochs": 3}, "limit": 5}, "x")
    assert out == {**BASE, "hidden": 128, "fullsum": {"init_ce_epochs": 3, "lr": 0.1}, "limit": 5}
    assert BASE["fullsum"]["init_ce_epochs"] == 0  # the base is not modified
    assert with_changes(BASE, {"learning_rate": 1}, "x")["learning_rate"] == 1  # an int is a number


@pytest.mark.parametrize("changes, named", [
    ({"hiden": 128}, "'hiden'"),
    ({"fullsum": {"init_epochs": 3}}, "x.fullsum: 'init_epochs'"),
    ({"hidden": "128"}, "x.hidden"),
    ({"optimizer": 1}, "x.optimizer"),
    ({"fullsum": 3}, "x.fullsum"),
    ({"hidden": True}, "x.hidden"),
    ({"gap_ms": 100.0}, "x.gap_ms"),
])
def test_a_misspelt_or_mistyped_change_is_refused_naming_it(changes, named):
    with pytest.raises(AblationError, match=named.replace(".", r"\.")):
        with_changes(BASE, changes, "x")


def test_changes_text_names_nested_keys():
    assert changes_text({"hybrid": {"epochs": 30}, "lm_scale": 0.5}) == ["hybrid.epochs = 30", "lm_scale = 0.5"]


def _run(variant, seed, **metrics):
    return {"paper": "rnn_hmm", "variant": variant, "seed": seed, "metrics": metrics}


PAPERS = {"rnn_hmm": {"rows": [
    {"variant": "fsdd_hybrid", "metric": "test_der", "label": "DER", "source": "-", "display": "percent"}]}}


def test_the_report_sets_each_ablation_beside_its_base():
    runs = [_run("fsdd_hybrid", 0, test_der=0.126, test_per=0.2), _run("fsdd_hybrid", 1, test_der=0.130),
            _run("noise", 0, test_der=0.10, test_per=0.15), _run("noise", 1, test_der=0.08),
            _run("other", 0, test_der=0.3)]
    sections = build_sections(PAPERS, runs)
    ablations = {"rnn_hmm": [
        {"name": "noise", "base": "fsdd_hybrid", "set": {"weight_noise": 0.075}, "why": "regularise?"},
        {"name": "per", "base": "fsdd_hybrid", "set": {"hidden": 8}, "why": "?", "metrics": ["test_per"]}]}
    attach_ablations(sections, runs, ablations)
    section = next(s for s in sections if s.key == "rnn_hmm")
    noise, per = section.ablations
    assert noise.changes == ["weight_noise = 0.075"] and noise.why == "regularise?"
    (value,) = noise.values  # default: the metrics of the base's papers.yaml rows
    assert value.metric == "test_der" and value.display == "percent"
    assert value.base.mean == pytest.approx(0.128) and value.ablation.mean == pytest.approx(0.09)
    assert value.difference == pytest.approx(-0.038)
    assert per.values[0].base.mean == 0.2 and per.values[0].ablation is None and per.values[0].difference is None
    # the ablation's runs leave "other measured numbers"; unrelated variants stay
    assert {r.variant for r in section.other} == {"fsdd_hybrid", "other"}


def test_a_side_that_ran_without_the_metric_reads_not_recorded_and_one_without_runs_not_run(tmp_path):
    from dlgm.report.render import render_html
    runs = [dict(_run("fsdd_hybrid", 0, test_per=0.5), device="cpu", wall_seconds=1.0, path="a"),
            dict(_run("from_hybrid", 0, test_per=0.45, start_test_per=0.47), device="cpu", wall_seconds=1.0, path="b")]
    sections = build_sections(PAPERS, runs)
    attach_ablations(sections, runs, {"rnn_hmm": [
        {"name": "from_hybrid", "base": "fsdd_hybrid", "set": {"init_from_hybrid": True}, "why": "?",
         "metrics": ["test_per", "start_test_per"]},
        {"name": "absent", "base": "fsdd_hybrid", "set": {"epochs": 2}, "why": "?", "metrics": ["test_per"]}]})
    from_hybrid, absent = next(s for s in sections if s.key == "rnn_hmm").ablations
    per, start = from_hybrid.values
    assert per.base.mean == 0.5 and start.base is None and start.ablation.mean == 0.47
    assert start.absent("base") == "not recorded" and absent.values[0].absent("ablation") == "not run"
    render_html(sections, "t", tmp_path / "index.html")
    html = (tmp_path / "index.html").read_text()
    row = html[html.index('id="ablation-rnn_hmm-from_hybrid"'):html.index('id="ablation-rnn_hmm-absent"')]
    assert row.count("not recorded") == 1 and "not run" not in row
    assert html[html.index('id="ablation-rnn_hmm-absent"'):].count("not run") >= 1


def test_an_ablation_difference_is_judged_against_the_seeds_spread():
    from dlgm.report.ablations import AblationValue
    from dlgm.report.compare import Replicated

    three = lambda *v: Replicated(list(v), [0, 1, 2])  # noqa: E731
    base = three(0.80, 0.81, 0.82)  # sd 0.01
    far = AblationValue("f1", "percent", base, three(0.76, 0.77, 0.78))
    assert far.standard_error == pytest.approx((2 * 0.01**2 / 3) ** 0.5)
    assert far.effect == "beyond the seeds' spread (4.9 s.e.)"
    near = AblationValue("f1", "percent", base, three(0.805, 0.815, 0.825))
    assert near.effect == "within the seeds' spread (0.6 s.e.)"
    # a one-seed ablation borrows its base's sd: se = sqrt(0.01^2 / 3 + 0.01^2 / 1)
    single = AblationValue("f1", "percent", base, Replicated([0.83], [0]))
    assert single.standard_error == pytest.approx((0.01**2 / 3 + 0.01**2) ** 0.5)
    assert single.effect == "within the seeds' spread (1.7 s.e.)"
    one_each = AblationValue("f1", "percent", Replicated([0.8], [0]), Replicated([0.7], [0]))
    assert one_each.standard_error is None and one_each.effect == "one seed each: no spread to judge it by"
    assert AblationValue("f1", "percent", base, None).effect == ""
    same = AblationValue("f1", "percent", three(0.8, 0.8, 0.8), three(0.8, 0.8, 0.8))
    assert same.effect == "no difference"


def test_a_chained_ablation_is_compared_with_its_base_ablation():
    runs = [_run("fsdd_hybrid", 0, test_der=0.2), _run("short", 0, test_der=0.3), _run("short_noise", 0, test_der=0.25)]
    sections = build_sections(PAPERS, runs)
    attach_ablations(sections, runs, {"rnn_hmm": [
        {"name": "short_noise", "base": "short", "set": {"weight_noise": 0.075}, "why": "?"},
        {"name": "short", "base": "fsdd_hybrid", "set": {"epochs": 2}, "why": "control"}]})
    chained, short = next(s for s in sections if s.key == "rnn_hmm").ablations
    (value,) = chained.values  # default metrics: the papers.yaml rows of fsdd_hybrid, where the chain starts
    assert chained.base == "short" and chained.changes == ["weight_noise = 0.075"]
    assert value.metric == "test_der" and value.base.mean == 0.3 and value.difference == pytest.approx(-0.05)
    assert short.values[0].base.mean == 0.2


MISTAKES = {
    "rnn_hmm_key": ("rnn_hmm:\n    - {name: fsdd_x, base: fsdd_hybrid, set: {epochz: 3}, why: typo}",
                    "ablations.rnn_hmm[fsdd_x].set: 'epochz'"),
    "dbn_nested_key": ("dbn:\n    - {name: u, base: updown, set: {updown: {momentun: 0.9}}, why: typo}",
                       "ablations.dbn[u].set.updown: 'momentun'"),
    "nn_crf_key": ("nn_crf:\n    - {name: n, base: ner_sll, set: {min_cont: 1}, why: typo}",
                   "ablations.nn_crf[n].set: 'min_cont'"),
    "unknown_base": ("dbn:\n    - {name: a, base: updown, set: {}, why: x}\n    - {name: b, base: updwn, set: {}, why: x}",
                     "ablations.dbn[b]: base 'updwn' is neither a variant of dbn"),
    "cycle": ("nn_crf:\n    - {name: a, base: c, set: {}, why: x}\n    - {name: b, base: a, set: {}, why: x}\n"
              "    - {name: c, base: b, set: {}, why: x}", "ablations.nn_crf[a]: its bases form a cycle (a -> c -> b -> a)"),
    "real_name": ("dbn:\n    - {name: baseline, base: backprop, set: {}, why: x}",
                  "ablations.dbn[baseline]: the name is a variant's own"),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_a_bad_ablation_fails_before_any_job_naming_it(tmp_path, mistake):
    entries, named = MISTAKES[mistake]
    workdir = copy_pipeline(tmp_path / "ablation")
    (workdir / "config" / "ablation.yaml").write_text(f"ablations:\n  {entries}\n")
    proc = snakemake(workdir, "--cores", "1", "--configfile", "config/ablation.yaml", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and named in out, out[-3000:]
    assert not (workdir / "data").exists()


def _jobs(dry_run: str) -> dict[str, dict]:
    """output file -> {rule, input, shell} of each job a ``snakemake -n -p`` listing shows."""
    jobs, job = {}, {}
    for line in dry_run.splitlines():
        line = line.strip()
        if line.startswith(("rule ", "localrule ")):
            job = {"rule": line.split()[1].rstrip(":")}
        elif line.startswith(("input:", "output:")):
            job[line.split(":")[0]] = line.split(": ", 1)[1].split(", ")
        elif line.startswith("Shell command:") and job.get("output"):
            jobs.update({out: {**job, "shell": line} for out in job["output"]})
    return jobs


def test_chained_ablations_merge_their_changes_and_share_unchanged_first_stages(tmp_path):
    workdir = copy_pipeline(tmp_path / "chain")
    (workdir / "config" / "chain.yaml").write_text(
        "ablations:\n  dbn:\n"
        "    - {name: short, base: updown, set: {greedy: {epochs: 2}, updown: {epochs: 3}}, why: control}\n"
        "    - {name: short_momentum, base: short, set: {updown: {momentum: 0.9}}, why: one change}\n"
        "    - {name: short_init, base: short, set: {greedy: {init_std: 0.1}}, why: one change}\n"
        "  nn_crf:\n    - {name: ner_min1, base: ner_sll, set: {min_count: 1}, why: x}\n")
    targets = [f"data/runs/{p}/{v}/seed0/metrics.json" for p, v in
               (("dbn", "short_momentum"), ("dbn", "short_init"), ("nn_crf", "ner_min1"))]
    proc = snakemake(workdir, *targets, "-n", "-p", "--configfile", "config/chain.yaml")
    jobs = _jobs(proc.stdout + proc.stderr)
    momentum, init = jobs[targets[0]], jobs[targets[1]]
    params = json.loads(shlex.split(momentum["shell"])[shlex.split(momentum["shell"]).index("--params") + 1])
    assert params["greedy"]["epochs"] == 2 and params["updown"]["epochs"] == 3 and params["updown"]["momentum"] == 0.9
    assert params["updown"]["full_epochs"] == 59 and params["greedy"]["init_std"] == 0.01  # the rest: updown's
    assert "--variant short_momentum" in momentum["shell"]
    # the momentum run changes nothing of the greedy stage: it takes the control's greedy net
    assert "data/runs/dbn/short/seed0/greedy.pt" in momentum["input"]
    assert "data/runs/dbn/short_init/seed0/greedy.pt" in init["input"]
    ner = jobs[targets[2]]["shell"]
    assert '"min_count": 1' in ner and "--likelihood sll" in ner and "--variant ner_min1" in ner
    assert "data/processed/conll2003/train.pt" in jobs[targets[2]]["input"]


def test_dbm_ablations_reuse_the_stages_whose_settings_they_keep(tmp_path):
    workdir = copy_pipeline(tmp_path / "dbm")
    (workdir / "config" / "dbm.yaml").write_text(
        "ablations:\n  dbm:\n"
        "    - {name: dbm2_ais_runs, base: dbm2, set: {ais: {runs: 50}}, why: AIS only}\n"
        "    - {name: dbm2_gibbs10, base: dbm2, set: {joint: {gibbs_steps: 10}}, why: joint training}\n"
        "    - {name: rbm_cd3_lr, base: ais_rbm_cd3, set: {rbm: {lr: 0.2}}, why: an RBM's training}\n")
    targets = [f"data/runs/dbm/{v}/seed0/metrics.json" for v in ("dbm2_ais_runs", "dbm2_gibbs10", "rbm_cd3_lr")]
    proc = snakemake(workdir, *targets, "-n", "-p", "--configfile", "config/dbm.yaml")
    jobs = _jobs(proc.stdout + proc.stderr)
    ais_only = jobs["data/runs/dbm/dbm2_ais_runs/seed0/ais.json"]
    assert "data/runs/dbm/dbm2/seed0/dbm.pt" in ais_only["input"]  # the base's trained DBM
    assert '"runs": 50' in ais_only["shell"]
    assert "data/runs/dbm/dbm2_ais_runs/seed0/ais.json" in jobs[targets[0]]["input"]
    assert "--variant dbm2_ais_runs" in jobs[targets[0]]["shell"]
    joint = jobs["data/runs/dbm/dbm2_gibbs10/seed0/dbm.pt"]
    assert "data/runs/dbm/dbm2/seed0/pretrained.pt" in joint["input"] and '"gibbs_steps": 10' in joint["shell"]
    assert "data/runs/dbm/dbm2_gibbs10/seed0/dbm.pt" in jobs[targets[1]]["input"]
    assert "data/runs/dbm/dbm2_gibbs10/seed0/pretrained.pt" not in jobs  # pretraining is the base's
    rbm = jobs[targets[2]]  # an RBM ablation trains its own RBM with the base's k and the changed rate
    params = json.loads(shlex.split(rbm["shell"])[shlex.split(rbm["shell"]).index("--params") + 1])
    assert rbm["rule"] == "dbm_rbm" and "--variant rbm_cd3_lr" in rbm["shell"]
    assert params["cd_k"] == 3 and params["rbm"]["lr"] == 0.2 and params["rbm"]["epochs"] == 100
    assert "data/runs/dbm/ais_rbm_cd3/seed0/metrics.json" not in jobs  # nothing of the base is needed


def test_a_full_sum_run_from_the_hybrid_takes_that_hybrids_trained_model(tmp_path):
    workdir = copy_pipeline(tmp_path / "start")
    hybrid = "data/runs/rnn_hmm/fsdd_hybrid/seed0/model.pt"
    fullsum, ablation = (f"data/runs/rnn_hmm/{v}/seed0/metrics.json" for v in ("fsdd_fullsum", "fsdd_fs_from_hybrid"))
    (workdir / "config" / "start.yaml").write_text(
        "ablations:\n  rnn_hmm:\n    - {name: fsdd_fs_from_hybrid, base: fsdd_fullsum, set: {init_from_hybrid: true}, why: x}\n")
    jobs = _jobs(snakemake(workdir, fullsum, ablation, "-n", "-p", "--configfile", "config/start.yaml").stdout)
    assert hybrid in jobs[ablation]["input"] and f"--hybrid {hybrid}" in jobs[ablation]["shell"]
    assert hybrid not in jobs[fullsum]["input"] and "--hybrid" not in jobs[fullsum]["shell"]  # the default: flat
    (workdir / "config" / "start.yaml").write_text("rnn_hmm:\n  fullsum:\n    init_from_hybrid: true\n")
    jobs = _jobs(snakemake(workdir, fullsum, "-n", "-p", "--configfile", "config/start.yaml").stdout)
    assert hybrid in jobs[fullsum]["input"] and f"--hybrid {hybrid}" in jobs[fullsum]["shell"]
    assert jobs[hybrid]["rule"] == "rnn_hmm_hybrid"
    # config.yaml's init_ce_epochs ablation now asks for two starts: refused by name, before any job runs
    ce_init = "data/runs/rnn_hmm/timit_sample_fold0_fullsum_short_ce_init/seed0/metrics.json"
    both = snakemake(workdir, ce_init, "-n", "--configfile", "config/start.yaml", check=False)
    assert both.returncode != 0
    assert ("timit_sample_fold0_fullsum_short_ce_init: init_from_hybrid and init_ce_epochs 10 are two starts"
            in both.stdout + both.stderr)


def test_ablations_of_a_disabled_model_are_dropped_with_it():
    entries = {"a": {"base": "dbm3"}, "b": {"base": "a"}, "c": {"base": "dbm2"}, "d": {"base": "dbm_typo"}}
    assert list(without_disabled(entries, ["dbm3"])) == ["c", "d"]  # b's chain starts at dbm3 too
    assert list(without_disabled(entries, [])) == ["a", "b", "c", "d"]
    assert list(without_disabled({"x": {"base": "y"}, "y": {"base": "x"}}, ["dbm3"])) == ["x", "y"]  # a cycle stops


def test_a_config_that_disables_a_model_skips_its_ablations_and_still_refuses_a_typo(tmp_path):
    workdir = copy_pipeline(tmp_path / "disabled")
    (workdir / "config" / "off.yaml").write_text(
        "dbm:\n  models:\n    dbm3: {enabled: false}\n"
        "ablations:\n  dbm:\n"
        "    - {name: dbm3_runs, base: dbm3, set: {ais: {runs: 50}}, why: x}\n"
        "    - {name: dbm2_runs, base: dbm2, set: {ais: {runs: 50}}, why: x}\n")
    proc = snakemake(workdir, "data/runs/dbm/dbm2_runs/seed0/metrics.json", "-n", "--configfile", "config/off.yaml")
    assert "data/runs/dbm/dbm2_runs/seed0/ais.json" in proc.stdout + proc.stderr
    missing = snakemake(workdir, "data/runs/dbm/dbm3_runs/seed0/metrics.json", "-n", "--configfile",
                        "config/off.yaml", check=False)
    assert missing.returncode != 0  # no rule makes the dropped ablation's run
    (workdir / "config" / "off.yaml").write_text(
        "dbm:\n  models:\n    dbm3: {enabled: false}\n"
        "ablations:\n  dbm:\n    - {name: dbm3_runs, base: dbm_3, set: {}, why: x}\n")
    typo = snakemake(workdir, "-n", "--configfile", "config/off.yaml", check=False)
    assert typo.returncode != 0 and "base 'dbm_3' is neither a variant of dbm" in typo.stdout + typo.stderr


def test_the_report_reads_each_ablation_and_its_base_once(tmp_path):
    """A base the paper's table does not show (one speaker fold) is among the report's inputs, and a
    base that it does show (fsdd_hybrid) is listed once: a file read twice would count as two runs."""
    workdir = copy_pipeline(tmp_path / "bases")
    (workdir / "config" / "bases.yaml").write_text(
        "ablations:\n  rnn_hmm:\n"
        "    - {name: fold_ctc_longer, base: timit_sample_fold0_ctc, set: {epochs: 3}, why: budget}\n"
        "    - {name: fsdd_wider, base: fsdd_hybrid, set: {hidden: 24}, why: size}\n")
    proc = snakemake(workdir, "report", "-n", "-p", "--configfile", "config/smoke.yaml", "config/bases.yaml")
    inputs = _jobs(proc.stdout + proc.stderr)["reports/index.html"]["input"]
    for variant in ("timit_sample_fold0_ctc", "fold_ctc_longer", "fsdd_hybrid", "fsdd_wider"):
        assert inputs.count(f"data/runs/rnn_hmm/{variant}/seed0/metrics.json") == 1, variant


@pytest.mark.slow
def test_the_smoke_run_builds_the_ablation_table(smoke_run):
    runs = smoke_run / "data" / "runs"
    for paper, name in (("rnn_hmm", "fsdd_hybrid_wider"), ("dbn", "updown_init01"), ("dbn", "updown_init01_momentum"),
                        ("nn_crf", "chunk_sll_min_count1"), ("dbm", "dbm2_ais_runs")):
        assert json.loads((runs / paper / name / "seed0" / "metrics.json").read_text())["variant"] == name
    assert not (runs / "dbn" / "updown_init01_momentum" / "seed0" / "greedy.pt").exists()  # its base's is reused
    assert not (runs / "dbm" / "dbm2_ais_runs" / "seed0" / "dbm.pt").exists()
    html = (smoke_run / "reports" / "index.html").read_text()

    def ablation_table(paper):
        section = html.split(f'<h2 id="{paper}">', 1)[1].split("<h2", 1)[0]
        return section.split("<h3>Ablations</h3>", 1)[1].split("</table>", 1)[0]

    rnn_hmm, dbn, nn_crf, dbm = (ablation_table(p) for p in ("rnn_hmm", "dbn", "nn_crf", "dbm"))
    assert "dbm2_ais_runs" in dbm and "ais.runs = 10" in dbm and "not run" not in dbm
    assert "fsdd_hybrid_wider" in rnn_hmm and "hidden = 24" in rnn_hmm and "not run" not in rnn_hmm
    assert "updown_init01_momentum" in dbn and "updown.momentum = 0.5" in dbn and "not run" not in dbn
    assert "chunk_sll_min_count1" in nn_crf and "not run" not in nn_crf
    assert "one seed each: no spread to judge it by" in nn_crf  # the smoke config runs seed 0 only
