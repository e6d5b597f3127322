"""Run integrity and bounds under hostile or unlucky input: SPEC [exec.failure],
[security.deps-during-run], [security.bounds]. Every case runs the tool in the sandbox (30 s,
1.5 GB) and checks a clear error or a correct result, and that nothing outside changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox import Sandbox

# ------------------------------------------------------------------ [exec.failure]: stop at once

# `a` comes before `zz` in run order ([stale.order]); `a` fails, `zz` does not depend on it.
# `b` makes the folder `gen/` but not `gen/z.txt`, so `a` fails while starting (a frozen
# stage's missing output is refused by the plan instead: [stale.frozen-missing]).
STARTS_BADLY = """\
version: "1.0"
stages:
  b:
    cmd: mkdir -p gen
    outs: [gen/]
  a:
    cmd: cat gen/z.txt > a.txt
    deps: [gen/z.txt]
    outs: [a.txt]
  zz:
    cmd: echo zz > zz.txt
    deps: [gen/]
    outs: [zz.txt]
"""
FAILS_RUNNING = STARTS_BADLY.replace("cat gen/z.txt > a.txt", "exit 3").replace(
    "    deps: [gen/z.txt]\n", "")


@pytest.mark.parametrize("text, needle, jobs, not_run", [
    (STARTS_BADLY, "its dep 'gen/z.txt' does not exist", "1", 1),
    (STARTS_BADLY, "its dep 'gen/z.txt' does not exist", "2", 1),
    (FAILS_RUNNING, "exit code 3", "1", 2),  # b and zz; with -j 2, b would start beside it
])
def test_a_failure_stops_the_run(sandbox: Sandbox, text: str, needle: str, jobs: str,
                                 not_run: int) -> None:
    sandbox.write("pipeline.yaml", text)
    r = sandbox.run("run", "--no-record", "-j", jobs)
    r.assert_error("a: FAILED", needle, f"not run after a failure {not_run}")
    assert not (sandbox.project / "zz.txt").exists()
    stages = json.loads((sandbox.project / "pipeline.lock").read_text())["stages"]
    assert "a" not in stages and "zz" not in stages


def test_a_frozen_stage_missing_output_is_refused_before_anything_runs(
        sandbox: Sandbox) -> None:
    """[stale.frozen-missing]: named once by the plan, not by each dependent's failure."""
    sandbox.write("pipeline.yaml", STARTS_BADLY.replace(
        "    outs: [gen/]\n", "    outs: [gen/]\n    frozen: true\n"))
    r = sandbox.run("run", "--no-record")
    r.assert_error("semantic/frozen_output_missing", "'gen/z.txt'", "'a'", "'b'")
    assert not (sandbox.project / "zz.txt").exists()
    assert not (sandbox.project / "pipeline.lock").exists()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_keep_going_starts_the_independent_stages(sandbox: Sandbox, jobs: str) -> None:
    sandbox.write("pipeline.yaml", STARTS_BADLY)
    r = sandbox.run("run", "--no-record", "--keep-going", "-j", jobs)
    r.assert_error("a: FAILED")
    assert (sandbox.project / "zz.txt").read_text() == "zz\n"
    assert list(json.loads((sandbox.project / "pipeline.lock").read_text())["stages"]) == [
        "b", "zz"]



# --------------------------------------------- [security.deps-during-run]: what a stage read

def _lock(sandbox: Sandbox) -> dict:
    path = sandbox.project / "pipeline.lock"
    return json.loads(path.read_text())["stages"] if path.exists() else {}


def _digest(sandbox: Sandbox, rel: str) -> str:
    import hashlib
    return "sha256:" + hashlib.sha256((sandbox.project / rel).read_bytes()).hexdigest()


def _assert_lock_tells_the_truth(sandbox: Sandbox) -> None:
    """Every recorded copy of data.txt was made from the data.txt its entry records."""
    for name, entry in _lock(sandbox).items():
        if "data.txt" in entry["deps"] and name != "a":
            assert _digest(sandbox, f"{name}.txt") == entry["deps"]["data.txt"]["digest"], name


