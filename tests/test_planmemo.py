"""The remembered answer of a no-op plan (reftool/planmemo.py, issue 18): it is replayed only
while everything the plan observed is as it was, and every change a plan can see makes the
next plan decide for real. Each case compares the answer with the one of a plan that
remembers nothing (REFTOOL_NO_PLAN_MEMO=1)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reftool import planmemo

PIPELINE = """\
version: "1.1"
stages:
  prep:
    cmd: cat in.txt > prep.txt
    deps: [in.txt]
    params:
      params.yaml: [/lr]
    outs: [prep.txt]
  tree:
    cmd: ls -R data > tree.txt
    deps:
      - data/
    env: [SEED]
    outs: [tree.txt]
  last:
    cmd: cat prep.txt tree.txt > last.txt
    deps: [prep.txt, tree.txt]
    outs: [last.txt]
"""
FILES = {"in.txt": "one\n", "params.yaml": "lr: 0.1\n", "data/a.txt": "a\n",
         "data/sub/b.txt": "b\n", "other.txt": "two\n"}
ENV = {**os.environ, "SEED": "1"}
ENV.pop("REFTOOL_NO_PLAN_MEMO", None)


def reftool(root: Path, *args: str, env: dict[str, str] | None = None,
            python: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *python, "-m", "reftool", *args], cwd=root,
                          env=env or ENV, capture_output=True, text=True, timeout=120)


def fresh_answer(root: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    r = reftool(root, "plan", env={**(env or ENV), "REFTOOL_NO_PLAN_MEMO": "1"})
    return r.returncode, r.stdout, r.stderr


def answered_from_memo(root: Path, env: dict[str, str] | None = None) -> bool:
    """Whether `plan` answered without importing the tool's validator."""
    r = reftool(root, "plan", env=env, python=("-X", "importtime"))
    return "reftool.files.validate" not in r.stderr


def up_to_date_and_remembered(root: Path) -> None:
    r = reftool(root, "run", "-q", "--no-record")
    assert r.returncode == 0, r.stdout + r.stderr
    time.sleep(2.1)  # past the racy window: files just written are not trusted
    first = reftool(root, "plan")
    assert first.stdout.startswith("Nothing to run"), first.stdout + first.stderr
    assert (root / planmemo.MEMO).is_file()
    assert answered_from_memo(root)
    again = reftool(root, "plan")
    assert (again.returncode, again.stdout, again.stderr) == (0, first.stdout, "")


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    for rel, text in {**FILES, "pipeline.yaml": PIPELINE}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    up_to_date_and_remembered(tmp_path)
    return tmp_path


def _same_size_edit(root: Path) -> None:
    (root / "in.txt").write_text("owt\n")  # same size: only mtime and ctime tell


def _param(root: Path) -> None:
    (root / "params.yaml").write_text("lr: 0.2\n")


def _command(root: Path) -> None:
    text = (root / "pipeline.yaml").read_text()
    (root / "pipeline.yaml").write_text(text.replace("cat prep.txt tree.txt", "cat tree.txt prep.txt"))


def _deep_file(root: Path) -> None:
    (root / "data/sub/b.txt").write_text("B\n")


def _new_file(root: Path) -> None:
    (root / "data/sub/c.txt").write_text("c\n")


def _output_gone(root: Path) -> None:
    (root / "last.txt").unlink()


def _output_edited(root: Path) -> None:
    (root / "prep.txt").write_text("changed by hand\n")


def _ignore_file(root: Path) -> None:
    (root / ".reftoolignore").write_text("sub/\n")


def _link_swap(root: Path) -> None:
    (root / "in.txt").unlink()
    os.symlink("other.txt", root / "in.txt")


def _lock_edited(root: Path) -> None:
    lock = json.loads((root / "pipeline.lock").read_text())
    del lock["stages"]["last"]
    (root / "pipeline.lock").write_text(json.dumps(lock, indent=2) + "\n")


def _journal(root: Path) -> None:
    """An unfinished run's journal, dropping `last`'s entry: plan applies it."""
    import hashlib
    base = hashlib.sha256((root / "pipeline.lock").read_bytes()).hexdigest()
    (root / ".reftool" / "lock-journal.jsonl").write_text(
        json.dumps({"format": "reftool-lock-journal", "version": 1, "lock": "pipeline.lock",
                    "base": base}) + "\n" + json.dumps({"stage": "last", "entry": None}) + "\n")


