"""The repository keeps its promises: imports run one way, README and CI agree, examples
validate, the pre-commit hook works."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

import pytest
from ruamel.yaml import YAML

from conftest import REPO, Project

# style.md: model -> loading/validation -> hashing -> planning -> executing -> reporting -> CLI
LAYERS = [
    {"spec"}, {"errors"}, {"values"}, {"documents"}, {"model"}, {"load"}, {"graph"},
    {"schemas"}, {"validate"}, {"hashing"}, {"plan"}, {"workspace"},
    {"lockfile", "store", "runlock", "dask_executor"}, {"execute"}, {"track"}, {"experiments"}, {"compare"},
    {"plot"}, {"gitmerge", "dag", "importdvc"}, {"report"}, {"cli"},
    {"__main__"},
]


def _rank(module: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if module in layer)


def _local_imports(path: object) -> set[str]:
    tree = ast.parse(open(path, encoding="utf-8").read())  # type: ignore[arg-type]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(a.name for a in node.names)
    return found


@pytest.mark.parametrize("path", sorted((REPO / "reftool").glob("*.py")), ids=lambda p: p.name)
def test_imports_point_one_way(path: object) -> None:
    name = path.stem  # type: ignore[attr-defined]
    if name == "__init__":
        return
    for imported in _local_imports(path) - {"__init__"}:
        if imported == "__version__":
            continue
        assert _rank(imported) < _rank(name), f"{name} imports {imported} (upstream of it)"


def _readme_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quick = readme[readme.index("## Quickstart"):readme.index("\n## ", readme.index(
        "## Quickstart") + 1)]
    return re.findall(r"```sh\n(.*?)\n```", quick, re.S)


def test_readme_quickstart_is_two_commands_and_ci_runs_the_second() -> None:
    commands = _readme_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci.splitlines()


def test_quickstart_example_exists() -> None:
    first = _readme_commands()[0]
    assert "reftool -C examples/classifier run" in first
    assert (REPO / "examples" / "classifier" / "pipeline.yaml").is_file()


EXAMPLES = sorted(p.parent for p in (REPO / "examples").glob("*/pipeline.yaml"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates(example: object) -> None:
    from reftool.validate import validate_project
    report = validate_project(example, "pipeline.yaml")  # type: ignore[arg-type]
    assert [d.message for d in report.errors] == []


def _hook() -> dict[str, object]:
    hooks = YAML(typ="safe").load((REPO / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    return hook  # type: ignore[no-any-return]


def test_pre_commit_hook_runs_on_good_and_bad_projects(project: Project) -> None:
    hook = _hook()
    entry = str(hook["entry"]).split()
    assert entry[0] == "reftool"
    good = subprocess.run([sys.executable, "-m", "reftool", *entry[1:]],
                          cwd=REPO / "examples" / "classifier", capture_output=True, text=True,
                          timeout=60)
    assert good.returncode == 0, good.stdout
    project.base('version: "1.0"\nstages: {s: {cmd: x, dpes: []}}\n')
    bad = subprocess.run([sys.executable, "-m", "reftool", *entry[1:]], cwd=project.root,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "did you mean 'deps'?" in bad.stdout


@pytest.mark.parametrize("path, matches", [
    ("pipeline.yaml", True), ("sub/pipeline.lock", True), ("params.yaml", True),
    ("params-large.toml", True), ("metrics/train.jsonl", True), ("metrics/eval.json", True),
    ("src/train.py", False), ("README.md", False),
])
def test_pre_commit_hook_file_pattern(path: str, matches: bool) -> None:
    assert bool(re.search(str(_hook()["files"]), path)) is matches
