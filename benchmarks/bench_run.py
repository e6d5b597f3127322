"""Benchmarks of `reftool run` (issue: run). Prints medians and ratios.

    python benchmarks/bench_run.py [--quick] [--huge] [--workdir DIR]

Figures are medians of the real command line in fresh processes, start-up included. Stage
commands are trivial (`echo`), so what is measured is the tool's own per-stage overhead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate  # noqa: E402

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd}:\n{r.stdout[-2000:]}{r.stderr}")
    return time.perf_counter() - t


def reftool(*args: str) -> list[str]:
    return [sys.executable, "-m", "reftool", *args]


def from_scratch(root: Path) -> float:
    shutil.rmtree(root / "out", ignore_errors=True)
    shutil.rmtree(root / ".reftool", ignore_errors=True)
    (root / "pipeline.lock").unlink(missing_ok=True)
    return timed(reftool("run", "-q", "--no-cache"), root)


def row(name: str, value: str, target: str = "", note: str = "") -> None:
    print(f"| {name} | {value} | {target} | {note} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--huge", action="store_true", help="also 10,000 stages from scratch")
    ap.add_argument("--workdir", type=Path)
    a = ap.parse_args()
    runs = 1 if a.quick else 3
    work = a.workdir or Path(tempfile.mkdtemp(prefix="reftool-bench-run-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, work dir {work}\n")
    print("| measure | median | target | note |\n|---|---|---|---|")

    sizes = [100, 1000] + ([10_000] if a.huge else [])
    per_stage = {}
    for n in sizes:
        root = work / f"run{n}"
        if not (root / "pipeline.yaml").exists():
            generate(root, stages=n, raw_files=100)
        t = statistics.median(from_scratch(root) for _ in range(runs if n <= 1000 else 1))
        per_stage[n] = t / n
        row(f"run from scratch, {n:,} stages", f"{t:.2f} s",
            "< 20 s" if n == 1000 else "flat per stage", f"{t / n * 1e3:.1f} ms per stage")
    sh = statistics.median(timed(["/bin/sh", "-c", "echo 1 > /dev/null"], work)
                           for _ in range(20))
    row("  one `/bin/sh -c echo` alone (baseline)", f"{sh * 1e3:.1f} ms", "",
        "the part of each stage that is the shell's")

    root = work / "run1000"
    noop_plan = statistics.median(timed(reftool("plan", "-q"), root) for _ in range(5))
    noop_run = statistics.median(timed(reftool("run", "-q"), root) for _ in range(5))
    row("no-op plan, 1,000 stages", f"{noop_plan:.3f} s")
    row("no-op run, 1,000 stages", f"{noop_run:.3f} s", "<= 1.2x plan",
        f"{noop_run / noop_plan:.2f}x the no-op plan")

    wide = work / "wide"
    wide.mkdir(exist_ok=True)
    (wide / "pipeline.yaml").write_text('version: "1.0"\nstages:\n' + "".join(
        f"  w{i}:\n    cmd: sleep 0.2 && echo {i} > w{i}.txt\n    outs: [w{i}.txt]\n"
        for i in range(16)))

    def wide_run(jobs: int) -> float:
        for p in wide.glob("w*.txt"):
            p.unlink()
        (wide / "pipeline.lock").unlink(missing_ok=True)
        shutil.rmtree(wide / ".reftool", ignore_errors=True)
        return timed(reftool("run", "-q", "--no-cache", "-j", str(jobs)), wide)
    one = statistics.median(wide_run(1) for _ in range(runs))
    two = statistics.median(wide_run(2) for _ in range(runs))
    row("16 independent stages of `sleep 0.2`, -j 1", f"{one:.2f} s", "", "")
    row("the same, -j 2", f"{two:.2f} s", "close to half", f"{two / one:.2f}x the -j 1 time")
    if not a.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
