"""Working in git: the lock merge driver with real `git merge`, `git install`, and `dag`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Project
from planning import codes, plan
from reftool.integrations.gitmerge import merge
from reftool.files.model import FileState, Lock, LockEntry, canonical_lock_text, lock_from_dict

ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
       "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
REFTOOL = f"{sys.executable} -m reftool"

PIPELINE = """\
version: "1.0"
stages:
  a:
    cmd: cat pa.txt > a.out
    deps: [pa.txt]
    outs: [a.out]
  b:
    cmd: cat pb.txt > b.out
    deps: [pb.txt]
    outs: [b.out]
  c:
    cmd: cat pc.txt > c.out
    deps: [pc.txt]
    outs: [c.out]
"""


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, env=ENV,
                          check=check)


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reftool", *args], cwd=root,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def repo(project: Project) -> Project:
    root = project.root
    project.base(PIPELINE, **{"pa.txt": "a1\n", "pb.txt": "b1\n", "pc.txt": "c1\n",
                              ".gitignore": "*.out\n"})
    git(root, "init", "-q", "-b", "main")
    r = run(root, "git", "install")
    assert r.returncode == 0, r.stderr
    # use this interpreter for the driver, whatever `reftool` on PATH is
    git(root, "config", "merge.reftool-lock.driver", f"{REFTOOL} merge-lock %O %A %B")
    assert run(root, "run", "-q").returncode == 0
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    return project


def _change_and_run(repo: Project, branch: str, files: dict[str, str]) -> None:
    git(repo.root, "checkout", "-q", "-b", branch, "main")
    for name, text in files.items():
        repo.write(name, text)
    assert run(repo.root, "run", "-q").returncode == 0
    git(repo.root, "commit", "-q", "-am", branch)


def test_git_install_is_idempotent(repo: Project) -> None:
    assert (repo.root / ".gitattributes").read_text().splitlines() == [
        "pipeline.lock merge=reftool-lock"]
    assert git(repo.root, "config", "merge.reftool-lock.name").stdout.strip()
    assert (repo.root / ".reftool/.gitignore").read_text().splitlines()[-1] == "*"
    r = run(repo.root, "git", "install")
    assert r.stdout.strip() == "already installed"


def test_branches_running_different_stages_merge_cleanly(repo: Project) -> None:
    _change_and_run(repo, "one", {"pa.txt": "a2\n"})
    one = json.loads((repo.root / "pipeline.lock").read_text())["stages"]
    _change_and_run(repo, "two", {"pb.txt": "b2\n"})
    two = json.loads((repo.root / "pipeline.lock").read_text())["stages"]
    git(repo.root, "checkout", "-q", "one")
    r = git(repo.root, "merge", "-q", "--no-edit", "two", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    text = (repo.root / "pipeline.lock").read_text()
    assert "<<<<<<<" not in text
    lock = lock_from_dict(json.loads(text))
    assert canonical_lock_text(lock) == text
    merged = json.loads(text)["stages"]
    assert merged["a"] == one["a"] and merged["b"] == two["b"]  # each side's new entry kept
    # outputs are not versioned: a.out on disk is from the last run (on branch two), so the
    # plan restores a from the cache, by its recorded entry, and runs nothing anew
    assert [(d.name, d.action) for d in plan(repo.root).to_run] == [("a", "restore")]


def test_same_stage_on_both_branches_is_reported_and_replanned(repo: Project) -> None:
    _change_and_run(repo, "one", {"pa.txt": "a-one\n", "pb.txt": "b2\n"})
    _change_and_run(repo, "two", {"pa.txt": "a-two\n"})
    git(repo.root, "checkout", "-q", "one")
    r = git(repo.root, "merge", "--no-edit", "two", check=False)
    # pa.txt itself conflicts as text (the user's file); the lock never does
    assert "stage 'a' was run on both branches with different results" in r.stdout + r.stderr
    text = (repo.root / "pipeline.lock").read_text()
    assert "<<<<<<<" not in text
    lock = lock_from_dict(json.loads(text))
    assert set(lock.stages) == {"b", "c"}
    repo.write("pa.txt", "a-merged\n")
    planned = codes(plan(repo.root))
    assert planned["a"] == ("never_run",)  # re-planned; b only because its output on disk
    assert "never_run" not in planned.get("b", ())  # is the other branch's (not versioned)


def _entry(digest: str) -> LockEntry:
    return LockEntry(cmd=("x",), wdir=".", deps={"d": FileState(digest=digest, size=1)},
                     params={}, env={}, outs={})


def test_merge_rules() -> None:
    # [lock.merge]
    d = ["sha256:" + c * 64 for c in "0123456789"]
    base = Lock(version="1.0", stages={"same": _entry(d[0]), "ours": _entry(d[0]),
                                       "theirs": _entry(d[0]), "both": _entry(d[0]),
                                       "gone-ours": _entry(d[0]), "gone-changed": _entry(d[0])})
    ours = Lock(version="1.0", stages={"same": _entry(d[0]), "ours": _entry(d[1]),
                                       "theirs": _entry(d[0]), "both": _entry(d[2]),
                                       "gone-changed": _entry(d[4]), "new-ours": _entry(d[5]),
                                       "new-both": _entry(d[6])})
    theirs = Lock(version="1.0", stages={"same": _entry(d[0]), "ours": _entry(d[0]),
                                         "theirs": _entry(d[3]), "both": _entry(d[9]),
                                         "gone-ours": _entry(d[0]), "new-both": _entry(d[7])})
    merged = merge(base, ours, theirs)
    assert {n: e.deps["d"].digest for n, e in merged.lock.stages.items()} == {
        "same": d[0], "ours": d[1], "theirs": d[3], "new-ours": d[5]}
    assert merged.dropped == ("both", "gone-changed", "new-both")


def test_merge_lock_refuses_a_broken_input_and_leaves_ours(tmp_path: Path) -> None:
    ours = tmp_path / "ours"
    good = canonical_lock_text(Lock(version="1.0", stages={}))
    ours.write_text(good)
    (tmp_path / "base").write_text(good)
    (tmp_path / "theirs").write_text("<<<<<<< not a lock")
    r = run(tmp_path, "merge-lock", "base", "ours", "theirs")
    assert r.returncode == 1 and "cannot merge the lock" in r.stderr
    assert ours.read_text() == good


def test_dag_formats(project: Project) -> None:
    project.base(PIPELINE.replace("deps: [pb.txt]", "deps: [pb.txt, a.out]"),
                 **{"pa.txt": "a", "pb.txt": "b", "pc.txt": "c"})
    assert run(project.root, "dag").stdout == "a -> b\nb\nc\n"
    mermaid = run(project.root, "dag", "--format", "mermaid", "--plan").stdout
    assert mermaid.startswith("```mermaid\nflowchart TD\n")
    assert '    s0["a (stale)"]' in mermaid and "    s0 --> s1" in mermaid
    assert "    class s0,s1,s2 stale" in mermaid  # never run, all three
    dot = run(project.root, "dag", "--format", "dot").stdout
    assert '"a" -> "b";' in dot and dot.startswith("digraph pipeline {")