CHANGES: dict[str, Callable[[Path], None]] = {
    "same-size edit of a dep": _same_size_edit, "a params value": _param,
    "a command": _command, "a file deep in a directory dep": _deep_file,
    "a new file in a directory dep": _new_file, "an output removed": _output_gone,
    "an output edited": _output_edited, "an ignore file created": _ignore_file,
    "a dep swapped for a link": _link_swap, "the lock edited": _lock_edited,
    "a journal left by a run": _journal,
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_every_change_a_plan_sees_is_seen_through_the_memo(proj: Path, change: str) -> None:
    CHANGES[change](proj)
    r = reftool(proj, "plan")
    assert (r.returncode, r.stdout, r.stderr) == fresh_answer(proj)
    assert not r.stdout.startswith("Nothing to run"), (change, r.stdout)
    assert not answered_from_memo(proj)


def test_an_environment_variable_a_stage_records_is_seen(proj: Path) -> None:
    env = {**ENV, "SEED": "2"}
    r = reftool(proj, "plan", env=env)
    assert (r.returncode, r.stdout, r.stderr) == fresh_answer(proj, env)
    assert "env_changed" in r.stdout and "SEED" in r.stdout


def test_nothing_is_remembered_within_the_racy_window(tmp_path: Path) -> None:
    for rel, text in {**FILES, "pipeline.yaml": PIPELINE}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert reftool(tmp_path, "run", "-q", "--no-record").returncode == 0
    r = reftool(tmp_path, "plan")  # at once: the outputs were written within two seconds
    assert r.stdout.startswith("Nothing to run")
    assert not (tmp_path / planmemo.MEMO).exists()


def test_a_memo_copied_from_another_checkout_is_never_used(proj: Path, tmp_path: Path) -> None:
    """A pull request can add .reftool/plan-memo.json: it names inodes and change times
    of files it never saw, so it matches nothing here."""
    twin = tmp_path / "twin"
    shutil.copytree(proj, twin, symlinks=True)
    (twin / "in.txt").write_text("not what the memo saw\n")
    forged = json.loads((proj / planmemo.MEMO).read_text())
    for entry in forged["entries"]:
        entry["key"]["start"] = entry["key"]["root"] = str(twin)
    (twin / planmemo.MEMO).write_text(json.dumps(forged))
    r = reftool(twin, "plan")
    assert "dep_modified" in r.stdout and "in.txt" in r.stdout
    entry = forged["entries"][0]
    entry["observed"] = {}  # observing nothing proves nothing
    (twin / planmemo.MEMO).write_text(json.dumps(forged))
    assert not answered_from_memo(twin)


def test_other_command_lines_are_answered_apart(proj: Path) -> None:
    json_plan = reftool(proj, "plan", "--json")
    assert json.loads(json_plan.stdout)["summary"]["to_run"] == 0
    again = reftool(proj, "plan", "--json")
    assert again.stdout == json_plan.stdout
    assert reftool(proj, "plan").stdout.startswith("Nothing to run")
    memo = json.loads((proj / planmemo.MEMO).read_text())
    assert [e["key"]["argv"] for e in memo["entries"]] == [["plan", "--json"], ["plan"]]


def test_options_that_ask_for_work_are_never_answered_from_memory() -> None:
    assert planmemo.eligible(["plan", "-q"]) and planmemo.eligible(["plan", "--json", "s1"])
    for argv in (["plan", "--force"], ["plan", "--no-hash-cache"], ["plan", "--committed-only"],
                 ["plan", "-f", "other.yaml"], ["plan", "--file=o.yaml"], ["run"],
                 ["-C", "x", "plan"], ["plan", "--help"]):
        assert not planmemo.eligible(argv), argv


def test_a_change_to_the_tool_is_a_change(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    before = planmemo._tool_stamp()
    module = Path(planmemo.__file__)
    st = module.stat()
    try:
        os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
        assert planmemo._tool_stamp() != before
    finally:
        os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert planmemo._tool_stamp() == before


def test_a_stat_relative_to_a_folder_descriptor_is_observed_by_name(tmp_path: Path) -> None:
    """Hashing stats the files of a listed folder relative to its descriptor: the recorder
    names them as the project does, and a stat it cannot name spoils the recording."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a\n")
    recorder = planmemo.Recorder(str(tmp_path))
    fd = os.open(tmp_path / "data", os.O_RDONLY)
    try:
        with recorder:
            os.stat("a.txt", dir_fd=fd, follow_symlinks=False)
    finally:
        os.close(fd)
    assert "l\0data/a.txt" in recorder.observed and not recorder.spoiled
    assert recorder._named("a.txt", 10_000) is None  # no such descriptor: cannot be named


def test_a_plan_that_listed_more_than_the_walk_limit_is_not_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checking such an answer would walk the folders in one process, slower than the plan's
    own walk in two: it is not kept (a directory dep of 100,000 files)."""
    (tmp_path / "data").mkdir()
    for i in range(5):
        (tmp_path / "data" / f"{i}.txt").write_text("x\n")
    for limit, spoiled in ((100, False), (3, True)):
        monkeypatch.setattr(planmemo, "WALK_LIMIT", limit)
        recorder = planmemo.Recorder(str(tmp_path))
        with recorder:
            with os.scandir(tmp_path / "data") as it:
                list(it)
        recorder._walk_listed()
        assert recorder.spoiled is spoiled
        assert ("t\0data" in recorder.observed) is not spoiled



def test_a_folder_past_the_walk_limit_is_not_read_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flat folder of 100,000 files was listed, sorted and stat-ed whole before the limit
    was checked (1.1 s and 100 MiB on every plan): past the limit, the walk stops reading,
    and nothing of the folder is stat-ed."""
    for i in range(200):
        (tmp_path / f"{i}.txt").write_text("x\n")
    _, _, count = planmemo._walk(str(tmp_path), limit=1000)
    assert count == 200
    listed: list[int] = []
    scandir = os.scandir

    def counting(path: str) -> object:
        it = scandir(path)

        class Counted:
            def __enter__(self) -> object:
                it.__enter__()
                return self

            def __exit__(self, *exc: object) -> None:
                it.__exit__(*exc)

            def __iter__(self) -> object:
                for entry in it:
                    listed.append(1)
                    yield entry
        return Counted()
    monkeypatch.setattr(planmemo.os, "scandir", counting)
    _, _, count = planmemo._walk(str(tmp_path), limit=50)
    assert count == 51 and len(listed) == 51

def test_a_tree_past_the_walk_limit_is_listed_but_never_stat_ed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tree of many folders past the limit: its folders are listed until the limit is
    passed and nothing in it is stat-ed (100 folders of 1,000 files had 21,000 stat-ed on
    every plan, for an answer then not kept); under the limit, every entry is stat-ed once and
    the digest is the same from one walk to the next until a file's stat changes."""
    for d in "abc":
        (tmp_path / d).mkdir()
        for i in range(30):
            (tmp_path / d / f"{i}.txt").write_text("x\n")
    whole, _, count = planmemo._walk(str(tmp_path), limit=1000)
    assert count == 93 and whole != planmemo.PAST_LIMIT
    assert planmemo._walk(str(tmp_path), limit=1000)[0] == whole
    stats: list[str] = []
    scandir = os.scandir

    class Entry:
        def __init__(self, entry: os.DirEntry[str]) -> None:
            self.entry, self.name, self.path = entry, entry.name, entry.path

        def is_dir(self, follow_symlinks: bool = True) -> bool:
            return self.entry.is_dir(follow_symlinks=follow_symlinks)

        def stat(self, follow_symlinks: bool = True) -> os.stat_result:
            stats.append(self.path)
            return self.entry.stat(follow_symlinks=follow_symlinks)

    class Listing:
        def __init__(self, path: str) -> None:
            self.it = scandir(path)

        def __enter__(self) -> Listing:
            return self

        def __exit__(self, *exc: object) -> None:
            self.it.close()

        def __iter__(self) -> object:
            return (Entry(e) for e in self.it)
    monkeypatch.setattr(planmemo.os, "scandir", Listing)
    digest, _, count = planmemo._walk(str(tmp_path), limit=50)
    assert (digest, count, stats) == (planmemo.PAST_LIMIT, 51, [])
    assert planmemo._walk(str(tmp_path), limit=1000)[0] == whole and len(stats) == 93
    os.utime(tmp_path / "b" / "7.txt", ns=(1, 1))
    assert planmemo._walk(str(tmp_path), limit=1000)[0] != whole


def test_the_memo_lives_in_a_folder_git_ignores(tmp_path: Path) -> None:
    """[stale.cache]: .reftool/ ignores itself, even when the memo is the first file in it."""
    for name in ("pipeline.yaml", "pipeline.lock"):
        (tmp_path / name).write_text("x\n")
    recorder = planmemo.Recorder(str(tmp_path))
    recorder.started += 10 * planmemo.RACY_NS  # as if recorded long after the files were
    with recorder:
        os.lstat(tmp_path / "pipeline.yaml")
        os.lstat(tmp_path / "pipeline.lock")
    assert recorder.remember(["plan"], str(tmp_path), "Nothing to run\n", 0)
    assert (tmp_path / planmemo.MEMO).is_file()
    assert (tmp_path / ".reftool" / ".gitignore").read_text().splitlines()[-1] == "*"


def test_a_memo_planted_as_a_link_or_fifo_is_neither_followed_nor_waited_on(
        tmp_path: Path) -> None:
    """[security.special-files], [security.symlinks]: a pull request can commit
    .reftool/plan-memo.json as a link (to /dev/stdin, say); the plan reads nothing through it."""
    (tmp_path / "pipeline.yaml").write_text("x\n")
    (tmp_path / ".reftool").mkdir()
    real = tmp_path / "elsewhere.json"
    real.write_text(json.dumps({"format": planmemo.FORMAT, "version": planmemo.VERSION,
                                "entries": [{"key": {}}]}))
    memo = tmp_path / planmemo.MEMO
    memo.symlink_to(real)
    assert planmemo._read(str(tmp_path)) == []
    memo.unlink()
    os.mkfifo(memo)
    assert planmemo._read(str(tmp_path)) == []  # returns at once: no writer is waited for
    memo.unlink()
    shutil.copy(real, memo)
    assert planmemo._read(str(tmp_path)) == [{"key": {}}]  # the check can pass


def _relative_as_it_was(root: str, path: object) -> str | None:
    """Recorder._relative before its fast path: os.path.normpath on every path."""
    text = os.fsdecode(path)  # type: ignore[arg-type]
    full = os.path.normpath(text if os.path.isabs(text) else os.path.join(root, text))
    if full == root:
        return "."
    if not full.startswith(root + os.sep):
        return None
    rel = full[len(root) + 1:]
    if rel == planmemo.JOURNAL or not (rel == ".reftool" or rel.startswith(".reftool" + os.sep)):
        return rel
    return None


_SEGMENTS = st.sampled_from(["a", "b.txt", ".", "..", "", ".reftool", "lock-journal.jsonl",
                             ".hidden", "..x", "p", "tmp"])


@settings(max_examples=600, deadline=None)
@given(root=st.sampled_from(["/", "/tmp/p", "/tmp/p/.x", "/a/b"]),
       segments=st.lists(_SEGMENTS, max_size=6), absolute=st.booleans(),
       kind=st.sampled_from(["str", "bytes", "path"]))
def test_the_recorders_path_names_are_those_of_normpath(root: str, segments: list[str],
                                                        absolute: bool, kind: str) -> None:
    """The recorder skips os.path.normpath where it would change nothing (a third of the
    stat hook's cost): every path, relative or absolute, with `.`, `..`, empty segments and
    a trailing `/`, as str, bytes or a Path, still gets the name it got before."""
    text = ("/" if absolute else "") + "/".join(segments)
    if kind == "path" and not text:
        text = "."
    path: object = {"str": text, "bytes": os.fsencode(text), "path": Path(text)}[kind]
    recorder = planmemo.Recorder(root)
    assert recorder._relative(path) == _relative_as_it_was(root, path)