# a edits data.txt while the run goes on; b (after a) and c (beside a, with -j 2) copy it
EDITED_BY_A_STAGE = """\
version: "1.0"
stages:
  a:
    cmd: sleep 0.3 && echo v2 > data.txt && echo a > a.txt
    outs: [a.txt]
  b:
    cmd: cp data.txt b.txt
    deps: [data.txt, a.txt]
    outs: [b.txt]
  c:
    cmd: sleep 1 && cp data.txt c.txt
    deps: [data.txt]
    outs: [c.txt]
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_dep_edited_by_another_stage_poisons_nothing(sandbox: Sandbox, jobs: str) -> None:
    sandbox.write("pipeline.yaml", EDITED_BY_A_STAGE)
    sandbox.write("data.txt", "v1\n")
    r = sandbox.run("run", "--no-record", "-j", jobs)
    r.assert_clean()
    if jobs == "1":  # b and c started after the edit: they run with v2, and record v2
        assert r.code == 0, r.out + r.err
        assert "b: its dep 'data.txt' changed after the plan" in r.out
        assert sorted(_lock(sandbox)) == ["a", "b", "c"]
    else:  # c started with v1 and a wrote v2 while c slept
        r.assert_error("c: FAILED", "its dep 'data.txt' changed while it ran",
                       "runtime/dep_changed")
        assert "c" not in _lock(sandbox)
    _assert_lock_tells_the_truth(sandbox)
    sandbox.write("data.txt", "v1\n")  # undo the edit: b and c are stale
    plan = sandbox.run("plan", "--json")
    plan.assert_clean()
    assert {s["name"] for s in json.loads(plan.out)["stages"]} == {"b", "c"}
    again = sandbox.run("run", "--no-record", "-j", jobs)  # the cache must not give v2 back
    assert again.code == 0, again.out + again.err
    assert (sandbox.project / "b.txt").read_text() == "v1\n"
    assert (sandbox.project / "c.txt").read_text() == "v1\n"
    _assert_lock_tells_the_truth(sandbox)
    sandbox.write("data.txt", "v2\n")  # and going back to v2 gives v2's outputs
    back = sandbox.run("run", "--no-record", "-j", jobs)
    assert back.code == 0, back.out + back.err
    assert (sandbox.project / "b.txt").read_text() == "v2\n"
    assert (sandbox.project / "c.txt").read_text() == "v2\n"
    assert sandbox.run("plan", "--exit-code").code == 0


def _edit_when_started(sandbox: Sandbox, edit: object) -> object:
    """A background thread: once the stage has said `started`, apply `edit`, then say `edited`."""
    import threading
    import time

    def go() -> None:
        deadline = time.monotonic() + 20
        while not (sandbox.project / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        edit()  # type: ignore[operator]
        (sandbox.project / "edited").write_text("")
    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


WAITS_FOR_AN_EDIT = """\
version: "1.0"
stages:
  s:
    cmd: cat DEP > s.txt && touch started && while [ ! -e edited ]; do sleep 0.02; done
    deps: [DEP]
    params: {p.yaml: [/lr]}
    outs: [s.txt]
  t:
    cmd: echo t > t.txt
    outs: [t.txt]
