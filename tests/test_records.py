"""Records that cannot lie (issue 14): metrics keyed by file where names collide, stale rows
marked or refused, what a record says of its run, series stored once, exp show's columns and
JSON, and commands run from a subdirectory. Real runs of a small project."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from reftool.cli import main
from reftool.files.schemas import validator

REPO = Path(__file__).resolve().parent.parent

PIPELINE = """\
version: "1.0"
stages:
  train:
    cmd: python train.py
    deps: [train.py, data.csv]
    params:
      params.yaml: [/train/lr]
    outs: [model.bin]
    metrics: [metrics/train.jsonl, metrics/train.json]
  test:
    cmd: python test.py
    deps: [test.py, model.bin]
    metrics: [metrics/test.json]
metrics:
  loss: {direction: lower, summary: min}
  acc: {direction: higher}
"""

TRAIN = """\
from reftool import param, track
lr = param("/train/lr")
with track.Series("metrics/train.jsonl") as s:
    for step in range(4):
        s.log(loss=1.0 / (1 + lr * (step + 1)))
track.summary("metrics/train.json", acc=min(1.0, 0.5 + lr), per={"a": lr, "b": 1.0})
open("model.bin", "w").write(str(lr))
"""

TEST = """\
from reftool import track
lr = float(open("model.bin").read())
track.summary("metrics/test.json", acc=min(1.0, 0.4 + lr))
"""

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def cli(cwd: Path, *args: str) -> Result:
    """`reftool -C cwd ARGS` in this process (as started in `cwd`: [tool.root] searches from
    there), for speed; the working directory is restored after."""
    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["-C", str(cwd), *args])
    finally:
        os.chdir(here)
    return Result(code, out.getvalue(), err.getvalue())


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True, env=GIT_ENV).stdout


@pytest.fixture
def root(tmp_path: Path) -> Path:
    files = {"pipeline.yaml": PIPELINE, "train.py": TRAIN, "test.py": TEST,
             "data.csv": "a\n1\n", "params.yaml": "train:\n  lr: 0.1\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def records(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / "experiments").glob("*.json"))]


def show(root: Path, *args: str) -> dict:
    r = cli(root, "exp", "show", "--json", *args)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert list(validator("exp-show").iter_errors(doc)) == []  # [tool.experiments-json]
    return doc


def rows(doc: dict) -> dict[str, dict]:
    return {row["experiment"]: row for row in doc["experiments"]}


# ------------------------------------------------------------------ [experiments.metrics-collision]

def test_a_name_two_files_define_is_shown_for_each_file(root: Path) -> None:
    assert cli(root, "run", "--name", "first").returncode == 0
    (record,) = records(root)
    flat = rows(show(root))["first"]["metrics"]
    assert flat["metrics/train.json:acc"] == pytest.approx(0.6)
    assert flat["metrics/test.json:acc"] == pytest.approx(0.5)
    assert "acc" not in flat and flat["per/a"] == pytest.approx(0.1)
    assert record["metrics"]["metrics"]["test.json:acc"] == pytest.approx(0.5)
    r = cli(root, "exp", "show", "--sort", "test.json:acc")
    assert r.returncode == 0, r.stderr
    # the declared direction of `acc` holds for each file's acc
    (root / "params.yaml").write_text("train:\n  lr: 0.2\n")
    assert cli(root, "run", "--name", "second").returncode == 0
    r = cli(root, "metrics", "diff", "first", "second")
    assert "metrics/test.json:acc" in r.stdout and "better" in r.stdout


def test_the_sweep_example_records_best_json_rmse(tmp_path: Path) -> None:
    project = tmp_path / "sweep"
    shutil.copytree(REPO / "examples" / "sweep", project)
    r = cli(project, "run", "-j", "2", "--name", "sweep")
    assert r.returncode == 0, r.stderr
    best = json.loads((project / "best.json").read_text())["metrics"]["rmse"]
    metrics = rows(show(project, "--no-workspace"))["sweep"]["metrics"]
    assert metrics["best.json:rmse"] == best
    fits = [v for k, v in metrics.items() if k.startswith("results/") and k.endswith(":rmse")]
    assert len(fits) == 4 and min(fits) == best  # every fit's rmse is there, none dropped
    assert "rmse" not in metrics


# ------------------------------------------------------------------ [experiments.stale]

def test_a_stale_workspace_is_marked_everywhere_and_not_saved(root: Path) -> None:
    assert cli(root, "run", "--name", "ran").returncode == 0
    assert rows(show(root))["workspace"]["stale"] == []
    (root / "params.yaml").write_text("train:\n  lr: 0.5\n")  # metrics are still lr=0.1's
    doc = show(root)
    assert rows(doc)["workspace"]["stale"] == ["train", "test"]
    r = cli(root, "exp", "show")
    assert "workspace (stale)" in r.stdout and "out of date: train, test" in r.stderr
    r = cli(root, "metrics", "diff", "ran", "workspace")
    assert "workspace (stale)" in r.stdout and "stale" in r.stderr
    doc = json.loads(cli(root, "params", "diff", "ran", "workspace", "--json").stdout)
    assert doc["old_stale"] == [] and doc["new_stale"] == ["train", "test"]
    r = cli(root, "report", "--base", "ran", "--out", "rep")
    assert r.returncode == 0, r.stderr
    assert "**Stale:**" in (root / "rep" / "report.md").read_text()
    r = cli(root, "exp", "save", "manual")
    assert r.returncode == 1 and "not saved" in r.stderr and "train, test" in r.stderr
    assert len(records(root)) == 1  # nothing written
    r = cli(root, "exp", "save", "manual", "--allow-stale")
    assert r.returncode == 0, r.stderr
    saved = [x for x in records(root) if x["name"] == "manual"][0]
    assert saved["stale"] == ["test", "train"] and saved["duration"] is None
    assert "manual (stale)" in cli(root, "exp", "show").stdout
    assert cli(root, "run").returncode == 0
    assert rows(show(root))["workspace"]["stale"] == []
    assert cli(root, "exp", "save", "after").returncode == 0


def test_a_run_of_some_stages_records_the_others_stale(root: Path) -> None:
    assert cli(root, "run").returncode == 0
    (root / "test.py").write_text(TEST + "# changed\n")
    (root / "params.yaml").write_text("train:\n  lr: 0.3\n")
    r = cli(root, "run", "train", "--name", "partial")
    assert r.returncode == 0 and "marked stale" in r.stderr
    partial = [x for x in records(root) if x["name"] == "partial"][0]
    assert partial["stale"] == ["test"]


# ------------------------------------------------------------------ [experiments.run-facts]

def test_a_record_says_what_its_run_did(root: Path) -> None:
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    assert cli(root, "run", "--name", "facts").returncode == 0
    (record,) = records(root)
    assert list(validator("experiment").iter_errors(record)) == []
    assert record["version"] == "1.1"
    assert record["git_branch"] == "main"
    assert record["git_dirty"] is False  # files git does not track do not count, as in git
    assert record["git_commit"] == git(root, "rev-parse", "HEAD").strip()
    assert 0 < record["duration"] < 60
    assert record["commands"] == [{"stage": "train", "cmd": ["python train.py"]},
                                  {"stage": "test", "cmd": ["python test.py"]}]
    digest = "sha256:" + hashlib.sha256((root / "data.csv").read_bytes()).hexdigest()
    assert record["deps"]["data.csv"] == digest and "model.bin" not in record["deps"]
    row = rows(show(root, "--no-workspace"))["facts"]
    assert row["id"] == record["id"] and row["name"] == "facts"
    assert row["created"] == record["created"] and row["commit"] == record["git_commit"]
    assert row["branch"] == "main" and row["dirty"] is False and row["kind"] == "experiment"
    r = cli(root, "exp", "show", "--info", "--no-workspace")
    head = r.stdout.splitlines()[0].split()
    assert head[:7] == ["experiment", "id", "created", "commit", "branch", "dirty", "duration"]
    assert record["git_commit"][:10] in r.stdout
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "ran")
    (root / "params.yaml").write_text("train:\n  lr: 0.1  # same value\n")  # a tracked edit
    os.remove(root / "model.bin")
    assert cli(root, "run", "--name", "restored").returncode == 0
    restored = [x for x in records(root) if x["name"] == "restored"][0]
    assert restored["commands"] == [] and restored["git_dirty"] is True  # restored, not run


def test_a_record_without_git_has_null_git_facts(root: Path) -> None:
    assert cli(root, "run").returncode == 0
    (record,) = records(root)
    assert record["git_commit"] is None and record["git_branch"] is None
    assert record["git_dirty"] is None


# ------------------------------------------------------------------ [experiments.series-store]

def test_series_are_stored_once_and_referenced(root: Path) -> None:
    assert cli(root, "run", "--name", "a").returncode == 0
    assert cli(root, "exp", "save", "b").returncode == 0  # the same series: stored once
    a, b = records(root)
    entry = a["series"]["metrics/train.jsonl"]
    assert entry == b["series"]["metrics/train.jsonl"] and entry["stored"] is True
    assert "records" not in entry
    stored = list((root / "experiments" / "series").iterdir())
    assert [p.name for p in stored] == [entry["digest"][7:] + ".jsonl"]
    assert stored[0].read_bytes() == (root / "metrics" / "train.jsonl").read_bytes()
    assert len(json.dumps(a)) < 3000
    from reftool.experiments.records import record_snapshot
    snap = record_snapshot(a, {}, root)
    assert [s for s, _ in snap.series["metrics/train.jsonl"]["loss"]] == [0, 1, 2, 3]
    stored[0].write_text(stored[0].read_text() + "\n")  # no longer its digest
    r = cli(root, "plot", "a", "--out", "p")
    assert "is not in experiments/series/" in r.stderr


def test_old_records_with_copied_series_are_still_read(root: Path) -> None:
    (root / "experiments").mkdir()
    old = {"version": "1.0", "id": "20260101-000000-abcdef", "name": "old",
           "created": "2026-01-01T00:00:00Z", "git_commit": None, "params": {},
           "metrics": {"acc": 0.5}, "lock_digest": None,
           "series": {"metrics/train.jsonl": {"digest": "sha256:" + "a" * 64, "records": [
               {"step": 0, "metrics": {"loss": 2.0}}, {"step": 1, "metrics": {"loss": 1.0}}]}}}
    (root / "experiments" / "old.json").write_text(json.dumps(old))
    row = rows(show(root, "--no-workspace"))["old"]
    assert row["metrics"] == {"acc": 0.5, "loss": 1.0} and row["duration"] is None
    assert cli(root, "validate", "experiments/old.json").returncode == 0
    old["duration"] = 3.0  # a 1.1 key in a record that declares 1.0
    (root / "experiments" / "old.json").write_text(json.dumps(old))
    r = cli(root, "exp", "show", "--no-workspace")
    assert "additionalProperties" in r.stderr and "passed over" in r.stderr


# ------------------------------------------------------------------ exp show columns

def test_exp_show_columns_by_suffix_only_and_drop(root: Path) -> None:
    assert cli(root, "run", "--name", "one").returncode == 0
    (root / "params.yaml").write_text("train:\n  lr: 0.2\n")
    assert cli(root, "run", "--name", "two").returncode == 0
    r = cli(root, "exp", "show", "--sort", "lr", "--desc", "--no-workspace")
    assert r.returncode == 0, r.stderr
    assert [line.split()[0] for line in r.stdout.splitlines()[1:]] == ["two", "one"]
    r = cli(root, "exp", "show", "--filter", "lr<0.15", "--no-workspace")
    assert [line.split()[0] for line in r.stdout.splitlines()[1:]] == ["one"]
    r = cli(root, "exp", "show", "--only", "lr", "--only", "per/*", "--no-workspace")
    assert r.stdout.splitlines()[0].split() == ["experiment", "/train/lr", "per/a", "per/b"]
    r = cli(root, "exp", "show", "--drop", "per/*", "--drop", "loss", "--no-workspace")
    assert "per/a" not in r.stdout and "loss" not in r.stdout and "/train/lr" in r.stdout
    r = cli(root, "exp", "show", "--sort", "acc")
    assert r.returncode == 2 and "could be any of" in r.stderr and "test.json:acc" in r.stderr
    r = cli(root, "exp", "show", "--only", "nosuch")
    assert r.returncode == 2 and "no column matches 'nosuch'" in r.stderr
    r = cli(root, "exp", "show", "--sort", "los")
    assert r.returncode == 2 and "did you mean 'loss'" in r.stderr
    doc = show(root, "--only", "lr")
    assert doc["columns"] == [{"name": "/train/lr", "key": "params.yaml:/train/lr",
                               "kind": "param"}]


# ------------------------------------------------------------------ [tool.root]

def test_commands_find_the_project_root_from_a_subdirectory(root: Path) -> None:
    git(root, "init", "-q")
    sub = root / "src" / "deep"
    sub.mkdir(parents=True)
    r = cli(sub, "plan")
    assert r.returncode == 0 and "train: run" in r.stdout, r.stderr
    assert cli(sub, "run", "-q").returncode == 0
    assert (root / "pipeline.lock").is_file() and not (sub / "pipeline.lock").exists()
    r = cli(sub, "exp", "show", "--no-workspace")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2
    r = cli(sub, "plot", "--out", "pics")  # a path given keeps its meaning where it was typed
    assert r.returncode == 0, r.stderr
    assert (sub / "pics" / "curves.png").is_file() and not (root / "pics").exists()
    (sub / "p.yaml").write_text("a: [1\n")
    r = cli(sub, "validate", "p.yaml")
    assert r.returncode == 1 and "src/deep/p.yaml" in r.stdout + r.stderr


def test_the_search_stops_at_the_top_of_the_git_repository(tmp_path: Path, root: Path) -> None:
    inner = root / "vendored"
    inner.mkdir()
    git(inner, "init", "-q")  # another repository inside: its files are not this project's
    r = cli(inner, "plan")
    assert r.returncode != 0 and "pipeline.yaml" in r.stderr
    from reftool.cli import find_root
    assert find_root(root / "a" / "b", "pipeline.yaml") == root
    assert find_root(inner, "pipeline.yaml") is None
