"""Each rule's code inputs hold every dlgm module its jobs really import (a missing one means an
edit to it reruns nothing), and a checkpoint is keyed on that same file set.

The oracle is Python itself: the smoke run sets PYTHONPROFILEIMPORTTIME, so every job's log lists
each module the interpreter imported, whatever the static analysis in dlgm.provenance found.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from dlgm import provenance
from test_slurm import _rules

# outputs pinned by a checksum in their params cannot depend on code (see workflow/rules/data.smk)
PINNED_BY_CHECKSUM = {"download"}
IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(dlgm(?:\.\w+)*)\s*$", re.M)


def _imported(log: Path) -> set[str]:
    return set(IMPORT_LINE.findall(log.read_text(errors="replace")))


def _logs(workdir: Path, pattern: str) -> list[Path]:
    return sorted(workdir.glob(re.sub(r"\{[^}]+\}", "*", pattern)))


def test_every_module_a_job_imports_is_among_its_rules_code_inputs(smoke_run):
    rules = _rules(smoke_run, "config/smoke.yaml")
    checked, ran = 0, set()
    for name, rule in rules.items():
        if "python -m dlgm" not in rule["shell"] or name in PINNED_BY_CHECKSUM:
            continue
        logs = [log for pattern in rule["logs"] for log in _logs(smoke_run, pattern)]
        if not logs:  # not part of the smoke DAG (e.g. licensed or optional corpora)
            continue
        ran.add(name)
        inputs = set(rule["inputs"])
        for log in logs:
            modules = _imported(log)
            assert "dlgm.cli" in modules, f"{log}: no import lines (PYTHONPROFILEIMPORTTIME not set?)"
            files = {str(f.relative_to(smoke_run)) for m in modules
                     if (f := provenance.module_file(m, smoke_run / "src" / "dlgm")) is not None}
            missing = sorted(files - inputs)
            assert not missing, f"rule {name}: its job imported {missing}, which are not among its code inputs"
            checked += 1
    assert checked >= 10, f"only {checked} job logs checked"
    for family in ("prepare", "dbn_", "dbm_", "rnn_hmm_", "nn_crf", "report"):
        assert any(family in name for name in ran), f"no {family} rule was checked: {sorted(ran)}"


def test_an_entry_narrows_the_command_module_to_what_that_command_runs():
    train = provenance.code_files("dlgm.commands.dbm:cmd_train", root=Path(__file__).parents[1])
    finetune = provenance.code_files("dlgm.commands.dbm:cmd_finetune", root=Path(__file__).parents[1])
    assert "src/dlgm/boltzmann/dbm_finetune.py" in finetune
    assert "src/dlgm/boltzmann/dbm_finetune.py" not in train  # editing fine-tuning leaves training alone
    assert "src/dlgm/provenance.py" in train  # via training.py: it keys checkpoints on these files


def test_closure_follows_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "src" / "dlgm"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "leaf.py").write_text("X = 1\n")
    (pkg / "sub" / "mid.py").write_text("def f():\n    from .leaf import X\n    return X\n")
    (pkg / "unused.py").write_text("")
    (pkg / "cmd.py").write_text(
        "import json\n\ndef register(p):\n    pass\n\ndef helper():\n    from dlgm.sub import mid\n\n"
        "def run(args):\n    helper()\n\ndef other(args):\n    import dlgm.unused\n")
    files = provenance.code_files("dlgm.cmd:run", root=tmp_path)
    assert files == ["src/dlgm/__init__.py", "src/dlgm/cmd.py", "src/dlgm/sub/__init__.py",
                     "src/dlgm/sub/leaf.py", "src/dlgm/sub/mid.py"]
    assert "src/dlgm/unused.py" in provenance.code_files("dlgm.cmd", root=tmp_path)
    with pytest.raises(ValueError, match="no function 'nope'"):
        provenance.code_files("dlgm.cmd:nope", root=tmp_path)
    with pytest.raises(ValueError, match="no module 'dlgm.gone'"):
        provenance.code_files("dlgm.gone", root=tmp_path)


def test_no_command_imports_the_test_oracles():
    root = Path(__file__).parents[1]
    commands = sorted(p.stem for p in (root / "src" / "dlgm" / "commands").glob("*.py") if p.stem != "__init__")
    files = provenance.code_files(*(f"dlgm.commands.{c}" for c in commands), root=root)
    assert len(files) > 40
    assert not [f for f in files if "/testing/" in f], "the pipeline imports dlgm.testing (test oracles)"
