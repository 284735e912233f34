# dlgm: snakemake --cores N [--configfile config/quick.yaml|config/smoke.yaml]
import sys

from snakemake.utils import min_version, validate

min_version("9.0")


# `snakemake --lint` asks for a conda env or container per rule: deliberately not done. The whole
# pipeline runs in one environment (environment.yml / pyproject.toml, same pins) installed before
# snakemake; one env per rule would install PyTorch once per rule. tests/test_pipeline.py allows
# exactly that lint and fails on any other.


configfile: "config/config.yaml"


# Fails before any job runs, naming the unknown key or wrong type; also fills in defaults.
validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/dbn.smk"
include: "workflow/rules/dbm.smk"
include: "workflow/rules/rnn_hmm.smk"
include: "workflow/rules/nn_crf.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "reports/index.html",
    default_target: True


# Before any job runs: the projected wall time of the training jobs about to run, from
# reports/tables/benchmarks.csv (`python -m benchmarks`) or a one-product timing (dlgm.projection).
onstart:
    try:
        from dlgm.projection import onstart_message

        pending = [(job.rule.name, dict(job.wildcards_dict)) for job in workflow.dag.needrun_jobs()]
        print(onstart_message(config, jobs=pending), file=sys.stderr)
    except Exception as err:  # a projection must never stop the workflow
        print(f"dlgm: no projected wall time ({type(err).__name__}: {err})", file=sys.stderr)
