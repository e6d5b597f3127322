"""A no-op `reftool plan` over a directory dep of many files, this tree against a baseline
checkout (e.g. main before [digest.ignore]), side by side in one run, alternating, medians.

    python benchmarks/bench_ignore.py --baseline /work/main [--files 100000] [--runs 7]

Also times the same project with `exclude: ["__pycache__/", "*.pyc"]` (1.1), to show what
rules cost. Prints medians and ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def make(root: Path, files: int, exclude: bool) -> None:
    data = root / "data"
    for i in range(files):
        folder = data / f"{i // 1000:03d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True)
        (folder / f"{i}.txt").write_bytes(b"%d\n" % i)
    dep = ('\n      - path: data/\n        exclude: ["__pycache__/", "*.pyc"]' if exclude
           else " [data/]")
    (root / "pipeline.yaml").write_text(
        f'version: "{"1.1" if exclude else "1.0"}"\nstages:\n  s:\n    cmd: "true"\n'
        f"    deps:{dep}\n")


def plan(root: Path, tree: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "reftool", "plan", "-q"], cwd=root, env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--baseline", type=Path, required=True)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain, ruled = Path(tmp, "plain"), Path(tmp, "ruled")
        for root, exclude in ((plain, False), (ruled, True)):
            root.mkdir()
            make(root, a.files, exclude)
            plan(root, HERE)  # warms the hash cache
        plan(plain, a.baseline)
        times: dict[str, list[float]] = {"baseline": [], "this": [], "this, exclude": []}
        for _ in range(a.runs):
            times["baseline"].append(plan(plain, a.baseline))
            times["this"].append(plan(plain, HERE))
            times["this, exclude"].append(plan(ruled, HERE))
    base = statistics.median(times["baseline"])
    print(f"no-op plan, directory dep of {a.files:,} files, median of {a.runs}:")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"  {name:<14} {m:6.3f} s   ratio to baseline {m / base:.3f}")


if __name__ == "__main__":
    main()
