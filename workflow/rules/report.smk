# The report joins every registered metrics.json with config/papers.yaml (included last, so
# every rule file has registered its outputs by now). report.source "reference" builds it from the
# committed runs in reference/ alone (no training; no figures, which are drawn from data/runs);
# "runs" (default) shows those reference runs in a column beside this checkout's runs.
REFERENCE = "reference"
_layout = _load_module("dlgm_reference_layout", "src/dlgm/reference_layout.py")
# the runs, and the summaries over the TIMIT sample's folds (<variant>/folds/metrics.json)
REFERENCE_METRICS = [str(p) for p in _layout.metrics_files(REFERENCE)]
# the reference runs' times: their rules' benchmarks and their epochs (a resumed run's benchmarks time
# only its last invocation)
REFERENCE_TIMES = [str(p) for p in _layout.time_files(REFERENCE)]
# the speed tables of `python -m benchmarks`: this machine's, if it was written, and the development
# machine's committed one
BENCHMARK_TABLES = [t for t in ("reports/tables/benchmarks.csv", f"{REFERENCE}/benchmarks.csv") if Path(t).exists()]
REPORT_SOURCE = config["report"]["source"]
if REPORT_SOURCE == "reference" and not REFERENCE_METRICS:
    raise ValueError(f"report.source is 'reference' but {REFERENCE}/ holds no "
                     "<paper>/<variant>/seed<N>/metrics.json")
_from_reference = REPORT_SOURCE == "reference"
# "paper/variant" of each reference run -> the parameters this config gives it (papers in RUN_PARAMS)
REFERENCE_PROTOCOLS = {f"{paper}/{variant}": RUN_PARAMS[paper](variant)
                       for paper, variant in sorted({tuple(Path(m).parts[-4:-2]) for m in REFERENCE_METRICS})
                       if paper in RUN_PARAMS}


rule report:
    input:
        metrics=REFERENCE_METRICS if _from_reference else REPORT_METRICS,
        figures=[] if _from_reference else REPORT_FIGURES,
        reference=[] if _from_reference else REFERENCE_METRICS,
        reference_times=REFERENCE_TIMES,
        benchmarks=BENCHMARK_TABLES,
        papers="config/papers.yaml",
        code=code("dlgm.commands.report:build",
                  data=["report/templates/index.html.j2", "report/templates/reference.html.j2"]),
        template="src/dlgm/report/templates/index.html.j2",
    output:
        html="reports/index.html",
        table="reports/tables/summary.csv",
    params:
        cfg=lambda w: params(dict(config["report"], notes=REPORT_NOTES,
                                  ablations={paper: list(ablations_of(paper).values()) for paper in config["ablations"]},
                                  protocols=REFERENCE_PROTOCOLS)),
    log:
        "reports/logs/report.log",
    localrule: True
    shell:
        "python -m dlgm report build --params {params.cfg} --papers {input.papers}"
        " --html {output.html} --table {output.table}"
        " --metrics {input.metrics:q} --figures {input.figures:q} --reference {input.reference:q}"
        " --benchmarks {input.benchmarks:q} > {log} 2>&1"


# One target per paper: `snakemake --cores 4 dbn_all` runs that paper's rules only (its
# metrics and figures), without the report.
for _paper in ("dbn", "dbm", "rnn_hmm", "nn_crf"):

    rule:
        name:
            f"{_paper}_all"
        input:
            [p for p in REPORT_METRICS + REPORT_FIGURES if f"/{_paper}/" in p],
        localrule: True
