"""`reftool run` with real processes: SPEC section 11 and [tool.run]."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Project
from planning import plan
from reftool.pipeline.lockfile import JOURNAL, replay
from reftool.files.model import canonical_lock_text, lock_from_dict

PIPELINE = """\
version: "1.0"
stages:
  a:
    cmd: echo "a from $REFTOOL_STAGE" && cat in.txt > a.txt
    deps: [in.txt]
    params:
      params.yaml: [/a]
    outs: [a.txt]
  b:
    cmd: cat a.txt a.txt > b.txt
    deps: [a.txt]
    outs: [b.txt]
  c:
    cmd: echo c > c.txt
    deps: [in2.txt]
    outs: [c.txt]
"""
FILES = {"in.txt": "one\n", "in2.txt": "two\n", "params.yaml": "a: 1\nb: 2\n"}


def run(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reftool", "run", *args], cwd=root,
                          capture_output=True, text=True, timeout=timeout)


def lock_of(root: Path) -> dict:
    text = (root / "pipeline.lock").read_text()
    lock = json.loads(text)
    assert canonical_lock_text(lock_from_dict(lock)) == text  # [lock.canonical]
    return lock


@pytest.fixture
def proj(project: Project) -> Project:
    project.base(PIPELINE, **FILES)
    return project


def test_run_from_scratch_records_every_stage(proj: Project) -> None:
    r = run(proj.root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[a] a from a\n" in r.stdout  # streamed with a prefix; REFTOOL_STAGE set
    assert r.stdout.splitlines()[-1].startswith(
        "ran 3, restored from cache 0, skipped by early cutoff 0, failed 0, up to date 0")
    assert set(lock_of(proj.root)["stages"]) == {"a", "b", "c"}
    assert (proj.root / "b.txt").read_text() == "one\none\n"
    assert plan(proj.root).to_run == ()
    assert not (proj.root / JOURNAL).exists()
    r = run(proj.root)
    assert r.stdout == "Nothing to run: 3 stages up to date.\n"


def test_quiet_writes_logs(proj: Project) -> None:
    r = run(proj.root, "-q")
    assert "[a]" not in r.stdout
    assert (proj.root / ".reftool/logs/a.log").read_text() == "a from a\n"


def test_quiet_logs_hold_the_last_run_and_are_made_only_for_output(proj: Project) -> None:
    """[tool.run] with -q: a stage's log holds its last run's output; a stage that printed
    nothing has no log made for it (making a file per stage was most of a quiet trivial
    stage's cost), and a log an earlier run left is emptied, never left stale."""
    r = run(proj.root, "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    logs = proj.root / ".reftool/logs"
    assert (logs / "a.log").read_text() == "a from a\n"
    assert not (logs / "b.log").exists() and not (logs / "c.log").exists()
    (logs / "c.log").write_text("stale\n")
    (proj.root / "in2.txt").write_text("changed\n")
    (proj.root / "params.yaml").write_text("a: 5\nb: 2\n")
    r = run(proj.root, "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (logs / "c.log").read_text() == ""
    assert (logs / "a.log").read_text() == "a from a\n"
    assert not (logs / "b.log").exists()


def test_a_log_link_planted_by_the_command_is_not_written_through(project: Project) -> None:
    """[security.symlinks]: a command that puts a link where its log will be made, then
    prints, fails its stage; nothing is written through the link."""
    outside = project.root.parent / f"{project.root.name}-outside.txt"
    project.base('version: "1.0"\nstages:\n  s:\n    cmd: mkdir -p .reftool/logs && '
                 f"ln -s {outside} .reftool/logs/s.log && echo hello && touch s.txt\n"
                 "    outs: [s.txt]\n")
    r = run(project.root, "-q")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "s: FAILED: cannot write its log" in r.stdout and "symbolic link" not in r.stderr
    assert "    hello" in r.stdout  # its output is still shown, from the tail
    assert "full output in" not in r.stdout  # no log to point at
    assert not outside.exists()
    assert "s" not in lock_of(project.root)["stages"]


@pytest.mark.parametrize("when", ["before the run", "by the command"])
def test_a_fifo_where_the_log_goes_fails_the_stage_without_hanging(project: Project,
                                                                   when: str) -> None:
    """[security.special-files]: a FIFO at .reftool/logs/STAGE.log, left there or made by
    the command before it prints, fails the stage at once (opening it for writing with no
    reader used to wait forever)."""
    make = "mkdir -p .reftool/logs && mkfifo .reftool/logs/s.log && " if when != "before the run" \
        else ""
    project.base('version: "1.0"\nstages:\n  s:\n'
                 f"    cmd: {make}echo hello && touch s.txt\n    outs: [s.txt]\n")
    if when == "before the run":
        (project.root / ".reftool" / "logs").mkdir(parents=True)
        os.mkfifo(project.root / ".reftool" / "logs" / "s.log")
    r = run(project.root, "-q", timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "s: FAILED: cannot write its log: .reftool/logs/s.log: is a FIFO" in r.stdout


def test_outputs_removed_before_run_unless_persist(proj: Project) -> None:
    # [exec.outputs-before]
    proj.write("pipeline.yaml", PIPELINE + "  d:\n    cmd: test ! -e d.txt && echo d > d.txt\n"
               "    outs: [d.txt]\n  e:\n    cmd: echo more >> e.txt\n"
               "    outs: [{path: e.txt, persist: true}]\n")
    proj.write("d.txt", "stale\n")
    proj.write("e.txt", "kept\n")
    assert run(proj.root).returncode == 0
    assert (proj.root / "d.txt").read_text() == "d\n"
    assert (proj.root / "e.txt").read_text() == "kept\nmore\n"


def test_declared_output_not_created_fails(proj: Project) -> None:
    proj.write("pipeline.yaml", PIPELINE.replace("echo c > c.txt", "echo c > other.txt"))
    r = run(proj.root)
    assert r.returncode == 1
    assert "c: FAILED: declared output not created: c.txt" in r.stdout
    assert set(lock_of(proj.root)["stages"]) == {"a", "b"}


def test_stage_that_deletes_its_output_fails(proj: Project) -> None:
    proj.write("pipeline.yaml", PIPELINE.replace("echo c > c.txt", "echo c > c.txt; rm c.txt"))
    r = run(proj.root)
    assert r.returncode == 1 and "declared output not created: c.txt" in r.stdout


def test_failed_stage_not_recorded_and_dependents_not_run(proj: Project) -> None:
    # [exec.failure]
    assert run(proj.root).returncode == 0
    before = lock_of(proj.root)
    proj.write("params.yaml", "a: 5\nb: 2\n")
    proj.write("pipeline.yaml", PIPELINE.replace(
        'echo "a from $REFTOOL_STAGE" && cat in.txt > a.txt',
        'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22; do echo line$i; '
        'done; exit 3').replace("echo c > c.txt", "echo c2 > c.txt"))
    r = run(proj.root)
    assert r.returncode == 1
    assert "a: FAILED: exit code 3" in r.stdout
    assert "a: last 20 lines of its output:\n    line3\n" in r.stdout
    assert "    line22\n" in r.stdout
    after = lock_of(proj.root)
    assert "a" not in after["stages"]  # nothing recorded for it; its old outputs are gone
    assert after["stages"]["b"] == before["stages"]["b"]
    assert "b: running" not in r.stdout
    # without --keep-going, c (independent, after a in run order) did not start either
    assert after["stages"]["c"] == before["stages"]["c"]


def test_keep_going(proj: Project) -> None:
    proj.write("pipeline.yaml", PIPELINE.replace("cat in.txt > a.txt", "exit 1"))
    r = run(proj.root, "--keep-going")
    assert r.returncode == 1
    assert set(lock_of(proj.root)["stages"]) == {"c"}
    assert "not run after a failure 1" in r.stdout


def test_early_cutoff(proj: Project) -> None:
    # [stale.early-cutoff]
    assert run(proj.root).returncode == 0
    proj.write("pipeline.yaml", PIPELINE.replace("cat in.txt > a.txt", "cat in.txt > a.txt && true"))
    r = run(proj.root)
    assert "b: skipped, its inputs came out unchanged (early cutoff)" in r.stdout
    assert "ran 1, restored from cache 0, skipped by early cutoff 1" in r.stdout
    assert plan(proj.root).to_run == ()


def test_restore_from_cache_when_inputs_seen_before(proj: Project) -> None:
    # [exec.cache], [digest.signature]
    assert run(proj.root).returncode == 0
    proj.write("params.yaml", "a: 2\nb: 2\n")
    assert run(proj.root).returncode == 0
    proj.write("params.yaml", "a: 1\nb: 2\n")  # set back: a's outputs are in the cache
    p = plan(proj.root)
    assert [(d.name, d.action) for d in p.to_run] == [("a", "restore"), ("b", "run")]
    r = subprocess.run([sys.executable, "-m", "reftool", "plan"], cwd=proj.root,
                       capture_output=True, text=True)
    assert "a: restore (its outputs for these inputs are in the cache)" in r.stdout
    r = run(proj.root)
    assert "a: restored from the cache" in r.stdout
    assert "restored from cache 1" in r.stdout
    assert "[a]" not in r.stdout  # not executed
    assert plan(proj.root).to_run == ()


def test_no_cache_forces_execution(proj: Project) -> None:
    assert run(proj.root).returncode == 0
    proj.write("params.yaml", "a: 2\nb: 2\n")
    run(proj.root)
    proj.write("params.yaml", "a: 1\nb: 2\n")
    r = run(proj.root, "--no-cache")
    assert "[a] a from a" in r.stdout and "restored from cache 0" in r.stdout


@pytest.mark.parametrize("flag", ["always_run: true", "outs: [{path: a.txt, persist: true}]"])
def test_never_restored(proj: Project, flag: str) -> None:
    text = PIPELINE.replace("    outs: [a.txt]\n", f"    outs: [a.txt]\n    {flag}\n") \
        if "always" in flag else PIPELINE.replace("outs: [a.txt]", flag)
    proj.write("pipeline.yaml", text)
    run(proj.root)
    proj.write("params.yaml", "a: 2\nb: 2\n")
    run(proj.root)
    proj.write("params.yaml", "a: 1\nb: 2\n")
    assert "[a] a from a" in run(proj.root).stdout


def test_corrupt_cache_object_detected_and_ignored(proj: Project) -> None:
    assert run(proj.root).returncode == 0
    proj.write("params.yaml", "a: 2\nb: 2\n")
    run(proj.root)
    proj.write("params.yaml", "a: 1\nb: 2\n")
    digest = lock_of(proj.root)["stages"]["a"]["outs"]["a.txt"]["digest"]
    # the lock now holds a's entry for a: 2; find the object of the first run's a.txt
    import hashlib
    hexdigest = hashlib.sha256(b"one\n").hexdigest()
    obj = proj.root / ".reftool/cache/objects" / hexdigest[:2] / hexdigest[2:]
    assert obj.is_file() and digest.endswith(hexdigest)
    obj.write_bytes(b"tampered\n")
    r = run(proj.root)
    assert r.returncode == 0
    assert "the cache entry is unusable (cache object" in r.stderr and "corrupt" in r.stderr
    assert "[a] a from a" in r.stdout
    assert (proj.root / "a.txt").read_text() == "one\n"
    assert plan(proj.root).to_run == ()


def test_parallel_jobs_overlap(project: Project) -> None:
    stages = "".join(
        f"  s{i}:\n    cmd: date +%s.%N > s{i}.start && sleep 0.4 && date +%s.%N > s{i}.end\n"
        f"    outs: [s{i}.start, s{i}.end]\n" for i in range(4))
    project.base('version: "1.0"\nstages:\n' + stages)

    def spans() -> list[tuple[float, float]]:
        return sorted((float((project.root / f"s{i}.start").read_text()),
                       float((project.root / f"s{i}.end").read_text())) for i in range(4))

    assert run(project.root, "-j", "1").returncode == 0
    s = spans()
    assert all(s[i][1] <= s[i + 1][0] for i in range(3))  # one at a time
    assert run(project.root, "-j", "2", "--force").returncode == 0
    s = spans()
    overlapping = sum(s[i + 1][0] < s[i][1] for i in range(3))
    assert overlapping >= 1
    assert max(sum(a <= t[0] < b for a, b in s) for t in s) <= 2  # never more than 2 at once


def test_force_and_dry_run(proj: Project) -> None:
    assert run(proj.root).returncode == 0
    before = (proj.root / "pipeline.lock").read_bytes()
    r = run(proj.root, "--dry-run", "--force", "b")
    assert r.stdout.startswith("b: run\n    forced\n")
    assert (proj.root / "pipeline.lock").read_bytes() == before
    r = run(proj.root, "--force", "b")
    assert "[a]" not in r.stdout and "b: done" in r.stdout


def test_named_stages_run_what_they_need(proj: Project) -> None:
    r = run(proj.root, "b")
    assert set(lock_of(proj.root)["stages"]) == {"a", "b"}
    assert "c:" not in r.stdout


def test_wdir_and_env(project: Project) -> None:
    project.base('version: "1.0"\nstages:\n  s:\n    wdir: sub\n    cmd: pwd > here.txt && '
                 'echo "$REFTOOL_PROJECT" > root.txt\n    outs: [sub/here.txt, sub/root.txt]\n',
                 **{"sub/.keep": ""})
    assert run(project.root).returncode == 0
    assert (project.root / "sub/here.txt").read_text().strip() == str(
        (project.root / "sub").resolve())
    assert (project.root / "sub/root.txt").read_text().strip() == str(project.root.resolve())


def test_lock_prunes_removed_stages(proj: Project) -> None:
    # [lock.prune]
    assert run(proj.root).returncode == 0
    proj.write("pipeline.yaml", PIPELINE.split("  c:")[0].replace("cat in.txt", "cat ./in.txt"))
    assert run(proj.root).returncode == 0
    assert set(lock_of(proj.root)["stages"]) == {"a", "b"}


# ---------------------------------------------------------------------------------- one run

SLOW = PIPELINE.replace("echo c > c.txt", "sleep 3 && echo c > c.txt")


def test_second_run_waits_or_declines(proj: Project) -> None:
    proj.write("pipeline.yaml", SLOW)
    first = subprocess.Popen([sys.executable, "-m", "reftool", "run"], cwd=proj.root,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            if (proj.root / ".reftool/run.lock").exists() and \
                    (proj.root / ".reftool/run.lock").read_text():
                break
            time.sleep(0.05)
        r = run(proj.root, "--no-wait")
        assert r.returncode == 4
        assert "another run (pid" in r.stderr and "not waiting" in r.stderr
        r = run(proj.root)
        assert "waiting for another run (pid" in r.stderr
        assert r.returncode == 0
        assert r.stdout == "Nothing to run: 3 stages up to date.\n"
    finally:
        first.wait(timeout=60)
    assert first.returncode == 0


def test_lock_left_by_a_dead_process_is_taken_over(proj: Project) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    (proj.root / ".reftool").mkdir()
    (proj.root / ".reftool/run.lock").write_text(json.dumps(
        {"pid": dead.pid, "host": os.uname().nodename, "started": time.time()}))
    r = run(proj.root)
    assert r.returncode == 0
    assert f"taking over the run lock left by pid {dead.pid}" in r.stderr


def test_plan_takes_no_lock_beside_a_run(proj: Project) -> None:
    proj.write("pipeline.yaml", SLOW)
    first = subprocess.Popen([sys.executable, "-m", "reftool", "run"], cwd=proj.root,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        r = subprocess.run([sys.executable, "-m", "reftool", "plan"], cwd=proj.root,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0
    finally:
        first.wait(timeout=60)


# ---------------------------------------------------------------------------------- signals

def _wait_for(path: Path, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > end:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.02)


def test_ctrl_c_stops_the_process_group_and_keeps_what_finished(proj: Project) -> None:
    proj.write("pipeline.yaml", PIPELINE.replace(
        "echo c > c.txt", "(sleep 60; echo never > late.txt) & echo $! > child.pid; "
        "touch started; sleep 60; echo c > c.txt"))
    p = subprocess.Popen([sys.executable, "-m", "reftool", "run"], cwd=proj.root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(proj.root / "started")
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130, out + err
    assert "interrupted; stopping 1 running stage(s)" in err
    lock = lock_of(proj.root)
    assert set(lock["stages"]) == {"a", "b"}  # finished before: recorded; c: not
    child = int((proj.root / "child.pid").read_text())
    time.sleep(0.2)
    assert not _exists(child) or _state(child) == "Z"  # the stage's whole group was stopped
    r = run(proj.root, "a", "b")
    assert r.stdout == "Nothing to run: 2 stages up to date.\n"


def test_sigterm_is_an_interrupt(proj: Project) -> None:
    proj.write("pipeline.yaml", PIPELINE.replace("echo c > c.txt", "touch started; sleep 60"))
    p = subprocess.Popen([sys.executable, "-m", "reftool", "run"], cwd=proj.root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(proj.root / "started")
    p.terminate()
    p.communicate(timeout=30)
    assert p.returncode == 130
    assert "c" not in lock_of(proj.root)["stages"]


def test_journal_of_an_unfinished_run_is_replayed(proj: Project) -> None:
    proj.write("pipeline.yaml", PIPELINE.replace("echo c > c.txt", "touch started; sleep 60"))
    p = subprocess.Popen([sys.executable, "-m", "reftool", "run"], cwd=proj.root,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(proj.root / "started")
    p.kill()  # SIGKILL: no chance to write the lock
    p.wait()
    assert not (proj.root / "pipeline.lock").exists()
    lock, applied, recorded = replay(proj.root, proj.root / "pipeline.lock", None)
    assert (applied, recorded) == (2, 2) and lock is not None and set(lock.stages) == {"a", "b"}
    proj.write("pipeline.yaml", PIPELINE)
    assert [d.name for d in plan(proj.root).to_run] == ["c"]  # a and b: recorded
    r = run(proj.root)
    assert "recovered 2 stage(s) recorded by a run that did not finish" in r.stderr
    assert "ran 1," in r.stdout
    assert set(lock_of(proj.root)["stages"]) == {"a", "b", "c"}


def test_second_ctrl_c_stops_at_once(proj: Project) -> None:
    # a stage that ignores SIGTERM (its children inherit that): only the second Ctrl-C ends it
    proj.write("pipeline.yaml", PIPELINE.replace(
        "echo c > c.txt",
        "trap '' TERM; echo $$ > stage.pid; touch started; while true; do sleep 0.1; done"))
    p = subprocess.Popen([sys.executable, "-m", "reftool", "run"], cwd=proj.root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    _wait_for(proj.root / "started")
    p.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert p.poll() is None  # still waiting for the stage to stop
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=10)
    assert p.returncode == 130
    assert "reftool: stopped" in err
    # what finished before stays recorded (in the journal; the next run applies it)
    r = run(proj.root, "a", "b")
    assert r.stdout == "Nothing to run: 2 stages up to date.\n"
    assert "recovered 2 stage(s)" in r.stderr
    time.sleep(0.2)
    assert not _group_alive(int((proj.root / "stage.pid").read_text()))  # killed, group and all


def _exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies, dead but not yet reaped by an
    init that does not reap, do not count)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def test_run_leaves_its_lock_parsed_and_checked_for_the_next_command(proj: Project) -> None:
    """The first plan after a run does not parse and schema-check the lock that run wrote
    again (issue 18), and the document cache holds no older lock."""
    import hashlib
    for value in ("1", "5"):  # two runs, two different locks
        (proj.root / "params.yaml").write_text(f"a: {value}\nb: 2\n")
        assert run(proj.root, "-q", "--no-record").returncode == 0
        cache = json.loads((proj.root / ".reftool" / "documents.json").read_text())["entries"]
        digest = hashlib.sha256((proj.root / "pipeline.lock").read_bytes()).hexdigest()
        assert "lock" in cache[digest]["valid"]
        assert cache[digest]["value"] == json.loads((proj.root / "pipeline.lock").read_text())
        locks = [k for k, v in cache.items() if v.get("file") == "pipeline.lock"]
        assert locks == [digest]
    r = subprocess.run([sys.executable, "-m", "reftool", "plan", "--exit-code"], cwd=proj.root,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_journal_lines_are_synced_in_groups_before_a_dependent_starts(
        proj: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """[exec.record]: an entry is on stable storage before a stage that depends on it starts,
    and no sooner than needed: here `b` waits on `a` (one sync before `b`), `c` on nothing,
    and the journal is synced once more when it closes (issue 18: was one fsync per stage)."""
    from reftool import cli
    from reftool.pipeline import execute, lockfile

    seen: list[tuple[str, set[str]]] = []
    start = execute.Runner._start

    def checked(self: execute.Runner, name: str, *rest: object) -> object:
        seen.append((name, self.journal.unsynced & self.deps[name]))
        return start(self, name, *rest)  # type: ignore[arg-type]
    monkeypatch.setattr(execute.Runner, "_start", checked)
    syncs: list[int] = []
    real_sync = lockfile.Journal.sync

    def counted(self: lockfile.Journal) -> None:
        syncs.append(len(self.unsynced))
        real_sync(self)
    monkeypatch.setattr(lockfile.Journal, "sync", counted)
    monkeypatch.chdir(proj.root)
    assert cli.main(["run", "-q", "--no-record"]) == 0
    assert sorted(name for name, _ in seen) == ["a", "b", "c"]
    assert all(not unsynced for _, unsynced in seen)  # never started over an unsynced upstream
    assert 1 <= sum(1 for n in syncs if n) <= 2  # fewer syncs than stages
    assert sum(syncs) >= 3  # and every line was synced by the end
    assert set(lock_of(proj.root)["stages"]) == {"a", "b", "c"}


def test_without_the_sync_a_dependent_would_start_over_an_unsynced_entry(
        proj: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: with the runner's sync before a dependent disabled, `b` starts
    while `a`'s line is not yet on stable storage."""
    from reftool import cli
    from reftool.pipeline import execute, lockfile

    seen: list[tuple[str, set[str]]] = []
    start = execute.Runner._start

    def checked(self: execute.Runner, name: str, *rest: object) -> object:
        seen.append((name, set(self.journal.unsynced & self.deps[name])))
        return start(self, name, *rest)  # type: ignore[arg-type]
    monkeypatch.setattr(execute.Runner, "_start", checked)
    monkeypatch.setattr(lockfile.Journal, "sync", lambda self: None)
    monkeypatch.chdir(proj.root)
    assert cli.main(["run", "-q", "--no-record"]) == 0
    assert ("b", {"a"}) in seen


# --------------------------------------------------------- how a stage's output is read

STREAMS = """\
version: "1.0"
stages:
  odd:
    cmd:
      - printf 'one\\ntwo without end'
      - printf '\\377bad\\n' && echo second command > odd.txt
    outs: [odd.txt]
  closes:
    cmd: exec >&-; sleep 0.5; echo done > closes.txt
    outs: [closes.txt]
  leaves:
    cmd: (sleep 0.5; echo late) & echo early && echo x > leaves.txt
    outs: [leaves.txt]
  chatty:
    cmd: seq 1 200000 && echo x > chatty.txt
    outs: [chatty.txt]
"""


@pytest.mark.parametrize("jobs", ["1", "3"])
def test_output_is_read_whole_in_every_shape(project: Project, jobs: str) -> None:
    """[tool.run]: the last line without its LF, bytes that are not UTF-8, a command that
    closes its output and goes on, one that leaves a process writing to it, and 200,000 lines
    of output beside other stages: every line reaches the log, and each stage is recorded
    only once its commands ended."""
    project.base(STREAMS)
    r = run(project.root, "-q", "-j", jobs)
    assert r.returncode == 0, r.stdout + r.stderr
    logs = project.root / ".reftool" / "logs"
    assert (logs / "odd.log").read_text() == "one\ntwo without end\n\ufffdbad\n"
    assert (project.root / "odd.txt").read_text() == "second command\n"
    assert (project.root / "closes.txt").read_text() == "done\n"
    assert (logs / "leaves.log").read_text().splitlines() == ["early", "late"]
    assert (logs / "chatty.log").read_text() == "".join(f"{i}\n" for i in range(1, 200_001))
    assert set(lock_of(project.root)["stages"]) == {"odd", "closes", "leaves", "chatty"}


def test_a_failed_command_ends_its_stage(project: Project) -> None:
    """[exec.record]: the next command of a stage starts only when the one before exited 0;
    the tail of its output is shown."""
    project.base('version: "1.0"\nstages:\n  s:\n    cmd: [echo first && exit 3, '
                 "touch second]\n    outs: [s.txt]\n")
    r = run(project.root)
    assert r.returncode == 1
    assert "s: FAILED: exit code 3" in r.stdout and "[s] first" in r.stdout
    assert not (project.root / "second").exists()


def test_output_is_read_whole_without_pidfd(project: Project,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no pidfd tells that a process ended (not Linux), a command whose output closed
    is polled: the same stages, the same logs."""
    from reftool import cli
    from reftool.pipeline import execute
    monkeypatch.setattr(execute, "_pidfd", lambda pid: None)
    project.base(STREAMS)
    monkeypatch.chdir(project.root)
    assert cli.main(["run", "-q", "-j", "2", "--no-record"]) == 0
    logs = project.root / ".reftool" / "logs"
    assert (logs / "leaves.log").read_text().splitlines() == ["early", "late"]
    assert (project.root / "closes.txt").read_text() == "done\n"
    assert set(lock_of(project.root)["stages"]) == {"odd", "closes", "leaves", "chatty"}


def test_outputs_that_cannot_be_read_fail_with_the_next_stage_running(project: Project) -> None:
    """[exec.failure]: a stage's outputs are hashed and recorded while the next stage that
    does not depend on it runs, so a stage whose output cannot be read (a FIFO) fails with
    that stage already started; it finishes and is recorded, and the failed stage's dependents
    do not run. A command that fails stops everything after it
    (test_failed_stage_not_recorded_and_dependents_not_run)."""
    project.base('version: "1.0"\nstages:\n'
                 "  a:\n    cmd: mkfifo a.txt\n    outs: [a.txt]\n"
                 "  b:\n    cmd: echo b > b.txt\n    outs: [b.txt]\n"
                 "  c:\n    cmd: cat a.txt > c.txt\n    deps: [a.txt]\n    outs: [c.txt]\n")
    r = run(project.root, "-j", "1")
    assert r.returncode == 1
    assert "a: FAILED: cannot record it" in r.stdout
    assert set(lock_of(project.root)["stages"]) == {"b"}
    assert not (project.root / "c.txt").exists()


def test_a_reader_that_leaves_stops_nothing(project: Project) -> None:
    """`reftool run | head -1`: once the reader of its output is gone, the run still runs
    every stage and records it, and its exit code is the run's (it used to stop half done,
    with nothing recorded and exit 0)."""
    project.base('version: "1.0"\nstages:\n'
                 "  a:\n    cmd: seq 1 100000 && echo a > a.txt\n    outs: [a.txt]\n"
                 "  b:\n    cmd: seq 1 1000 && echo b > b.txt\n    outs: [b.txt]\n")
    p = subprocess.Popen([sys.executable, "-m", "reftool", "run", "--no-record"],
                         cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.readline()
    p.stdout.close()
    assert p.wait(timeout=120) == 0
    assert p.stderr.read() == b""
    assert set(lock_of(project.root)["stages"]) == {"a", "b"}