"""


def _append(sandbox: Sandbox, rel: str, text: str) -> object:
    def edit() -> None:
        with open(sandbox.project / rel, "a", encoding="utf-8") as f:
            f.write(text)
    return edit


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("dep, what, needle", [
    ("data.txt", "append", "its dep 'data.txt' changed while it ran"),
    ("data.txt", "remove", "its dep 'data.txt' does not exist any more"),
    ("d/", "add", "its dep 'd/' changed while it ran"),
    ("d/", "rewrite", "its dep 'd/' changed while it ran"),
    ("data.txt", "param", "its params file 'p.yaml' changed while it ran"),
])
def test_a_dep_changed_by_a_background_process(sandbox: Sandbox, jobs: str, dep: str,
                                               what: str, needle: str) -> None:
    sandbox.write("pipeline.yaml", WAITS_FOR_AN_EDIT.replace("DEP", dep).replace(
        "cat d/ ", "cat d/x "))
    sandbox.write("p.yaml", "lr: 1\n")
    sandbox.write("data.txt", "v1\n")
    sandbox.write("d/x", "v1\n")
    edit = {"append": _append(sandbox, "data.txt", "v2\n"),
            "remove": (sandbox.project / "data.txt").unlink,
            "add": lambda: sandbox.write("d/y", "new\n"),
            "rewrite": lambda: sandbox.write("d/x", "v2\n"),
            "param": lambda: sandbox.write("p.yaml", "lr: 1.0\n")}[what]
    thread = _edit_when_started(sandbox, edit)
    r = sandbox.run("run", "--no-record", "-j", jobs)
    thread.join()  # type: ignore[attr-defined]
    r.assert_error("s: FAILED", needle, "runtime/dep_changed", "not recorded")
    assert "s" not in _lock(sandbox)
    runs = [p for p in (sandbox.project / ".reftool" / "cache" / "runs").rglob("*")
            if p.is_file()]
    assert not [p for p in runs if "s.txt" in p.read_text()]  # s's outputs are not cached
    if jobs == "1":
        assert not (sandbox.project / "t.txt").exists()  # nothing starts after the failure


def test_nothing_is_cached_for_a_stage_whose_dep_changed(sandbox: Sandbox) -> None:
    sandbox.write("pipeline.yaml", """\
version: "1.0"
stages:
  s:
    cmd: cp data.txt s.txt && if [ ! -e once ]; then touch once; echo v2 > data.txt; fi
    deps: [data.txt]
    outs: [s.txt]
