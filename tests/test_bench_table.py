"""benchmarks/bench_table.py --quick, as CI runs it: every row of issue 18's table is measured
against its floor, and only a gross regression (3x a committed baseline ratio) fails it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_table  # noqa: E402

ROWS = ("start-up: plan on a 1-stage project", "  start-up without the remembered answer",
        "no-op plan, 100 stages", "  100 stages, without the remembered answer",
        "run from scratch, 20 stages", "  20 stages, caching the outputs (the default)",
        "run after a param change, 10 of 20 stages rerun",
        "run -j 2, 8 independent stages of 50 ms",
        "directory dep of 1,000 files in folders of 1,000, no-op plan",
        "  in folders of 1,000: after a 1-byte edit of one file",
        "  in folders of 1,000: cold (hash state deleted)",
        "directory dep of 1,000 files in one folder, no-op plan",
        "  in one folder: after a 1-byte edit of one file",
        "  in one folder: cold (hash state deleted)")


def test_quick_table_runs_every_row_against_its_floor(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    # two interleaved repeats keep the file near a minute on a loaded machine; the gate (3x a
    # committed ratio) is far above what two samples' noise can reach
    r = subprocess.run([sys.executable, str(BENCH / "bench_table.py"), "--quick", "--repeats",
                        "2", "--workdir", str(tmp_path / "work"), "--json", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads(out.read_text())["rows"]
    assert tuple(row["case"] for row in rows) == ROWS
    for row in rows:
        assert row["tool"] > 0 and row["floor"] > 0 and row["ratio"] > 0
    assert "| reftool / floor |" in r.stdout


def test_baseline_covers_every_quick_row() -> None:
    baseline = json.loads((BENCH / "baseline.json").read_text())["quick"]
    assert set(baseline) == set(ROWS)


def test_only_a_gross_regression_fails() -> None:
    row = bench_table.Row("no-op plan, 100 stages", tool=4.0, floor=1.0)
    assert bench_table.regressions([row], {row.case: 2.0}) == []  # 2x its baseline: noise
    slow = bench_table.Row("no-op plan, 100 stages", tool=6.5, floor=1.0)
    assert bench_table.regressions([slow], {row.case: 2.0})  # over 3x its baseline: fails
    assert bench_table.regressions([slow], {}) == []  # no baseline: nothing to fail
    # a baseline near 1 (an answer from memory) is taken as 1.5: 3x is noise, 5x is not
    assert bench_table.regressions([bench_table.Row("x", tool=3.0, floor=1.0)], {"x": 0.8}) == []
    assert bench_table.regressions([bench_table.Row("x", tool=5.0, floor=1.0)], {"x": 0.8})
