"""The repository keeps its promises: imports run one way, README and CI agree, examples
validate, the pre-commit hook works."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from conftest import REPO, Project

# style.md: model -> loading/validation -> hashing -> planning -> executing -> reporting -> CLI.
# One layer a line, lowest first; a module may import only modules on earlier lines (a package's
# __init__ counts as the package's first module). README "Architecture" says the same.
LAYERS: list[tuple[str, ...]] = [
    ("reftool.__version__",),  # `from .. import __version__`, defined by the package
    ("reftool.files",), ("reftool.files.spec",), ("reftool.files.errors",),
    ("reftool.files.safe_io",),
    ("reftool.files.values",), ("reftool.files.ignore",), ("reftool.files.documents",), ("reftool.files.model",),
    ("reftool.files.load",), ("reftool.files.graph",), ("reftool.files.schemas",),
    ("reftool.files.schemacheck",),
    ("reftool.files.validate",), ("reftool.files.diagnostics",),
    ("reftool.pipeline",), ("reftool.pipeline.hashing",), ("reftool.pipeline.plan",),
    ("reftool.pipeline.render",), ("reftool.pipeline.workspace",),
    ("reftool.pipeline.lockfile", "reftool.pipeline.store", "reftool.pipeline.runlock",
     "reftool.pipeline.dask_executor"),
    ("reftool.pipeline.execute",),
    ("reftool.track",),
    ("reftool.experiments",), ("reftool.experiments.records", "reftool.experiments.plotdata"),
    ("reftool.experiments.queue",), ("reftool.experiments.isolated",),
    ("reftool.experiments.compare", "reftool.experiments.mermaid"),
    ("reftool.experiments.plot",),
    ("reftool.experiments.report", "reftool.experiments.html"),
    ("reftool.integrations",), ("reftool.integrations.dvctemplate",),
    ("reftool.integrations.gitmerge", "reftool.integrations.dag",
     "reftool.integrations.importdvc"),
    ("reftool.planmemo",),  # the remembered no-op plan: stdlib, and safe_io when it writes
    ("reftool.cli.common",), ("reftool.cli.exprun",),
    ("reftool.cli.files", "reftool.cli.experiments"),
    ("reftool.cli.pipeline", "reftool.cli.integrations"), ("reftool.cli",),
    ("reftool",),  # the public API (read_params, param): its imports are inside its functions
    ("reftool.__main__",),
]
PACKAGES = {"reftool", "reftool.files", "reftool.pipeline", "reftool.experiments",
            "reftool.integrations", "reftool.cli"}


def _rank(module: str) -> int:
    for i, layer in enumerate(LAYERS):
        if module in layer:
            return i
    raise AssertionError(f"{module} is in no layer of tests/test_layout.py LAYERS")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(source: str, module: str) -> set[str]:
    """Every reftool module `source` (the text of `module`) imports, by full name."""
    package = module if module in PACKAGES else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "reftool")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "reftool":
                target = node.module
            else:
                continue
            for alias in node.names:  # `from . import graph` names a module
                sub = f"{target}.{alias.name}"  # `from .. import __version__` too
                found.add(sub if any(sub in layer for layer in LAYERS) else target)
    return found


def upward_imports(source: str, module: str) -> list[str]:
    return [f"{module} imports {imported}, a layer above it" for imported in
            sorted(_imports(source, module))
            if imported != module and _rank(imported) >= _rank(module)
]


MODULES = sorted((REPO / "reftool").rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO / "reftool")))
def test_imports_point_one_way(path: Path) -> None:
    module = _module_name(path)
    assert upward_imports(path.read_text(encoding="utf-8"), module) == []


def test_every_module_has_a_layer() -> None:
    for path in MODULES:
        _rank(_module_name(path))


@pytest.mark.parametrize("module, source", [
    ("reftool.files.values", "from ..pipeline.plan import decide\n"),
    ("reftool.files.model", "def f():\n    from ..cli import main\n"),
    ("reftool.pipeline.plan", "from reftool.experiments.records import records\n"),
    ("reftool.pipeline.hashing", "from . import execute\n"),
    ("reftool.files.spec", "import reftool.files.errors\n"),
])
def test_the_layering_check_catches_an_upward_import(module: str, source: str) -> None:
    assert upward_imports(source, module) != []


@pytest.mark.parametrize("module, source", [
    ("reftool.pipeline.plan", "from ..files.values import jcs\nfrom . import hashing\n"),
    ("reftool.cli.pipeline", "from .. import __version__\nfrom .common import decide\n"),
])
def test_the_layering_check_passes_a_downward_import(module: str, source: str) -> None:
    assert upward_imports(source, module) == []


def test_no_function_is_longer_than_sixty_lines() -> None:
    long = []
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {length}")
    assert long == []


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
    from reftool.files.validate import validate_project
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
