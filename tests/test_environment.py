"""The pip pins and the conda environment agree; the package carries its artifacts."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _conda_pip_deps() -> list[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\s*- pip:\s*$", line))
    deps = []
    for line in lines[start + 1:]:
        m = re.match(r"\s+- (.+?)\s*$", line)
        if not m:
            break
        deps.append(m.group(1))
    return [d for d in deps if d != "-e ."]


def test_environment_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(_conda_pip_deps()) == sorted(project["dependencies"])


def test_dependencies_are_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    loose = [d for d in project["dependencies"] if "==" not in d]
    assert not loose, f"unpinned dependencies: {loose}"


def test_torch_and_torchaudio_are_a_matching_pair():
    import torch
    import torchaudio

    assert torch.__version__.split("+")[0] == torchaudio.__version__.split("+")[0]


def test_every_shipped_artifact_is_packaged():
    # A wheel (`pip install .`, or from a git address) carries only the files that
    # package-data names; a shipped model left out would be retrained (up to 75 min),
    # and the real recordings must travel with their attribution and license.
    import fnmatch

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    patterns = tool["setuptools"]["package-data"]["course_lib"]
    pkg = ROOT / "course_lib"
    shipped = [p.relative_to(pkg).as_posix() for folder in ("artifacts", "data")
               for p in (pkg / folder).rglob("*") if p.is_file()]
    assert shipped, "no shipped artifacts found"
    left_out = [f for f in shipped
                if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert not left_out, f"not in the package data of pyproject.toml: {left_out}"
