"""Every JSON output the tool prints follows its published schema (schemas/), on real projects:
the examples, copied, an experiment saved, then params and metrics edited by hand. No pipeline
runs: the classifier's metrics and lock are committed, and the other examples are compared
with what they hold. SPEC [tool.experiments], [tool.plan], [tool.validate], [version.write]."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from conftest import REPO, Project
from reftool.experiments.compare import Change, diff_json
from reftool.files.schemas import schema

EXAMPLES = sorted(p.name for p in (REPO / "examples").iterdir() if (p / "pipeline.yaml").is_file())
OUTPUTS = [("metrics-diff", ("metrics", "diff", "first", "--json", "--all")),
           ("params-diff", ("params", "diff", "first", "--json", "--all")),
           ("plan", ("plan", "--json")),
           ("validation-report", ("validate", "--format", "json"))]


def _errors(name: str, doc: Any) -> list[str]:
    validator = Draft202012Validator(schema(name))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Project]:
    """Each example with an experiment `first` saved, then edited by hand."""
    projects = {}
    for name in EXAMPLES:
        root = tmp_path_factory.mktemp(name)
        shutil.copytree(REPO / "examples" / name, root, dirs_exist_ok=True)
        project = Project(root)
        assert project.cli("exp", "save", "first", "--allow-stale").code == 0
        projects[name] = project
    classifier = projects["classifier"]
    params = classifier.root / "params.yaml"
    params.write_text(params.read_text().replace("seed: 42", "seed: 43"))
    metrics = classifier.root / "metrics" / "eval.json"
    doc = json.loads(metrics.read_text())
    doc["metrics"]["accuracy"] = "NaN"  # [metrics.nonfinite]
    doc["metrics"]["loss"] = doc["metrics"]["loss"] * 2
    metrics.write_text(json.dumps(doc))
    return projects


@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize("name, argv", OUTPUTS, ids=[o[0] for o in OUTPUTS])
def test_output_follows_its_schema(saved: dict[str, Project], example: str, name: str,
                                   argv: tuple[str, ...]) -> None:
    r = saved[example].cli(*argv)
    doc = json.loads(r.out)
    assert _errors(name, doc) == []


def test_the_edits_show_in_the_diffs(saved: dict[str, Project]) -> None:
    # the schema check above is not vacuous: the classifier's diffs hold the edited rows
    params = json.loads(saved["classifier"].cli("params", "diff", "first", "--json").out)
    assert [(r["name"], r["old"], r["new"], r["change"]) for r in params["params"]] == [
        ("params.yaml:/prepare/seed", 42, 43, 1)]
    metrics = json.loads(saved["classifier"].cli("metrics", "diff", "first", "--json").out)
    rows = {r["name"]: r for r in metrics["metrics"]}
    assert set(rows) == {"accuracy", "loss"}
    assert rows["accuracy"]["new"] == "NaN" and rows["accuracy"]["change"] == "NaN"
    assert rows["loss"]["verdict"] == "worse"  # declared direction: lower
    assert (metrics["version"], metrics["old"], metrics["new"]) == ("1.1", "first", "workspace")


def test_non_finite_params_at_any_depth_are_strings() -> None:
    # a params value holding a non-finite float in a list is written as in [metrics.nonfinite]
    change = Change("p.yaml:/a", [1.0, math.inf], {"b": [math.nan]}, None, None, "")
    doc = json.loads(diff_json([change], old_label="x", new_label="y", kind="params"))
    assert doc["params"][0]["old"] == [1.0, "Infinity"]
    assert doc["params"][0]["new"] == {"b": ["NaN"]}
    assert _errors("params-diff", doc) == []


@pytest.mark.parametrize("name, doc", [
    ("metrics-diff", {"tool": {"name": "t", "version": "1"}, "old": "a", "new": "b",
                      "metrics": []}),  # no version
    ("metrics-diff", {"version": "1.1", "tool": {"name": "t", "version": "1"}, "old": "a",
                      "new": "b", "metrics": [{"name": "m", "old": 1, "new": 2, "change": 1,
                                               "relative": 1, "verdict": "meh"}]}),
    ("metrics-diff", {"version": "1.1", "tool": {"name": "t", "version": "1"}, "old": "a",
                      "new": "b", "metrics": [{"name": "m", "old": "nan", "new": 2,
                                               "change": None, "relative": None,
                                               "verdict": ""}]}),
    ("params-diff", {"version": "1.1", "tool": {"name": "t", "version": "1"}, "old": "a",
                     "new": "b", "params": [{"name": "", "old": 1, "new": 2, "change": 1,
                                             "relative": 1}]}),
    ("params-diff", {"version": "1.1", "tool": {"name": "t", "version": "1"}, "old": "a",
                     "new": "b", "params": [{"name": "p", "old": 1, "new": 2, "change": 1,
                                             "relative": 1, "verdict": ""}]}),
])
def test_the_diff_schemas_refuse_what_the_tool_never_writes(name: str, doc: Any) -> None:
    assert _errors(name, doc) != []
