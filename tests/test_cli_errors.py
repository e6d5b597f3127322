"""Bad input to the newer commands: a clear message, a non-zero exit, no traceback, and
nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Project


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reftool", *args], cwd=root,
                          capture_output=True, text=True, timeout=60)


def no_traceback(r: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in r.stdout + r.stderr
    assert "internal error" not in r.stderr


@pytest.mark.parametrize("args, code, message", [
    (("run", "-j", "0"), 2, "-j needs a number of at least 1"),
    (("exp", "save", "x"), 1, "pipeline.yaml: error[io/file_not_found]"),
    (("metrics", "diff"), 2, "nothing to compare with"),
    (("params", "diff", "nope", "workspace"), 2, "'nope' is not a git revision here"),
    (("exp", "show", "--rev", "nope"), 2, "'nope' is not a git revision here"),
    (("plot", "--out", "o"), 2, "no readable pipeline.yaml in workspace"),
    (("import-dvc",), 1, "dvc.yaml: error[io/file_not_found]"),
    (("git", "install"), 1, "not inside a git repository"),
    (("dag",), 1, "error[io/file_not_found]"),
])
def test_clear_errors_in_an_empty_folder(tmp_path: Path, args: tuple[str, ...], code: int,
                                         message: str) -> None:
    r = cli(tmp_path, *args)
    assert r.returncode == code, r.stdout + r.stderr
    assert message in r.stdout + r.stderr
    no_traceback(r)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".reftool") == []


def test_plot_without_metrics(project: Project) -> None:
    project.base('version: "1.0"\nstages:\n  s:\n    cmd: x\n    outs: [o]\n')
    r = cli(project.root, "plot", "--out", "o")
    assert r.returncode == 1
    assert "curves: no series metrics to plot" in r.stderr
    no_traceback(r)


def test_import_dvc_broken_yaml(project: Project) -> None:
    project.write("dvc.yaml", "stages:\n  s:\n\tcmd: x\n")
    r = cli(project.root, "import-dvc")
    assert r.returncode == 1 and "dvc.yaml:3:1: error[parse/syntax]" in r.stderr
    assert not (project.root / "pipeline.yaml").exists()
    no_traceback(r)


def test_exp_show_filter_errors(project: Project) -> None:
    project.base('version: "1.0"\nstages:\n  s:\n    cmd: x\n    metrics: [m.json]\n')
    project.write("m.json", '{"version": "1.0", "metrics": {"acc": 1}}')
    r = cli(project.root, "exp", "show", "--filter", "acc ~ 1")
    assert r.returncode == 2 and "expected COLUMN OP VALUE" in r.stderr
    r = cli(project.root, "exp", "show", "--sort", "nope")
    assert r.returncode == 2 and "no column 'nope'" in r.stderr
