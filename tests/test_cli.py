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
    from reftool.cli import files
    monkeypatch.setattr(files, "cmd_validate", boom)
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


def test_the_command_table_names_what_each_group_registers() -> None:
    """reftool.cli.GROUPS (which group a command line needs) against the groups' parsers: a
    command missing from the table would be built with every group (slower, still right), a
    stale entry would make its command line unparseable."""
    import argparse
    import importlib

    from reftool import cli
    for group, commands in cli.GROUPS.items():
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"reftool.cli.{group}").add_parsers(sub)
        assert tuple(sub.choices) == commands, group


def test_a_command_line_builds_only_its_group_and_help_lists_every_command(
        capsys: pytest.CaptureFixture[str]) -> None:
    from reftool import cli
    assert cli._groups_for(["plan", "-q"]) == ("pipeline",)
    assert cli._groups_for(["-C", "sub", "exp", "show"]) == ("experiments",)
    assert cli._groups_for(["--help"]) == tuple(cli.GROUPS)
    assert cli._groups_for(["plna"]) == tuple(cli.GROUPS)  # a typo: every choice is offered
    assert cli.main(["--help"]) == 0
    shown = capsys.readouterr().out
    for commands in cli.GROUPS.values():
        for command in commands:
            assert command in shown
    assert cli.main(["plna"]) == 2
    assert "invalid choice: 'plna'" in capsys.readouterr().err
