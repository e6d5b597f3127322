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


BLOCK_REFTOOL = ("import sys; sys.modules['reftool'] = None; "
                 "from distributed.cli.dask_worker import main; sys.exit(main())")


class Cluster:
    def __init__(self, tmp: Path, *, workers: int = 2, worker_env: dict[str, str] | None = None,
                 resources: str = "CPU=2,MEMORY=1e9", without_reftool: bool = False) -> None:
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "2"}
        worker = ["-c", BLOCK_REFTOOL] if without_reftool else ["-m",
                                                                "distributed.cli.dask_worker"]
        self.scheduler = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", str(self.port), "--no-dashboard"], cwd=tmp, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.workers = [subprocess.Popen(
            [sys.executable, *worker, self.address,
             "--nthreads", "1", "--no-dashboard", "--no-nanny", "--host", "127.0.0.1",
             *(["--resources", resources] if resources else [])], cwd=tmp,
            env={**env, **(worker_env or {})},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(workers)]
        from distributed import Client
        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(self.address, timeout=5) as client:
                    client.wait_for_workers(workers, timeout=30)
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


APPENDING = """\
version: "1.0"
stages:
  b:
    cmd: >-
      echo $$ >> stage.pids;
      for i in 1 2 3 4 5 6 7 8; do echo $i >> out.txt; sleep 0.4; done
    outs: [out.txt]
"""


def _worker_of(cluster: Cluster, pid: int) -> int:
    """The cluster worker process that `pid` descends from."""
    workers = {w.pid for w in cluster.workers}
    while pid not in workers:
        assert pid > 1, "the stage does not run under a worker"
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return pid


