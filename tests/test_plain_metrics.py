"""Plain metrics files ([metrics.plain], 1.1): a JSON or YAML object written by the user's own
code, read by every reader of metrics."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Project

PIPELINE = """\
version: "1.1"
stages:
  train:
    cmd: python train.py
    deps: [train.py]
    metrics:
      - {path: m.json, kind: plain}
      - {path: eval.yaml, kind: plain}
metrics:
  acc: {direction: higher}
"""
TRAIN = """\
import json
json.dump({"acc": ACC, "loss": float("nan"), "model": "resnet", "per": {"a": 1, "on": True},
           "classes": [0.1, 0.2]}, open("m.json", "w"))
open("eval.yaml", "w").write("f1: 1e-3\\nflag: on\\ninf: .inf\\n")
"""


def _project(project: Project, acc: str = "0.5") -> Project:
    project.write("pipeline.yaml", PIPELINE)
    project.write("train.py", TRAIN.replace("ACC", acc))
    return project


def test_a_run_records_the_numbers_of_plain_files(project: Project) -> None:
    r = _project(project).cli("run", "-q")
    assert r.code == 0, r.err
    (record,) = (project.root / "experiments").glob("*.json")
    metrics = json.loads(record.read_text())["metrics"]
    assert metrics == {"acc": 0.5, "loss": "NaN", "per": {"a": 1}, "f1": 0.001,
                       "inf": "Infinity"}


def test_validate_names_what_is_not_a_metric_and_passes(project: Project) -> None:
    _project(project).cli("run", "-q", "--no-record")
    r = project.cli("validate")
    assert r.code == 0, r.out
    assert r.out.splitlines()[:2] == [
        "note: m.json: not metrics (only numbers are), ignored: "
        "/model (str), /per/on (bool), /classes (list)",
        "note: eval.yaml: not metrics (only numbers are), ignored: "
        "/flag (str)"]
    assert project.cli("validate", "--strict").code == 0  # a note is no warning
    assert "note" not in project.cli("validate", "--format", "json").out


def test_exp_show_and_metrics_diff_read_plain_files(project: Project) -> None:
    _project(project).cli("run", "-q", "--name", "first")
    _project(project, acc="0.75").cli("run", "-q", "--name", "second")
    r = project.cli("exp", "show", "--csv")
    assert r.code == 0, r.err
    header, first, second, _ = r.out.splitlines()
    assert "acc" in header and "per/a" in header and "model" not in header
    r = project.cli("metrics", "diff", "first", "second", "--json")
    assert r.code == 0, r.err
    assert "0.75" in r.out and "better" in r.out


def test_report_and_plot_read_plain_files(project: Project, tmp_path: Path) -> None:
    _project(project).cli("run", "-q", "--name", "first")
    _project(project, acc="0.75").cli("run", "-q", "--name", "second")
    r = project.cli("report", "--base", "first", "--out", str(tmp_path / "r"))
    assert r.code == 0, r.err
    assert "acc" in (tmp_path / "r" / "report.md").read_text()


def test_kind_plain_needs_a_1_1_pipeline(project: Project) -> None:
    _project(project).write("pipeline.yaml", PIPELINE.replace('"1.1"', '"1.0"'))
    assert project.codes() == [("schema", "enum"), ("schema", "enum")]


def test_a_plain_file_that_is_not_a_mapping_or_not_json_or_yaml(project: Project) -> None:
    _project(project).cli("run", "-q", "--no-record")
    project.write("m.json", "[0.5]")
    assert project.codes() == [("schema", "type")]
    r = project.cli("exp", "show")
    assert "m.json" in r.err  # named and passed over, the other file still read
    project.write("pipeline.yaml", PIPELINE.replace("eval.yaml", "eval.csv"))
    assert ("schema", "pattern") in project.codes()


def test_bare_nan_stays_an_error_in_a_summary_file(project: Project) -> None:
    project.write("pipeline.yaml", PIPELINE.replace(", kind: plain}", "}").replace(
        '"1.1"', '"1.0"'))
    project.write("m.json", '{"version": "1.0", "metrics": {"loss": NaN}}')
    assert ("parse", "syntax") in project.codes()
