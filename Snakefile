# dlgm: snakemake --cores N [--configfile config/quick.yaml|config/smoke.yaml]
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
