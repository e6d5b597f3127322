#!/usr/bin/env python3
"""Run a reftool pipeline on SLURM: Dask workers as SLURM jobs (dask-jobqueue), stages on them.

    python reftool_slurm.py --jobs 2 --cores 8 --memory 32GB --gpus 1 -- run -j 4

Starts a Dask scheduler in this process (on the login node), submits `--jobs` SLURM jobs, each
one Dask worker advertising the resources a stage's `resources:` asks for (CPU, GPU, MEMORY, as
[pipeline.resources] in SPEC.md names them), waits for them, runs `reftool ARGS --executor dask
--scheduler ADDRESS` from the current directory, and cancels the jobs when reftool ends, whatever
the way it ends. Each stage runs in its worker's environment ([tool.dask]), so what SLURM sets in a
job (`CUDA_VISIBLE_DEVICES` for the GPUs of `--gres`, `SLURM_JOB_ID`) reaches the stage.
The project must be on a file system the compute nodes see at the same absolute path, and reftool
installed in the Python the jobs run (`--python`, default: this one).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from dask.utils import parse_bytes


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    ours, _, theirs = (argv[:argv.index("--")], "--", argv[argv.index("--") + 1:]) \
        if "--" in argv else (argv, "", ["run"])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1, help="SLURM jobs, one Dask worker each")
    ap.add_argument("--cores", type=int, default=1, help="CPUs per job (the worker's CPU)")
    ap.add_argument("--memory", default="4GB", help="memory per job (the worker's MEMORY)")
    ap.add_argument("--gpus", type=int, default=0, help="GPUs per job, asked with --gres")
    ap.add_argument("--walltime", default="01:00:00")
    ap.add_argument("--queue", help="the SLURM partition")
    ap.add_argument("--account")
    ap.add_argument("--python", default=sys.executable, help="the Python the jobs run")
    ap.add_argument("--timeout", type=float, default=600, help="seconds to wait for the workers")
    return ap.parse_args(ours), theirs


def resources(a: argparse.Namespace) -> str:
    """The worker's resources, in the names [pipeline.resources] maps a stage's resources to."""
    advertised = {"CPU": a.cores, "MEMORY": int(parse_bytes(a.memory)), "GPU": a.gpus}
    return ",".join(f"{k}={v}" for k, v in advertised.items() if v)


def main(argv: list[str]) -> int:
    a, reftool_args = parse(argv)
    from dask.distributed import Client
    from dask_jobqueue import SLURMCluster
    cluster = SLURMCluster(
        cores=a.cores, processes=1, memory=a.memory, walltime=a.walltime, queue=a.queue,
        account=a.account, python=a.python,
        job_extra_directives=[f"--gres=gpu:{a.gpus}"] if a.gpus else [],
        worker_extra_args=["--resources", resources(a)])
    try:
        cluster.scale(jobs=a.jobs)
        with Client(cluster) as client:
            try:
                client.wait_for_workers(a.jobs, timeout=a.timeout)
            except TimeoutError:
                print(f"reftool_slurm: {len(client.scheduler_info()['workers'])} of {a.jobs} "
                      f"workers started within {a.timeout:g} s; see squeue and the jobs' "
                      "output files", file=sys.stderr)
                return 1
        return subprocess.call([sys.executable, "-m", "reftool", *reftool_args,
                                "--executor", "dask", "--scheduler", cluster.scheduler_address])
    finally:
        cluster.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
