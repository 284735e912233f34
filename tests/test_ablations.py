"""Ablations: the changed parameters are checked against the base run's, and the report sets each
ablation's metrics beside its base run's."""
import pytest

from conftest import copy_pipeline, snakemake
from dlgm.ablations import AblationError, changes_text, with_changes
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


def test_an_ablation_with_a_misspelt_key_fails_before_any_job(tmp_path):
    workdir = copy_pipeline(tmp_path / "ablation")
    (workdir / "config" / "ablation.yaml").write_text(
        "ablations:\n  rnn_hmm:\n    - {name: fsdd_x, base: fsdd_hybrid, set: {epochz: 3}, why: typo}\n")
    proc = snakemake(workdir, "--cores", "1", "--configfile", "config/ablation.yaml", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "ablations.rnn_hmm[fsdd_x].set: 'epochz'" in out
    assert not (workdir / "data").exists()


@pytest.mark.slow
def test_the_smoke_run_builds_the_ablation_table(smoke_run):
    ablation = smoke_run / "data" / "runs" / "rnn_hmm" / "fsdd_hybrid_wider" / "seed0" / "metrics.json"
    assert ablation.exists()
    html = (smoke_run / "reports" / "index.html").read_text()
    table = html.split("<h3>Ablations</h3>", 1)[1].split("</table>", 1)[0]
    assert "fsdd_hybrid_wider" in table and "hidden = 24" in table and "not run" not in table
