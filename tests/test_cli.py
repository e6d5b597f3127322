"""The command line: entry points, exit codes ([tool.exit-codes]), streams, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO, Project
from reftool import cli
from reftool.files.spec import EXIT_INTERNAL, EXIT_INVALID, EXIT_OK, EXIT_USAGE


def _run(*argv: str, cwd: object = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reftool", *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_python_dash_m_and_console_script(project: Project) -> None:
    project.base()
    r = _run("validate", cwd=project.root)
    assert (r.returncode, r.stdout, r.stderr) == (0, "valid: 0 errors, 0 warnings in 2 files\n",
                                                  "")
    r = subprocess.run(["reftool", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("reftool 0.1.0 (spec 1.1)")


def test_invalid_project_exit_1_report_on_stdout(project: Project) -> None:
    project.base('version: "1.0"\nstages: {s: {cmd: x, outs: [a/, a/b]}}\n')
    r = _run("validate", cwd=project.root)
    assert r.returncode == EXIT_INVALID
    assert "error[semantic/output_nested]" in r.stdout
    assert r.stderr == ""


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["validate", "--format", "xml"]])
def test_usage_errors_exit_2(argv: list[str]) -> None:
    r = _run(*argv)
    assert r.returncode == EXIT_USAGE
    assert r.stdout == "" and "usage: reftool" in r.stderr


def test_help_exits_0() -> None:
    r = _run("validate", "--help")
    assert r.returncode == EXIT_OK and "--format" in r.stdout


def test_internal_error_is_one_line_and_70(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    def boom(_: object) -> int:
        raise RuntimeError("kaboom")
    monkeypatch.setattr(cli.files, "cmd_validate", boom)
    monkeypatch.delenv("REFTOOL_DEBUG", raising=False)
    assert cli.main(["validate"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.startswith("reftool: internal error: RuntimeError: kaboom")
    assert "Traceback" not in err


def test_missing_directory_for_C() -> None:
    r = _run("-C", "/nonexistent/dir", "validate")
    assert r.returncode == EXIT_USAGE
    assert "no such file or directory" in r.stderr and "Traceback" not in r.stderr


def test_schema_command() -> None:
    r = _run("schema", "pipeline")
    assert r.returncode == 0
    assert json.loads(r.stdout)["$id"].endswith("/1.0/pipeline.schema.json")
    r = _run("schema", "lock", "--path")
    assert r.stdout.strip().endswith("lock.schema.json")
    assert (REPO / "schemas" / "lock.schema.json").read_text() == \
        open(r.stdout.strip()).read()


def test_validate_imports_no_matplotlib(project: Project) -> None:
    # validate and plan must start fast: plotting stays out of their import path
    project.base()
    code = ("import sys; from reftool.cli import main; rc = main(['validate']); "
            "print(rc, 'matplotlib' in sys.modules, 'numpy' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=project.root, capture_output=True,
                       text=True, timeout=60)
    assert r.stdout.splitlines()[-1] == "0 False False"


def test_import_reftool_is_cheap() -> None:
    code = "import sys, reftool; print(sorted(m for m in ('ruamel', 'jsonschema', " \
           "'matplotlib') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "[]"


def test_public_api_is_all() -> None:
    import inspect

    import reftool
    public = {n for n in dir(reftool) if not n.startswith("_")
              and not inspect.ismodule(getattr(reftool, n))} - {"annotations", "Any"}
    assert public == set(reftool.__all__) - {"__version__"}
    assert set(reftool.__all__) == {"__version__", "param", "read_params"}


def test_read_params_gives_yaml_1_2_values(project: Project) -> None:
    import reftool
    from reftool.files.errors import SpecError
    p = project.write("params.yaml", "lr: 1e-3\nflag: on\nseeds: [010, 0x10]\nn: {a.b: 1}\n")
    assert reftool.read_params(str(p)) == {"lr": 0.001, "flag": "on", "seeds": [10, 16],
                                           "n": {"a.b": 1}}
    assert reftool.param("/n/a.b", str(p)) == 1
    with pytest.raises(SpecError, match="no key '/n/c'"):
        reftool.param("/n/c", str(p))
    bad = project.write("bad.yaml", "a: 1\na: 2\n")
    with pytest.raises(SpecError, match="bad.yaml:2:1: duplicate key 'a'"):
        reftool.read_params(str(bad))
