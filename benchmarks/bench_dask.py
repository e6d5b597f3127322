"""The Dask executor against the local one (issue: scale past one machine). Prints medians.

    python benchmarks/bench_dask.py

Starts a scheduler and two workers on 127.0.0.1 (one thread each), then times the same
pipelines run locally and through Dask: trivial stages (per-stage overhead), and a sweep of 200
stages that each sleep 0.1 s (what two workers buy).
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(root: Path, *args: str) -> float:
    shutil.rmtree(root / ".reftool", ignore_errors=True)
    (root / "pipeline.lock").unlink(missing_ok=True)
    for p in root.glob("o*.txt"):
        p.unlink()
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "reftool", "run", "-q", "--no-cache",
                        "--no-record", *args], cwd=root, env=ENV, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(r.stdout + r.stderr)
    return time.perf_counter() - t


def project(root: Path, n: int, cmd: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pipeline.yaml").write_text('version: "1.0"\nstages:\n' + "".join(
        f"  s{i}:\n    cmd: {cmd.format(i=i)}\n    outs: [o{i}.txt]\n" for i in range(n)))
    return root


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="reftool-bench-dask-"))
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host",
                               "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    procs += [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                                "--nthreads", "1", "--no-nanny", "--no-dashboard"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
              for _ in range(2)]
    try:
        from distributed import Client
        time.sleep(2)
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, 2 workers\n")
        print("| measure | median | note |\n|---|---|---|")
        trivial = project(work / "trivial", 100, "echo {i} > o{i}.txt")
        local = statistics.median(timed(trivial) for _ in range(3))
        dask = statistics.median(timed(trivial, "--executor", "dask", "--scheduler", address)
                                 for _ in range(3))
        print(f"| 100 trivial stages, local | {local:.2f} s | {local / 100 * 1e3:.1f} ms per stage |")
        print(f"| 100 trivial stages, Dask | {dask:.2f} s | {dask / 100 * 1e3:.1f} ms per stage, "
              f"{(dask - local) / 100 * 1e3:.1f} ms more than local |")
        sweep = project(work / "sweep", 200, "sleep 0.1 && echo {i} > o{i}.txt")
        one = timed(sweep)
        two = timed(sweep, "--executor", "dask", "--scheduler", address, "-j", "2")
        print(f"| sweep of 200 stages of 0.1 s, local -j 1 | {one:.2f} s | |")
        print(f"| the same, Dask with 2 workers, -j 2 | {two:.2f} s | {two / one:.2f}x local |")
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
