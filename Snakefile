# dlgm: snakemake --cores N [--configfile config/quick.yaml|config/smoke.yaml]
import shlex
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")


# Jobs (and onstart below) import this checkout's src/dlgm, whichever dlgm is installed: the code a
# job runs is then the code its inputs track (common.smk) and its metrics.json names (git describe).
# The prefix keeps snakemake's own bash prefix; "{{" is how shell.prefix writes a brace.
_SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, _SRC)
shell.prefix(f"set -euo pipefail; export PYTHONPATH={shlex.quote(_SRC)}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")


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
# reports/tables/benchmarks.csv (`python -m benchmarks`) or two tiny timings (dlgm.projection).
onstart:
    try:
        from dlgm.projection import onstart_message

        pending = [(job.rule.name, dict(job.wildcards_dict)) for job in workflow.dag.needrun_jobs()]
        print(onstart_message(config, jobs=pending), file=sys.stderr)
    except Exception as err:  # a projection must never stop the workflow
        print(f"dlgm: no projected wall time ({type(err).__name__}: {err})", file=sys.stderr)
