"""Run integrity and bounds under hostile or unlucky input: SPEC [exec.failure],
[security.deps-during-run], [security.bounds]. Every case runs the tool in the sandbox (30 s,
1.5 GB) and checks a clear error or a correct result, and that nothing outside changed."""

from __future__ import annotations

import json

import pytest

from sandbox import Sandbox

# ------------------------------------------------------------------ [exec.failure]: stop at once

# `a` comes before `zz` in run order ([stale.order]); `a` fails, `zz` does not depend on it.
STARTS_BADLY = """\
version: "1.0"
stages:
  z:
    cmd: echo z > z.txt
    outs: [z.txt]
    frozen: true
  a:
    cmd: cat z.txt > a.txt
    deps: [z.txt]
    outs: [a.txt]
  zz:
    cmd: echo zz > zz.txt
    outs: [zz.txt]
"""
FAILS_RUNNING = STARTS_BADLY.replace("cat z.txt > a.txt", "exit 3").replace(
    "    deps: [z.txt]\n", "")


@pytest.mark.parametrize("text, needle, jobs", [
    (STARTS_BADLY, "its dep 'z.txt' does not exist", "1"),
    (STARTS_BADLY, "its dep 'z.txt' does not exist", "2"),
    (FAILS_RUNNING, "exit code 3", "1"),  # with -j 2, zz would start beside it
])
def test_a_failure_stops_the_run(sandbox: Sandbox, text: str, needle: str, jobs: str) -> None:
    sandbox.write("pipeline.yaml", text)
    r = sandbox.run("run", "--no-record", "-j", jobs)
    r.assert_error("a: FAILED", needle, "not run after a failure 1")
    assert not (sandbox.project / "zz.txt").exists()
    assert json.loads((sandbox.project / "pipeline.lock").read_text())["stages"] == {}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_keep_going_starts_the_independent_stages(sandbox: Sandbox, jobs: str) -> None:
    sandbox.write("pipeline.yaml", STARTS_BADLY)
    r = sandbox.run("run", "--no-record", "--keep-going", "-j", jobs)
    r.assert_error("a: FAILED")
    assert (sandbox.project / "zz.txt").read_text() == "zz\n"
    assert list(json.loads((sandbox.project / "pipeline.lock").read_text())["stages"]) == ["zz"]

