"""pyproject.toml and environment.yml carry the same pins; the repository holds no machine paths."""
import re
import subprocess
import tomllib

import yaml

from conftest import REPO


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ]", req.strip().strip('"'), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        pins |= set(extra)
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    conda_pins = {p for p in pip if not p.startswith("-e")}
    assert conda_pins == pins, f"only in environment.yml: {conda_pins - pins}; only in pyproject: {pins - conda_pins}"


# Built from pieces so that this file does not match itself.
MACHINE_PATHS = re.compile("|".join(["/" + "work/(?:main|shared)", "/" + "root/", "/tmp/" + "pytest-of"]))


def test_no_machine_paths_in_tracked_files():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in files:
        path = REPO / name
        if path.suffix in {".png", ".pt", ".gz", ".zip"} or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        if MACHINE_PATHS.search(text):
            offenders.append(name)
    assert not offenders, offenders
