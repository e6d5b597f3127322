"""The README's SLURM recipe (examples/slurm/reftool_slurm.py) on a stand-in for SLURM.

There is no SLURM here, so `sbatch` and `scancel` are small scripts on PATH that do what SLURM
does with a job script: run it (in the background, in a session of its own) with the
environment SLURM gives a job, `SLURM_JOB_ID` and, for `--gres=gpu:N`, `CUDA_VISIBLE_DEVICES`;
and kill it. Everything else is real: dask-jobqueue writes the job script, the job starts a real
Dask worker that advertises the stage's resources, and reftool runs the stage on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dask_jobqueue")

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "examples" / "slurm" / "reftool_slurm.py"

SBATCH = """#!/usr/bin/env bash
# a stand-in for sbatch: run the job script in its own session, as a job with GPU 3 would run
set -eu
id=$((RANDOM + 1000))
script="$JOBS/$id.sh"
cp "${@: -1}" "$script"  # as sbatch does: the caller may delete its file once submitted
gres=$(grep -o -- '--gres=gpu:[0-9]*' "$script" || true)
env_gpu=""
if [ -n "$gres" ]; then env_gpu="CUDA_VISIBLE_DEVICES=3"; fi
SLURM_JOB_ID=$id env $env_gpu setsid bash "$script" >"$JOBS/$id.out" 2>&1 </dev/null &
echo $! >"$JOBS/$id.pid"
echo "Submitted batch job $id"
"""

SCANCEL = """#!/usr/bin/env bash
# a stand-in for scancel: kill the job's whole session
for id in "$@"; do
  [ -f "$JOBS/$id.pid" ] && kill -TERM -- -"$(cat "$JOBS/$id.pid")" 2>/dev/null || true
  echo "$id" >>"$JOBS/cancelled"
done
"""

PIPELINE = """version: "1.0"
stages:
  train:
    cmd: echo "gpu=$CUDA_VISIBLE_DEVICES job=$SLURM_JOB_ID" > seen.txt
    outs: [seen.txt]
    resources: {gpus: 1, cpus: 1}
"""


def fake_slurm(tmp: Path) -> dict[str, str]:
    bin_dir, jobs = tmp / "bin", tmp / "jobs"
    bin_dir.mkdir()
    jobs.mkdir()
    for name, text in (("sbatch", SBATCH), ("scancel", SCANCEL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID")}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", JOBS=str(jobs), DASK_DISTRIBUTED__SCHEDULER__WORK_STEALING="False")
    # the scheduler this process starts listens on loopback only
    env["DASK_JOBQUEUE__SLURM__SCHEDULER_OPTIONS__HOST"] = "127.0.0.1"
    return env


def test_a_stage_runs_in_a_slurm_job_with_its_gpu_and_the_jobs_are_cancelled(
        tmp_path: Path) -> None:
    env = fake_slurm(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    (project / "pipeline.yaml").write_text(PIPELINE)
    r = subprocess.run([sys.executable, str(RECIPE), "--jobs", "1", "--cores", "1",
                        "--memory", "1GB", "--gpus", "1", "--timeout", "120", "--", "run"],
                       cwd=project, env=env, capture_output=True, text=True, timeout=240)
    jobs = tmp_path / "jobs"
    logs = "".join(p.read_text() for p in jobs.glob("*.out"))
    assert r.returncode == 0, r.stdout + r.stderr + logs
    job_ids = [p.stem for p in jobs.glob("*.pid")]
    assert len(job_ids) == 1
    # the job's GPU and id reached the stage: it ran in the worker's environment ([tool.dask])
    assert (project / "seen.txt").read_text() == f"gpu=3 job={job_ids[0]}\n"
    assert "train" in (project / "pipeline.lock").read_text()
    # the recipe cancels its jobs when reftool ends
    assert (jobs / "cancelled").read_text().split() == job_ids


def test_a_stage_asking_more_gpus_than_a_job_has_is_refused_naming_it(tmp_path: Path) -> None:
    env = fake_slurm(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    (project / "pipeline.yaml").write_text(PIPELINE.replace("gpus: 1", "gpus: 2"))
    r = subprocess.run([sys.executable, str(RECIPE), "--jobs", "1", "--gpus", "1",
                        "--timeout", "120", "--", "run"],
                       cwd=project, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "train" in r.stderr and "GPU" in r.stderr
    assert not (project / "seen.txt").exists()
