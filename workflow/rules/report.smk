# The report joins every registered metrics.json with config/papers.yaml (included last, so
# every rule file has registered its outputs by now).


rule report:
    input:
        metrics=REPORT_METRICS,
        figures=REPORT_FIGURES,
        papers="config/papers.yaml",
        code=code("dlgm.commands.report:build", data=["report/templates/index.html.j2"]),
        template="src/dlgm/report/templates/index.html.j2",
    output:
        html="reports/index.html",
        table="reports/tables/summary.csv",
    params:
        cfg=lambda w: params(dict(config["report"], notes=REPORT_NOTES)),
    log:
        "reports/logs/report.log",
    localrule: True
    shell:
        "python -m dlgm report build --params {params.cfg} --papers {input.papers}"
        " --html {output.html} --table {output.table}"
        " --metrics {input.metrics:q} --figures {input.figures:q} > {log} 2>&1"


# One target per paper: `snakemake --cores 4 dbn_all` runs that paper's rules only (its
# metrics and figures), without the report.
for _paper in ("dbn", "dbm", "rnn_hmm", "nn_crf"):

    rule:
        name:
            f"{_paper}_all"
        input:
            [p for p in REPORT_METRICS + REPORT_FIGURES if f"/{_paper}/" in p],
        localrule: True
