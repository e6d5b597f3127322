"""A clone without its data ([pipeline.deps-exist], 1.1): the project's files validate, the
graph is drawn, `plan` names what is missing, `run` runs what it can, and the commands of
`examples/ci/github-actions.yml` pass on a git clone whose data is not there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Project

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
       "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

RAW = """\
version: "1.1"
stages:
  prepare:
    cmd: python prepare.py
    deps: [data/raw.csv, prepare.py]
    outs: [clean.csv]
  train:
    cmd: python train.py
    deps: [clean.csv, train.py]
    outs: [model.txt]
    metrics: [{path: metrics.json, kind: plain, cache: false}]
  lint:
    cmd: python lint.py
    deps: [lint.py]
    outs: [lint.txt]
"""
SCRIPTS = {
    "prepare.py": "import shutil\nshutil.copy('data/raw.csv', 'clean.csv')\n",
    "train.py": "import json\nopen('model.txt', 'w').write(open('clean.csv').read().upper())\n"
                "json.dump({'acc': 0.5, 'loss': float('nan'), 'model': 'upper'}, "
                "open('metrics.json', 'w'))\n",
    "lint.py": "open('lint.txt', 'w').write('ok')\n",
}


def git(root: Path, *args: str) -> str:
    r = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, env=ENV,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def reftool(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reftool", *argv], cwd=root,
                          capture_output=True, text=True, timeout=120)


def _origin_with_gitignored_data(tmp_path: Path) -> Path:
    """A project run once with its raw data, which git does not hold (as DVC projects keep it
    in a remote); the lock and the metrics are committed."""
    origin = Project(tmp_path / "origin")
    origin.write("pipeline.yaml", RAW)
    for name, text in SCRIPTS.items():
        origin.write(name, text)
    origin.write("data/raw.csv", "a,b\n1,2\n")
    origin.write(".gitignore", "/data/\n/clean.csv\n/model.txt\n/lint.txt\n")
    r = reftool(origin.root, "run", "-q", "--no-record")
    assert r.returncode == 0, r.stdout + r.stderr
    git(origin.root, "init", "-q", "-b", "main")
    git(origin.root, "add", "-A")
    git(origin.root, "commit", "-q", "-m", "project")
    return origin.root


def test_a_clone_without_its_data_validates_draws_and_plans(tmp_path: Path) -> None:
    origin = _origin_with_gitignored_data(tmp_path)
    locked = json.loads((origin / "pipeline.lock").read_text())["stages"]["prepare"]["deps"]
    git(tmp_path, "clone", "-q", str(origin), "clone")
    clone = tmp_path / "clone"
    assert not (clone / "data").exists() and (clone / "metrics.json").exists()

    r = reftool(clone, "validate")
    assert (r.returncode, r.stdout) == (0, "note: metrics.json: not metrics (only numbers are), "
                                        "ignored: /model (str)\n"
                                        "valid: 0 errors, 0 warnings in 3 files\n"), r.stdout
    r = reftool(clone, "dag")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "lint\nprepare -> train\ntrain\n"
    r = reftool(clone, "dag", "--plan")
    assert r.stdout == ("lint  [stale]\nprepare  [blocked] -> train\ntrain  [blocked]\n"), r.stderr

    r = reftool(clone, "plan", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    stages = {s["name"]: s for s in plan["stages"]}
    assert plan["version"] == "1.1" and sorted(stages) == ["lint", "prepare", "train"]
    assert stages["prepare"]["action"] == "blocked" and stages["prepare"]["reasons"] == [
        {"code": "dep_missing", "path": "data/raw.csv",
         "old": locked["data/raw.csv"]["digest"]},
        {"code": "output_missing", "path": "clean.csv"}]
    assert stages["train"]["action"] == "blocked"  # it waits on prepare
    assert stages["lint"]["action"] == "run"  # lint.txt is not committed: it runs
    r = reftool(clone, "plan")
    assert "dep_missing    data/raw.csv" in r.stdout and "prepare: blocked" in r.stdout

    # what CI runs: the committed lock judged where outputs and data are not checked out
    r = reftool(clone, "plan", "--exit-code", "--committed-only")
    assert (r.returncode, r.stdout) == (0, "Nothing to run: 3 stages up to date.\n"), r.stdout


def test_run_on_a_clone_runs_what_it_can_and_names_the_missing_data(tmp_path: Path) -> None:
    origin = _origin_with_gitignored_data(tmp_path)
    git(tmp_path, "clone", "-q", str(origin), "clone")
    clone = tmp_path / "clone"
    before = (clone / "pipeline.lock").read_bytes()
    r = reftool(clone, "run")
    assert r.returncode == 1
    assert "error[semantic/dep_missing]" in r.stderr and "data/raw.csv" in r.stderr
    assert "prepare: not run: its dep 'data/raw.csv' is missing" in r.stdout
    assert "not run for a missing dep 2" in r.stdout and "ran 1" in r.stdout
    assert (clone / "lint.txt").read_text() == "ok" and not (clone / "model.txt").exists()
    assert not (clone / "experiments").exists()  # a run that ran only part records nothing
    locked = json.loads((clone / "pipeline.lock").read_text())["stages"]
    assert locked["prepare"] == json.loads(before)["stages"]["prepare"]  # kept as it was
    # once the data is back, the plan is what it was on the machine that ran it
    (clone / "data").mkdir()
    (clone / "data" / "raw.csv").write_text("a,b\n1,2\n")
    r = reftool(clone, "run", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (clone / "model.txt").read_text() == "A,B\n1,2\n"


def test_the_ci_workflow_commands_pass_on_a_clone_of_the_classifier(tmp_path: Path) -> None:
    """examples/ci/github-actions.yml: validate --format github, plan --exit-code
    --committed-only and report --base, on a git clone that has no data/ (nor model/)."""
    origin = tmp_path / "origin"
    shutil.copytree(REPO / "examples" / "classifier", origin,
                    ignore=shutil.ignore_patterns("data", "model", ".reftool", "__pycache__"))
    (origin / ".gitignore").write_text("/data/\n/model/\n")
    git(origin, "init", "-q", "-b", "main")
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "base")
    git(origin, "checkout", "-q", "-b", "pr")
    params = (origin / "params.yaml").read_text()
    (origin / "params.yaml").write_text(params + "# a comment: no value changes\n")
    git(origin, "commit", "-q", "-am", "pr")
    git(tmp_path, "clone", "-q", "-b", "pr", str(origin), "clone")
    clone = tmp_path / "clone"
    assert not (clone / "data").exists()

    r = reftool(clone, "validate", "--format", "github")
    assert r.returncode == 0, r.stdout
    r = reftool(clone, "plan", "--exit-code", "--committed-only")
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "report"
    r = reftool(clone, "report", "--base", "origin/main", "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "report.md").is_file()
    # without --committed-only the plan says what a full run would do, and exits 3
    r = reftool(clone, "plan", "--exit-code")
    assert r.returncode == 3 and "output_missing" in r.stdout, r.stdout + r.stderr
