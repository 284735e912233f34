"""The side-by-side tables of papers.yaml ``tables``: one row per variant, the metrics' means and sds
over seeds and the wall time, from the runs; a malformed table is refused naming it."""
import pytest
import yaml

from dlgm.report.compare import PapersError, build_sections, load_papers
from dlgm.report.tables import attach_tables

PAPERS = {"rnn_hmm": {"title": "speech", "rows": [], "tables": [
    {"title": "FSDD", "variants": ["fsdd_hybrid", "fsdd_ctc", "fsdd_fullsum"], "metrics": ["test_der", "test_per"]}]}}


def _run(variant, seed, wall, **metrics):
    return {"paper": "rnn_hmm", "variant": variant, "seed": seed, "wall_seconds": wall, "metrics": metrics}


def test_rows_hold_each_variants_metrics_over_seeds_and_wall_time():
    runs = [_run("fsdd_hybrid", 0, 100.0, test_der=0.10, test_per=0.2), _run("fsdd_hybrid", 1, 300.0, test_der=0.14),
            _run("fsdd_ctc", 0, 50.0, test_per=0.3, test_der=float("nan"))]
    sections = build_sections(PAPERS, runs)
    attach_tables(sections, PAPERS, runs)
    (table,) = next(s for s in sections if s.key == "rnn_hmm").tables
    assert table.title == "FSDD" and table.displays == ["percent", "percent"]
    (hybrid, der_per, wall), (ctc, ctc_cells, ctc_wall), (fullsum, none_cells, none_wall) = table.rows
    assert hybrid == "fsdd_hybrid" and wall == 200.0
    assert der_per[0].mean == pytest.approx(0.12) and der_per[0].sd == pytest.approx(0.0282842712)
    assert der_per[1].values == [0.2] and der_per[1].sd is None
    assert ctc_cells[0] is None and ctc_cells[1].mean == 0.3 and ctc_wall == 50.0  # NaN is no value
    assert none_cells == [None, None] and none_wall is None


@pytest.mark.parametrize("table, named", [
    ({"title": "x", "variants": ["a"]}, "rnn_hmm.tables[0]: expected exactly the keys"),
    ({"title": "x", "variants": ["a"], "metrics": ["m"], "rows": 1}, "expected exactly the keys"),
    ({"title": "x", "variants": [], "metrics": ["m"]}, "non-empty lists of names"),
    ({"title": "x", "variants": "a", "metrics": ["m"]}, "non-empty lists of names"),
])
def test_a_malformed_table_is_refused_naming_it(tmp_path, table, named):
    path = tmp_path / "papers.yaml"
    path.write_text(yaml.safe_dump({"rnn_hmm": {"title": "t", "rows": [], "tables": [table]}}))
    with pytest.raises(PapersError, match=named.replace("[", r"\[").replace("]", r"\]")):
        load_papers(path)


@pytest.mark.slow
def test_the_smoke_report_shows_the_speech_systems_side_by_side(smoke_run):
    html = (smoke_run / "reports" / "index.html").read_text()
    table = html.split("the four systems side by side", 1)[1].split("</table>", 1)[0]
    for system in ("fsdd_gmm_hmm", "fsdd_hybrid", "fsdd_fullsum", "fsdd_ctc"):
        row = table.split(f"<td>{system}</td>", 1)[1].split("</tr>", 1)[0]
        assert "%" in row and "not run" not in row, row