""")
    sandbox.write("data.txt", "v1\n")
    sandbox.run("run", "--no-record").assert_error("its dep 'data.txt' changed while it ran")
    sandbox.write("data.txt", "v1\n")
    r = sandbox.run("run", "--no-record")
    assert r.code == 0, r.out + r.err
    assert "s: running" in r.out and "restored from the cache\n" not in r.out
    assert (sandbox.project / "s.txt").read_text() == "v1\n"
    assert _lock(sandbox)["s"]["deps"]["data.txt"]["digest"] == _digest(sandbox, "data.txt")


# ------------------------------------------------------- [security.bounds]: small files, big work

MATRIX_1E8 = 'version: "1.0"\nstages:\n  s:\n    cmd: echo ${item.a0}\n    matrix:\n' + "".join(
    f"      a{i}: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n" for i in range(8))
FOREACH_TOO_MANY = ('version: "1.0"\nstages:\n  ok:\n    cmd: echo\n  s:\n    cmd: echo ${item}\n'
                    "    foreach: [" + ", ".join(str(i) for i in range(20_000)) + "]\n")
BIG_STRING = ('version: "1.0"\nvars: [vars.yaml]\nstages:\n  s:\n    cmd: echo '
              + "${big}" * 4000 + "\n")
MANY_SMALL = ('version: "1.0"\nvars: [vars.yaml]\nstages:\n  s:\n    cmd: echo ${item}\n'
              "    foreach: [" + ", ".join(str(i) for i in range(200)) + "]\n"
              '    deps: ["d${mid}"]\n')


@pytest.mark.parametrize("argv", [("validate",), ("plan",), ("dag",), ("run", "--no-record"),
                                  ("exp", "show")])
@pytest.mark.parametrize("text, needle", [
    (MATRIX_1E8, "more than 20,000 stages"),
    (FOREACH_TOO_MANY, "more than 20,000 stages"),
    (BIG_STRING, "grows past 131,072 characters"),
])
def test_expansion_is_bounded(sandbox: Sandbox, argv: tuple[str, ...], text: str,
                              needle: str) -> None:
    sandbox.write("pipeline.yaml", text)
    sandbox.write("vars.yaml", "big: " + "x" * 1_000_000 + "\n")
    r = sandbox.run(*argv)
    if argv[0] == "exp":  # shows what it can read, quickly, without the pipeline's stages
        r.assert_clean()
        assert len(r.out) < 10_000
    else:
        r.assert_error("pipeline.yaml", "expansion_limit", needle)
    assert r.seconds < 20
    assert not (sandbox.project / "pipeline.lock").exists()


def test_templating_has_a_total_budget(sandbox: Sandbox) -> None:
    # 200 stages x 100,000 characters each: every string is under the bound, the sum is not
    sandbox.write("pipeline.yaml", MANY_SMALL)
    sandbox.write("vars.yaml", "mid: " + "y" * 100_000 + "\n")
    r = sandbox.run("validate")
    r.assert_error("expansion_limit", "in the whole pipeline")


def test_a_large_matrix_within_the_bound_is_fine(sandbox: Sandbox) -> None:
    sandbox.write("pipeline.yaml", 'version: "1.0"\nstages:\n  s:\n    cmd: echo ${item.a}'
                  " ${item.b}\n    matrix:\n      a: [" + ", ".join(map(str, range(100)))
                  + "]\n      b: [" + ", ".join(map(str, range(20))) + "]\n")
    r = sandbox.run("validate")
    assert r.code == 0, r.out + r.err


@pytest.mark.parametrize("unknown, listed", [(5, 5), (21, 20), (3000, 20)])
def test_unknown_lock_stage_warnings_are_capped(sandbox: Sandbox, unknown: int,
                                                listed: int) -> None:
    sandbox.write("pipeline.yaml", 'version: "1.0"\nstages:\n  s:\n    cmd: echo\n')
    entry = {"cmd": ["echo"], "deps": {}, "env": {}, "outs": {}, "params": {}, "wdir": "."}
    sandbox.write("pipeline.lock", json.dumps(
        {"stages": {f"x{i:05d}": entry for i in range(unknown)}, "version": "1.0"},
        indent=2, sort_keys=True) + "\n")
    r = sandbox.run("validate")
    r.assert_clean()
    assert r.code == 0
    assert r.out.count("which is not in the pipeline") == listed
    if unknown > listed:
        assert f"and {unknown - listed:,} more entries" in r.out
    assert len(r.out) < 10_000


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_keep_going_still_fails_on_a_changed_dep(sandbox: Sandbox, jobs: str) -> None:
    sandbox.write("pipeline.yaml", WAITS_FOR_AN_EDIT.replace("DEP", "data.txt"))
    sandbox.write("p.yaml", "lr: 1\n")
    sandbox.write("data.txt", "v1\n")
    thread = _edit_when_started(sandbox, _append(sandbox, "data.txt", "v2\n"))
    r = sandbox.run("run", "--no-record", "--keep-going", "-j", jobs)
    thread.join()  # type: ignore[attr-defined]
    r.assert_error("s: FAILED", "runtime/dep_changed")
    assert sorted(_lock(sandbox)) == ["t"]  # the independent stage ran and is recorded


def test_a_params_file_rewritten_in_the_same_clock_tick_is_read_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """[security.deps-during-run] for params: a file system whose clock ticks coarsely gives
    a file rewritten within one tick, at the same size, the same stat. The workspace then
    reads its bytes again (the hash cache's racy rule, [stale.cache]) and sees the new value;
    a file last written long before it was read is trusted on its stat alone."""
    from reftool.pipeline import workspace as ws
    from reftool.pipeline.hashing import HashCache, Hasher
    (tmp_path / "p.yaml").write_text("lr: 1\n")
    frozen = ws._stat_key(tmp_path / "p.yaml")
    monkeypatch.setattr(ws, "_stat_key", lambda path: frozen)  # the same tick, the same stat
    space = ws.Workspace(tmp_path, Hasher(tmp_path, HashCache.open(tmp_path, enabled=False)))
    assert space.params_file("p.yaml") == {"lr": 1}
    (tmp_path / "p.yaml").write_text("lr: 2\n")  # same size
    space.refresh([], ["p.yaml"])
    assert space.params_file("p.yaml") == {"lr": 2}
    space.refresh([], ["p.yaml"])  # unchanged: kept, after reading its bytes again
    assert space.params_file("p.yaml") == {"lr": 2}
    key, digest, _ = space._params_seen["p.yaml"]
    space._params_seen["p.yaml"] = (key, digest, max(key[0], key[1]) + 3 * ws.RACY_WINDOW_NS)
    (tmp_path / "p.yaml").write_text("lr: 3\n")  # now past the window: the stat is trusted
    space.refresh([], ["p.yaml"])
    assert space.params_file("p.yaml") == {"lr": 2}
