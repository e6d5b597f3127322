"""Benchmarks of `reftool plan` (issue: digests and plan). Prints medians and ratios.

    python benchmarks/bench_plan.py [--quick] [--huge] [--big-mb 2048] [--workdir DIR]

Every figure is the median of several runs of the real command line (`python -m reftool plan
-q` in a fresh process, start-up included) unless it says "in-process". Baselines are measured
in the same run, side by side, since these machines are noisy: quote the ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate, record_everything  # noqa: E402

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
PLAN = [sys.executable, "-m", "reftool", "plan", "-q"]


def timed(cmd: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if r.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd}:\n{r.stderr}")
    return elapsed


def median(f: Callable[[], float], runs: int) -> float:
    return statistics.median(f() for _ in range(runs))


def project(work: Path, name: str, **kw: int) -> Path:
    root = work / name
    if not (root / "pipeline.lock").exists():
        generate(root, **kw)
        record_everything(root)
        time.sleep(2.1)  # past the racy window: files just written are not trusted by the cache
        timed(PLAN, root)  # warm the caches
    return root


def noop(root: Path, runs: int) -> float:
    timed(PLAN, root)
    return median(lambda: timed(PLAN, root), runs)


def sha256_single_thread(nbytes: int) -> float:
    """hashlib.sha256 on one core, bytes per second, over an in-memory buffer."""
    data = os.urandom(64 << 20)
    t = time.perf_counter()
    h = hashlib.sha256()
    for _ in range(max(1, nbytes // len(data))):
        h.update(data)
    return max(1, nbytes // len(data)) * len(data) / (time.perf_counter() - t)


def row(name: str, value: str, target: str = "", note: str = "") -> None:
    print(f"| {name} | {value} | {target} | {note} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer runs, smaller projects")
    ap.add_argument("--huge", action="store_true", help="also 10^6 files and 10,000 stages")
    ap.add_argument("--big-mb", type=int, default=2048, help="size of the large file (MB)")
    ap.add_argument("--workdir", type=Path, help="keep generated projects here")
    a = ap.parse_args()
    runs = 3 if a.quick else 7
    work = a.workdir or Path(tempfile.mkdtemp(prefix="reftool-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q",
                    str(Path(__file__).resolve().parent.parent / "reftool")], env=ENV,
                   capture_output=True)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, work dir {work}\n")
    print("| measure | median | target | note |\n|---|---|---|---|")

    py = median(lambda: timed([sys.executable, "-c", "pass"], work), runs)
    row("python start-up alone", f"{py:.3f} s", "", "the floor under every command")
    one = project(work, "one", stages=1, raw_files=1)
    row("no-op plan, 1 stage", f"{noop(one, runs):.3f} s", "< 0.15 s", "start-up included")

    files = 20_000 if a.quick else 100_000
    big = project(work, "s1000", stages=1000, raw_files=1000, dir_files=files)
    t = noop(big, runs)
    row(f"no-op plan, 1,000 stages, {files + 1000:,} files", f"{t:.3f} s", "< 0.5 s",
        "hash cache warm")
    find = median(lambda: timed(["find", "data/big", "-type", "f", "-printf",
                                 "%s %T@ %C@ %i\\n"], big), runs)
    row(f"  `find -printf` stat of the {files:,} files (baseline)", f"{find:.3f} s", "",
        f"plan / find = {t / find:.2f}")

    counter = [0]

    def edit_one() -> float:
        counter[0] += 1
        i = counter[0] * 7919 % files
        p = big / f"data/big/{i // 1000:04d}/{i % 1000:04d}.txt"
        p.write_bytes(p.read_bytes() + b"x")
        return timed(PLAN, big)
    row(f"plan after a 1-byte edit in the {files:,}-file directory",
        f"{median(edit_one, runs):.3f} s", "< 1 s", "one file read, manifest rebuilt")
    for _ in range(2):
        timed(PLAN, big)

    # scaling in stages
    sizes = [100, 1000] + ([10_000] if a.huge or not a.quick else [])
    times = {}
    for n in sizes:
        root = project(work, f"stages{n}", stages=n, raw_files=100)
        times[n] = noop(root, runs)
    for n in sizes:
        per = (times[n] - py) / n * 1e3
        row(f"no-op plan, {n:,} stages", f"{times[n]:.3f} s", "linear",
            f"{per:.3f} ms per stage above start-up")

    # scaling in files
    counts = [10_000, 100_000] + ([1_000_000] if a.huge else [])
    if a.quick:
        counts = [10_000]
    for n in counts:
        root = project(work, f"files{n}", stages=10, raw_files=10, dir_files=n)
        t = noop(root, max(3, runs // 2))
        row(f"no-op plan, {n:,} files in a directory dep", f"{t:.3f} s", "linear",
            f"{(t - py) / n * 1e6:.2f} us per file above start-up")

    # cold hashing: one large file, then many files
    speed = statistics.median(sha256_single_thread(512 << 20) for _ in range(3))
    row("hashlib.sha256, one core, in memory", f"{speed / 1e9:.2f} GB/s", "", "baseline")
    root = work / "bigfile"
    if not (root / "pipeline.lock").exists():
        generate(root, stages=2, raw_files=1, big_file_mb=a.big_mb // (8 if a.quick else 1))
        record_everything(root)
    size = (root / "data" / "huge.bin").stat().st_size
    with open(root / "data" / "huge.bin", "rb") as f:  # in the OS page cache, like fresh data
        while f.read(1 << 24):
            pass

    def cold() -> float:
        shutil.rmtree(root / ".reftool", ignore_errors=True)
        return timed(PLAN, root)
    t = median(cold, 3)
    row(f"cold plan, one {size / 1e9:.2f} GB file (hash cache deleted)", f"{t:.3f} s",
        ">= 80% of one core", f"{size / t / 1e9:.2f} GB/s = {size / t / speed:.0%} of hashlib, "
        "start-up and validation included")

    root = work / "s1000"
    paths = sorted(str(p) for p in (root / "data" / "big").rglob("*.txt"))

    def serial_hash() -> float:
        t = time.perf_counter()
        for p in paths:
            with open(p, "rb") as f:
                hashlib.sha256(f.read()).hexdigest()
        return time.perf_counter() - t

    def cold_hasher() -> float:
        from reftool.pipeline.hashing import HashCache, Hasher
        h = Hasher(root, HashCache(None, str(root)))
        t = time.perf_counter()
        h.state("data/big/")
        return time.perf_counter() - t
    base = median(serial_hash, 3)
    ours = median(cold_hasher, 3)
    # many files of a size where hashing, not per-file overhead, is the work
    mid = work / "mid"
    if not (mid / "data").is_dir():
        import random
        block = random.Random(1).randbytes(1 << 20)
        for i in range(400 if a.quick else 1000):
            p = mid / "data" / f"{i // 100:02d}" / f"{i:04d}.bin"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(block[i % 997:] + block[:i % 997])
    mid_bytes = sum(p.stat().st_size for p in (mid / "data").rglob("*.bin"))
    for p in (mid / "data").rglob("*.bin"):  # in the page cache, like fresh data
        p.read_bytes()

    def cold_mid() -> float:
        from reftool.pipeline.hashing import HashCache, Hasher
        h = Hasher(mid, HashCache(None, str(mid)))
        t = time.perf_counter()
        h.state("data/")
        return time.perf_counter() - t
    t_mid = median(cold_mid, 3)
    row(f"cold hash of {mid_bytes / 1e9:.2f} GB in {mid_bytes >> 20:,} files of 1 MB "
        "(in-process)", f"{t_mid:.3f} s", "faster than one core",
        f"{mid_bytes / t_mid / 1e9:.2f} GB/s = {mid_bytes / t_mid / speed:.2f}x hashlib on one core")
    row(f"  one-thread read+sha256 loop over {len(paths):,} files (baseline, in-process)",
        f"{base:.3f} s", "", "")
    row(f"cold hash of the {len(paths):,}-file directory (in-process)", f"{ours:.3f} s",
        "faster than one thread", f"{base / ours:.2f}x the one-thread loop")
    if not a.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
