"""Benchmark of `reftool.track.Series` (issue 14): 10,000 logged steps, before and after.

    python benchmarks/bench_track.py [--steps 10000] [--runs 3] [--workdir DIR]

"before" is the behaviour of the first release: an fsync after every line (`durable_every=0`).
"after" is the default: each line handed to the OS at once, an fsync every 2 s and at close.
"no fsync" (`fsync=False`) is the floor. Each figure is the median of `--runs` runs in-process,
side by side in the same run since these machines are noisy: quote the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from reftool import track  # noqa: E402

VARIANTS: dict[str, dict[str, object]] = {
    "before (fsync every line)": {"durable_every": 0.0},
    "after (default)": {},
    "no fsync": {"fsync": False},
}


def log_steps(path: Path, steps: int, options: dict[str, object]) -> float:
    start = time.perf_counter()
    with track.Series(str(path), **options) as series:  # type: ignore[arg-type]
        for step in range(steps):
            series.log(loss=1.0 / (step + 1), accuracy=step / steps)
    elapsed = time.perf_counter() - start
    lines = path.read_text().count("\n")
    if lines != steps + 1:  # every step written, whatever the variant
        raise SystemExit(f"{path}: {lines} lines, expected {steps + 1}")
    return elapsed


def median(f: Callable[[], float], runs: int) -> float:
    return statistics.median(f() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        results = {name: median(lambda: log_steps(Path(tmp) / "s.jsonl", args.steps, options),
                                args.runs)
                   for name, options in VARIANTS.items()}
    after = results["after (default)"]
    print(f"track.Series, {args.steps:,} steps, median of {args.runs} runs")
    for name, seconds in results.items():
        print(f"  {name:<28} {seconds:9.3f} s   {seconds / after:8.1f}x the default")


if __name__ == "__main__":
    main()
