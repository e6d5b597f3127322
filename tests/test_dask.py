"""The Dask executor against a real scheduler and two workers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from conftest import Project  # noqa: E402
from reftool.pipeline.dask_executor import dask_resources  # noqa: E402

PIPELINE = """\
version: "1.0"
stages:
  a:
    cmd: echo "a on $(hostname)" && cat in.txt in.txt > a.txt
    deps: [in.txt]
    outs: [a.txt]
  b:
    cmd: cat a.txt > b.txt
    deps: [a.txt]
    outs: [b.txt]
    resources: {cpus: 1, memory: 64MiB}
  c:
    cmd: mkdir -p d && echo c > d/c.txt
    outs: [d/]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "2"}
        self.scheduler = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", str(self.port), "--no-dashboard"], cwd=tmp, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.workers = [subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", self.address,
             "--nthreads", "1", "--no-dashboard", "--no-nanny", "--host", "127.0.0.1",
             "--resources", "CPU=2,MEMORY=1e9"], cwd=tmp, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
        from distributed import Client
        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(self.address, timeout=5) as client:
                    client.wait_for_workers(2, timeout=30)
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def stop(self) -> None:
        for p in [*self.workers, self.scheduler]:
            if p.poll() is None:
                p.kill()
            p.wait()


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    yield c
    c.stop()


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reftool", "run", *args], cwd=root,
                          capture_output=True, text=True, timeout=180)


def lock_entries(root: Path) -> dict:
    return json.loads((root / "pipeline.lock").read_text())["stages"]


def test_resources_map_onto_dask_worker_resources() -> None:
    # [pipeline.resources]
    assert dask_resources({}) is None
    assert dask_resources({"cpus": 2, "gpus": 1, "memory": "4GiB"}) == {
        "CPU": 2.0, "GPU": 1.0, "MEMORY": 4 * 2**30}
    assert dask_resources({"memory": 512}) == {"MEMORY": 512.0}


def test_a_pipeline_through_dask_equals_a_local_run(project: Project, cluster: Cluster,
                                                    tmp_path_factory) -> None:
    project.base(PIPELINE, **{"in.txt": "x\n"})
    r = run(project.root, "--executor", "dask", "--scheduler", cluster.address, "-j", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[a] a on" in r.stdout
    remote_lock = lock_entries(project.root)
    local = tmp_path_factory.mktemp("local")
    for name in ("pipeline.yaml", "in.txt"):
        (local / name).write_text((project.root / name).read_text())
    assert run(local).returncode == 0
    assert lock_entries(local) == remote_lock
    r = run(project.root, "--executor", "dask", "--scheduler", cluster.address)
    assert r.stdout == "Nothing to run: 3 stages up to date.\n"


def test_a_worker_killed_mid_stage_is_replaced(project: Project, cluster: Cluster) -> None:
    project.base(PIPELINE.replace("cat a.txt > b.txt",
                                  'echo $PPID >> worker.pids; if [ ! -e second ]; then '
                                  'touch second; sleep 30; fi; cat a.txt > b.txt'),
                 **{"in.txt": "x\n"})
    p = subprocess.Popen([sys.executable, "-m", "reftool", "run", "--executor", "dask",
                          "--scheduler", cluster.address], cwd=project.root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids = project.root / "worker.pids"
    deadline = time.monotonic() + 60
    while not pids.exists() or not pids.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(int(pids.read_text().split()[0]), signal.SIGKILL)  # the worker running b
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, out + err
    assert set(lock_entries(project.root)) == {"a", "b", "c"}
    assert len(set(pids.read_text().split())) == 2  # b ran again, on the other worker


def test_scheduler_unreachable_is_a_clear_error(project: Project) -> None:
    project.base(PIPELINE, **{"in.txt": "x\n"})
    r = run(project.root, "--executor", "dask", "--scheduler",
            f"tcp://127.0.0.1:{_free_port()}")
    assert r.returncode == 1
    assert "cannot reach the Dask scheduler" in r.stderr and "the lock is as it was" in r.stderr
    assert not (project.root / "pipeline.lock").exists()


def test_scheduler_stopped_mid_run(project: Project, cluster: Cluster) -> None:
    project.base(PIPELINE.replace("cat a.txt > b.txt", "touch started; sleep 20; cat a.txt > "
                                  "b.txt"), **{"in.txt": "x\n"})
    p = subprocess.Popen([sys.executable, "-m", "reftool", "run", "--executor", "dask",
                          "--scheduler", cluster.address, "--keep-going"], cwd=project.root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (project.root / "started").exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    cluster.scheduler.kill()
    out, err = p.communicate(timeout=120)
    assert p.returncode == 1, out + err
    assert "b: FAILED: the cluster did not run it" in out
    entries = lock_entries(project.root)
    assert "a" in entries and "b" not in entries  # what finished stays recorded


def test_dask_settings_from_reftool_toml(project: Project, cluster: Cluster) -> None:
    project.base(PIPELINE, **{"in.txt": "x\n"})
    project.write("reftool.toml", f'[executor]\nkind = "dask"\nscheduler = "{cluster.address}"\n')
    r = run(project.root)
    assert r.returncode == 0, r.stderr
    project.write("reftool.toml", '[executor]\nkind = "dask"\n')
    r = run(project.root, "--force")
    assert r.returncode == 2 and "needs a scheduler" in r.stderr


def test_ctrl_c_cancels_the_cluster_tasks(project: Project, cluster: Cluster) -> None:
    project.base(PIPELINE.replace("cat a.txt > b.txt", "echo $$ > stage.pid; sleep 60; cat "
                                  "a.txt > b.txt"), **{"in.txt": "x\n"})
    p = subprocess.Popen([sys.executable, "-m", "reftool", "run", "--executor", "dask",
                          "--scheduler", cluster.address], cwd=project.root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid_file = project.root / "stage.pid"
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, out + err
    stage = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while Path(f"/proc/{stage}").exists() and Path(f"/proc/{stage}/stat").read_text(
            ).rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the stage still runs on the worker"
        time.sleep(0.1)
    assert "b" not in lock_entries(project.root)