def test_a_worker_killed_mid_stage_is_replaced_and_its_attempt_dies(
        project: Project, cluster: Cluster) -> None:
    # scale review D7: the killed worker's attempt went on appending beside the retry (14 and
    # 13 lines instead of 8, recorded and cached); it must be dead before the retry starts
    project.base(APPENDING)
    p = subprocess.Popen([sys.executable, "-m", "reftool", "run", "--executor", "dask",
                          "--scheduler", cluster.address], cwd=project.root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids, out = project.root / "stage.pids", project.root / "out.txt"
    deadline = time.monotonic() + 60
    while not out.exists() or len(out.read_text().split()) < 2:
        assert time.monotonic() < deadline and p.poll() is None
        time.sleep(0.05)
    first = _worker_of(cluster, int(pids.read_text().split()[0]))
    os.kill(first, signal.SIGKILL)  # the worker running b
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 0, stdout + stderr
    assert len(pids.read_text().split()) == 2  # b ran again, on the other worker
    expected = "".join(f"{i}\n" for i in range(1, 9))
    assert out.read_text() == expected
    time.sleep(4)  # an orphan of the first attempt would still be appending
    assert out.read_text() == expected
    entry = lock_entries(project.root)["b"]["outs"]["out.txt"]
    assert entry["size"] == len(expected)


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
    assert "Traceback" not in err and len(err.splitlines()) <= 3, err  # D9: 30 lines of it
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


def run_with(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reftool", "run", *args], cwd=root,
                          capture_output=True, text=True, timeout=180, env={**os.environ, **env})


ENV_PIPELINE = """\
version: "1.0"
stages:
  show:
    cmd: >-
      echo "cuda=$${CUDA_VISIBLE_DEVICES-unset} worker=$${WORKER_ONLY-unset}
      secret=$${MY_SECRET-unset} declared=$${DECLARED-unset} stage=$REFTOOL_STAGE" > env.txt
    env: [DECLARED]
    outs: [env.txt]
"""


def test_a_stage_runs_in_its_worker_environment(project: Project,
                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    # scale review D14: the coordinator's whole environment (a secret included) replaced the
    # worker's (CUDA_VISIBLE_DEVICES, SLURM_*, PATH)
    cluster = Cluster(tmp_path_factory.mktemp("cluster"), workers=1,
                      worker_env={"CUDA_VISIBLE_DEVICES": "1", "WORKER_ONLY": "yes"})
    try:
        project.base(ENV_PIPELINE)
        r = run_with(project.root, {"MY_SECRET": "s3cr3t", "DECLARED": "from-coordinator",
                                    "CUDA_VISIBLE_DEVICES": "7"},
                     "--executor", "dask", "--scheduler", cluster.address)
    finally:
        cluster.stop()
    assert r.returncode == 0, r.stdout + r.stderr
    assert (project.root / "env.txt").read_text() == (
        "cuda=1 worker=yes secret=unset declared=from-coordinator stage=show\n")
    assert set(lock_entries(project.root)["show"]["env"]) == {"DECLARED"}


def test_a_stage_no_worker_can_hold_fails_at_once(project: Project, cluster: Cluster) -> None:
    # scale review D5: `gpus: 2` with no GPU worker (or cpus/memory on workers started without
    # --resources) waited forever, saying "running"
    project.base(PIPELINE + "  big:\n    cmd: echo big > big.txt\n    outs: [big.txt]\n"
                 "    resources: {gpus: 2, memory: 64MiB}\n", **{"in.txt": "x\n"})
    started = time.monotonic()
    r = run(project.root, "--executor", "dask", "--scheduler", cluster.address)
    assert time.monotonic() - started < 60
    assert r.returncode == 1, r.stdout + r.stderr
    assert "stage 'big' needs GPU=2" in r.stderr and "--resources" in r.stderr
    assert "nothing was run" in r.stderr
    assert not (project.root / "pipeline.lock").exists()


def test_a_worker_without_reftool_is_named_at_once(project: Project,
                                                   tmp_path_factory: pytest.TempPathFactory
                                                   ) -> None:
    # scale review D13: the worker logged ModuleNotFoundError and the user saw "running" forever
    cluster = Cluster(tmp_path_factory.mktemp("cluster"), workers=1, without_reftool=True)
    try:
        project.base(PIPELINE, **{"in.txt": "x\n"})
        r = run(project.root, "--executor", "dask", "--scheduler", cluster.address)
    finally:
        cluster.stop()
    assert r.returncode == 1, r.stdout + r.stderr
    assert "cannot import reftool" in r.stderr and "nothing was run" in r.stderr
    assert not (project.root / "pipeline.lock").exists()


def test_jobs_default_to_the_cluster_threads(project: Project, cluster: Cluster) -> None:
    # scale review D18: --executor dask alone ran one stage at a time on a two-worker cluster.
    # Each stage waits (up to 30 s) for the other to have started: one at a time, both fail.
    def stage(me: str, other: str) -> str:
        return (f"  {me}:\n    cmd: touch {me}.started; for i in $(seq 300); do "
                f"[ -e {other}.started ] && break; sleep 0.1; done; "
                f"test -e {other}.started && echo ok > {me}.txt\n    outs: [{me}.txt]\n")
    project.base('version: "1.0"\nstages:\n' + stage("s0", "s1") + stage("s1", "s0"))
    r = run(project.root, "--executor", "dask", "--scheduler", cluster.address)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_worker_seeing_other_dep_contents_refuses_to_run(tmp_path: Path) -> None:
    # scale review D15: a worker with a stale src/ ran old code, recorded as the new code's digest
    from reftool.pipeline.dask_executor import Task, run_on_worker
    from reftool.pipeline.hashing import hash_file
    dep = tmp_path / "train.py"
    dep.write_text("print('new')\n")
    st = dep.stat()
    seen = {str(dep): (st.st_size, st.st_mtime_ns, hash_file(dep))}
    task = Task(key="k", stage="s", commands=("echo ran > out.txt",), cwd=str(tmp_path),
                env={}, reftool_env={}, outputs=(str(tmp_path / "out.txt"),), deps=seen,
                claims=str(tmp_path / "claims"), log=str(tmp_path / "s.log"))
    assert run_on_worker(task)["code"] == 0 and (tmp_path / "out.txt").exists()
    dep.write_text("print('old')\n")  # what another machine's copy holds: same size
    os.utime(dep, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    (tmp_path / "out.txt").unlink()
    result = run_on_worker(task)
    assert result["stale_deps"] == [str(dep)] and not (tmp_path / "out.txt").exists()
    os.utime(dep, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and time: trusted
    dep.write_text("print('new')\n")
    os.utime(dep, ns=(st.st_atime_ns, st.st_mtime_ns + 5))  # touched, same bytes: hashed, runs
    assert run_on_worker(task)["code"] == 0


def test_a_worker_seeing_other_directory_contents_refuses_to_run(tmp_path: Path) -> None:
    # a directory dep (src/) is compared too, by a stat walk under its rules: a file more, a
    # file edited, refuse; an excluded __pycache__ written on the worker does not count
    from reftool.files.ignore import rules_for
    from reftool.pipeline.dask_executor import Task, directory_listing, run_on_worker
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "a.py").write_text("a = 1\n")
    (src / "pkg" / "b.py").write_text("b = 2\n")
    rules = rules_for("src/", (), ("__pycache__/",))
    task = Task(key="k", stage="s", commands=("echo ran > out.txt",), cwd=str(tmp_path),
                env={}, reftool_env={}, outputs=(str(tmp_path / "out.txt"),), deps={},
                claims=str(tmp_path / "claims"), log=str(tmp_path / "s.log"),
                dir_deps={str(src): (directory_listing(str(src), rules), rules)})
    assert run_on_worker(task)["code"] == 0
    (src / "pkg" / "__pycache__").mkdir()
    (src / "pkg" / "__pycache__" / "b.pyc").write_bytes(b"x")
    assert run_on_worker(task)["code"] == 0  # excluded: not part of what the stage reads
    (src / "pkg" / "c.py").write_text("c = 3\n")
    assert run_on_worker(task)["stale_deps"] == [str(src)]
    (src / "pkg" / "c.py").unlink()
    st = (src / "a.py").stat()
    os.utime(src / "a.py", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert run_on_worker(task)["stale_deps"] == [str(src)]


def test_environment_and_placement_rules() -> None:
    from reftool.pipeline.dask_executor import stage_environment, unplaceable
    env = stage_environment({"PATH": "/w/bin", "A": "worker", "B": "worker"},
                            {"A": "coordinator", "B": None}, {"REFTOOL_STAGE": "s"})
    assert env == {"PATH": "/w/bin", "A": "coordinator", "REFTOOL_STAGE": "s"}
    workers = {"tcp://w1": {"CPU": 4.0, "GPU": 1.0}, "tcp://w2": {"CPU": 1.0}}
    assert unplaceable({"CPU": 2.0, "GPU": 1.0}, workers) is None
    why = unplaceable({"CPU": 2.0, "GPU": 2.0}, workers)
    assert why is not None and "needs CPU=2, GPU=2" in why and "tcp://w2: CPU=1" in why
    assert "no workers" in (unplaceable({"CPU": 1.0}, {}) or "")


def test_stage_output_is_streamed_as_it_comes(project: Project, cluster: Cluster) -> None:
    # scale review D16: every line arrived when the stage ended
    project.base('version: "1.0"\nstages:\n  s:\n    cmd: echo first; sleep 5; echo last > s.txt\n'
                 '    outs: [s.txt]\n')
    p = subprocess.Popen([sys.executable, "-m", "reftool", "run", "--executor", "dask",
                          "--scheduler", cluster.address], cwd=project.root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    for line in p.stdout:
        if line == "[s] first\n":
            assert not (project.root / "s.txt").exists()  # the stage has not ended
            break
    else:
        raise AssertionError("the stage's first line never came")
    rest, err = p.communicate(timeout=120)
    assert p.returncode == 0, rest + err


def test_a_chatty_stage_is_shown_bounded_and_logged_whole(project: Project,
                                                          cluster: Cluster) -> None:
    # scale review D16: 67 MB of stage output took the client to 357 MB
    project.base('version: "1.0"\nstages:\n  s:\n    cmd: seq 400000 && echo ok > s.txt\n'
                 '    outs: [s.txt]\n')
    r = run(project.root, "--executor", "dask", "--scheduler", cluster.address)
    assert r.returncode == 0, r.stdout + r.stderr
    shown = [line for line in r.stdout.splitlines() if line.startswith("[s] ")]
    assert len(shown) < 400000 and "of output not shown here" in r.stdout
    log = (project.root / ".reftool" / "logs" / "s.log").read_text().split()
    assert log == [str(i) for i in range(1, 400001)]
