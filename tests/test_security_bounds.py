"""SPEC [security.bounds]: a lock cannot make validate, plan or run do work out of proportion to a
pipeline. 100,000 unknown lock entries took 13.5 s to validate (then 18 MB of warnings); a lock
with more entries than a pipeline may have is now refused before its entries are checked."""

from __future__ import annotations

import json
import sys

import pytest

from reftool.files.spec import MAX_STAGES
from sandbox import Sandbox

PIPELINE = 'version: "1.0"\nstages:\n  a:\n    cmd: echo hi > o.txt\n    outs: [o.txt]\n'


def _lock(entries: int) -> str:
    stages = {f"s{i}": {"cmd": ["x"], "deps": {}, "env": {}, "outs": {}, "params": {},
                        "wdir": "."} for i in range(entries)}
    return json.dumps({"version": "1.0", "stages": stages}, indent=2, sort_keys=True) + "\n"


@pytest.mark.parametrize("command", [("validate",), ("plan",), ("run",), ("dag",)])
def test_a_lock_with_more_entries_than_a_pipeline_may_have_is_refused(
        sandbox: Sandbox, command: tuple[str, ...]) -> None:
    sandbox.write("pipeline.yaml", PIPELINE)
    lock = sandbox.write("pipeline.lock", _lock(MAX_STAGES + 1))
    before = lock.read_bytes()
    r = sandbox.run(*command)
    r.assert_error("parse/too_large", "pipeline.lock:2:", f"{MAX_STAGES + 1:,} stage entries")
    assert r.seconds < 20, r.seconds  # a hang guard: about 2 s here, 23 s before the bound
    assert lock.read_bytes() == before
    assert not (sandbox.project / "o.txt").exists()


def test_unknown_lock_entries_within_the_bound_are_warnings_listed_twenty_at_most(
        sandbox: Sandbox) -> None:
    sandbox.write("pipeline.yaml", PIPELINE)
    sandbox.write("pipeline.lock", _lock(500))
    r = sandbox.run("validate")
    r.assert_clean()
    assert r.code == 0, r.out
    assert r.out.count("warning[semantic/lock_stage_unknown]") == 21
    assert "and 480 more" in r.out


@pytest.mark.parametrize("path, ok", [
    ("a" * 255, True), ("a" * 256, False), ("\u20ac" * 85, True), ("\u20ac" * 86, False),
    ("/".join(["d" * 200] * 5) + "/" + "e" * 19, True),   # 1,024 bytes
    ("/".join(["d" * 200] * 5) + "/" + "e" * 20, False),  # 1,025 bytes
])
def test_over_long_output_paths_are_a_validate_error_not_a_failed_run(
        sandbox: Sandbox, path: str, ok: bool) -> None:
    """SPEC [paths.length]: validate passed them, and run failed writing the output."""
    sandbox.write("pipeline.yaml", f'version: "1.0"\nstages:\n  s:\n    cmd: "true"\n'
                                   f'    outs: ["{path}"]\n')
    r = sandbox.run("validate")
    r.assert_clean()
    if ok:
        assert r.code == 0, r.out
    else:
        assert r.code == 1 and "pipeline.yaml:5:" in r.out, r.out
        assert "semantic/path_unrepresentable" in r.out and "at most" in r.out


GEN = ('import json, os\nos.makedirs("metrics", exist_ok=True)\n'
       'json.dump({"version": "1.0", "metrics": {f"m{i:03d}": i * 0.5 for i in range(N)}}, '
       'open("metrics/eval.json", "w"))\n')


@pytest.mark.parametrize("count, capped", [(48, False), (60, True)])
def test_plot_and_report_draw_at_most_48_panels_and_say_what_was_left_out(
        sandbox: Sandbox, count: int, capped: bool) -> None:
    """SPEC [security.bounds]: 10,000 metrics took plot and report past 30 s (120 s here)."""
    sandbox.write("gen.py", GEN.replace("range(N)", f"range({count})"))
    sandbox.write("pipeline.yaml", f'version: "1.0"\nstages:\n  g:\n    cmd: {sys.executable} '
                                   'gen.py\n    deps: [gen.py]\n    metrics: [metrics/eval.json]\n')
    env = {"MPLCONFIGDIR": str(sandbox.allowed / "mpl")}
    assert sandbox.run("run", "-q", env=env).code == 0
    plot = sandbox.run("plot", "--out", "plots", env=env)
    plot.assert_clean()
    assert plot.code == 0 and (sandbox.project / "plots" / "summary.png").is_file()
    note = f"{count} summary metrics: drew the first 48 (m000 to m047); 12 left out"
    assert (note in plot.err) is capped, plot.err
    report = sandbox.run("report", env=env)
    report.assert_clean()
    text = (sandbox.project / "reftool-report" / "report.md").read_text()
    assert ("12 left out" in text) is capped
