"""Shared fixtures: real projects written to temporary directories."""

from __future__ import annotations

import io
import os
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from reftool.cli import main
from sandbox import sandbox  # noqa: F401  (the hostile-input fixture, SPEC section 16)
from sandbox import write_file
from reftool.files.validate import Report, validate_project

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """The suite runs from a venv that cannot see the base interpreter's packages, so that a test
    leaning on a package installed globally fails here as it would on a fresh machine."""
    import site
    import sys
    if sys.prefix == sys.base_prefix:
        pytest.exit("run the tests from a venv, as the README's test command does", returncode=4)
    leaked = set(site.getsitepackages([sys.base_prefix])) & set(sys.path)
    if leaked:
        pytest.exit(f"this venv sees the base interpreter's packages ({sorted(leaked)}); "
                    "create it without --system-site-packages", returncode=4)

BASE_PIPELINE = """\
version: "1.0"
stages:
  prepare:
    cmd: python prepare.py
    deps: [prepare.py, data/raw.csv]
    params:
      params.yaml: [/prepare/seed]
    outs: [data/prepared/]
  train:
    cmd: python train.py
    deps: [train.py, data/prepared/]
    params:
      params.yaml: [/train]
    outs: [model.bin]
    metrics: [metrics/train.json]
"""

BASE_FILES = {
    "prepare.py": "print('prepare')\n",
    "train.py": "print('train')\n",
    "data/raw.csv": "a,b\n1,2\n",
    "params.yaml": "prepare:\n  seed: 1\ntrain:\n  lr: 0.01\n  epochs: 3\n",
}


@dataclass
class Result:
    code: int
    out: str
    err: str


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, content: str | bytes) -> Path:
        return write_file(self.root, rel, content)

    def base(self, pipeline: str = BASE_PIPELINE, **files: str) -> Project:
        for rel, text in {**BASE_FILES, **files}.items():
            self.write(rel, text)
        self.write("pipeline.yaml", pipeline)
        return self

    def report(self) -> Report:
        return validate_project(self.root, "pipeline.yaml")

    def codes(self, severity: str | None = None) -> list[tuple[str, str]]:
        return [(d.phase, d.code) for d in self.report().diagnostics
                if severity is None or d.severity == severity]

    def cli(self, *argv: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        cwd = os.getcwd()
        try:
            with redirect_stdout(out), redirect_stderr(err):
                code = main(["-C", str(self.root), *argv])
        finally:
            os.chdir(cwd)
        return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)
