"""A 3x3 grid of the classifier example (issue 14): `reftool exp run -S ... -j 2` against the
same nine experiments run one by one (`-j 1`). Prints medians and the ratio.

    python benchmarks/bench_sweep.py [--repeats 3] [--epochs 100]

Each repeat starts from a fresh copy of examples/classifier that was run once (so `prepare` and
`featurize` are in its cache, as after a user's first run), then times the grid
`train.lr=0.05,0.1,0.2 x train.hidden=16,32,64`: every experiment restores the two upstream
stages from the cache and runs `train` and `evaluate`. The machine's load is printed beside the
figures, since parallel runs gain only what idle cores there are.
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

REPO = Path(__file__).resolve().parent.parent
GRID = ["-S", "train.lr=0.05,0.1,0.2", "-S", "train.hidden=16,32,64"]


def reftool(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "reftool", "-C", str(project), *args],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"reftool {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
    return r


def fresh(tmp: Path, epochs: int) -> Path:
    project = tmp / f"classifier-{time.monotonic_ns()}"
    shutil.copytree(REPO / "examples" / "classifier", project)
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("epochs: 100", f"epochs: {epochs}"))
    reftool(project, "run", "-q", "--no-record")
    return project


def timed_grid(tmp: Path, epochs: int, jobs: int) -> float:
    project = fresh(tmp, epochs)
    start = time.perf_counter()
    reftool(project, "exp", "run", *GRID, "-j", str(jobs))
    took = time.perf_counter() - start
    recorded = len(list((project / "experiments").glob("*.json")))
    if recorded != 9:
        raise SystemExit(f"expected 9 records, found {recorded}")
    shutil.rmtree(project)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        times: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(args.repeats):
            for jobs in (1, 2):  # interleaved, so that a change of load hits both alike
                times[jobs].append(timed_grid(Path(tmp), args.epochs, jobs))
                print(f"  -j {jobs}: {times[jobs][-1]:.1f} s (load {os.getloadavg()[0]:.1f})",
                      flush=True)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(f"3x3 grid of the classifier, {args.epochs} epochs, {os.cpu_count()} cores, "
          f"{args.repeats} repeats")
    print(f"one by one (-j 1): median {one:.1f} s")
    print(f"two at a time (-j 2): median {two:.1f} s")
    print(f"ratio: -j 2 takes {two / one:.2f} of -j 1 ({one / two:.2f}x faster)")


if __name__ == "__main__":
    main()
