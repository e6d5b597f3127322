"""A shared cache in a folder: push, pull, and run restoring from it (issue: scale past one
machine, the remote-cache part)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import Project

PIPELINE = """\
version: "1.0"
stages:
  a:
    cmd: echo ran-a && cat in.txt in.txt > a.txt
    deps: [in.txt]
    outs: [a.txt]
  b:
    cmd: echo ran-b && mkdir -p d && cp a.txt d/x && cp in.txt d/y
    deps: [a.txt]
    outs: [d/]
"""


def cli(root: Path, *args: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    import os
    return subprocess.run([sys.executable, "-m", "reftool", *args], cwd=root,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def clone(src: Path, dst: Path) -> Path:
    """What a colleague has: the committed files, no outputs, no local cache."""
    dst.mkdir()
    for name in ("pipeline.yaml", "pipeline.lock", "in.txt"):
        shutil.copy(src / name, dst / name)
    return dst


def test_push_then_a_clone_restores_everything_without_running(project: Project,
                                                                tmp_path_factory) -> None:
    project.base(PIPELINE, **{"in.txt": "data\n"})
    remote = tmp_path_factory.mktemp("remote")
    assert cli(project.root, "run", "-q").returncode == 0
    r = cli(project.root, "push", "--remote", str(remote))
    assert r.returncode == 0 and r.stdout.startswith("pushed 3 object(s) and 2 run(s)")  # d/x = a.txt
    assert cli(project.root, "push", "--remote", str(remote)).stdout.startswith(
        "pushed 0 object(s) and 0 run(s)")  # idempotent
    other = clone(project.root, tmp_path_factory.mktemp("c") / "clone")
    plan = cli(other, "plan", env={"REFTOOL_REMOTE": str(remote)})
    assert "a: restore" in plan.stdout
    r = cli(other, "run", "--remote", str(remote))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ran-a" not in r.stdout and "ran-b" not in r.stdout
    assert "restored from cache 2" in r.stdout
    assert (other / "d/x").read_text() == "data\ndata\n"
    assert cli(other, "plan", "--exit-code").returncode == 0


def test_pull_then_run_offline(project: Project, tmp_path_factory) -> None:
    project.base(PIPELINE, **{"in.txt": "data\n"})
    remote = tmp_path_factory.mktemp("remote")
    project.write("reftool.toml", f'[cache]\nremote = "file://{remote}"\n')
    cli(project.root, "run", "-q")
    assert cli(project.root, "push").returncode == 0  # remote from reftool.toml
    other = clone(project.root, tmp_path_factory.mktemp("c") / "clone")
    r = cli(other, "pull", "--remote", str(remote))
    assert r.returncode == 0 and "pulled 2 run(s)" in r.stdout
    shutil.rmtree(remote)  # gone: the local cache has everything now
    r = cli(other, "run")
    assert "restored from cache 2" in r.stdout and "ran-a" not in r.stdout


def test_a_corrupt_remote_object_is_not_used(project: Project, tmp_path_factory) -> None:
    project.base(PIPELINE, **{"in.txt": "data\n"})
    remote = tmp_path_factory.mktemp("remote")
    cli(project.root, "run", "-q")
    cli(project.root, "push", "--remote", str(remote))
    for obj in (remote / "objects").glob("*/*"):
        obj.write_bytes(b"tampered")
    other = clone(project.root, tmp_path_factory.mktemp("c") / "clone")
    r = cli(other, "run", "--remote", str(remote))
    assert r.returncode == 0
    assert "ran-a" in r.stdout and "ran-b" in r.stdout  # ran: nothing corrupt was restored
    assert not any(p.name for p in (other / ".reftool/cache/objects").glob("*/.*"))


def test_an_interrupted_push_leaves_nothing_visible(project: Project, tmp_path_factory) -> None:
    from reftool.store import Remote, Store
    project.base(PIPELINE, **{"in.txt": "data\n"})
    remote_dir = tmp_path_factory.mktemp("remote")
    cli(project.root, "run", "-q")
    remote = Remote(str(remote_dir))
    store = Store(project.root)
    import reftool.store as store_module
    real = store_module._copy_hashing
    calls = []

    def dying(source: Path, dest: Path) -> str:
        calls.append(dest)
        if len(calls) == 2:
            dest.write_bytes(b"half")
            raise OSError("connection lost")
        return real(source, dest)
    store_module._copy_hashing = dying
    try:
        try:
            remote.push(store)
        except OSError:
            pass
    finally:
        store_module._copy_hashing = real
    visible = [p for p in (remote_dir / "objects").glob("*/*") if not p.name.startswith(".")]
    assert len(visible) == 1  # the one object that finished; no run entry before its objects
    assert not (remote_dir / "runs").exists()
    assert remote.push(store)[0] == 2  # the rest goes on the next push


def test_no_remote_configured(project: Project) -> None:
    project.base(PIPELINE, **{"in.txt": "data\n"})
    r = cli(project.root, "push")
    assert r.returncode == 2 and "no remote" in r.stderr
    r = cli(project.root, "run", "--remote", "s3://bucket/x")
    assert r.returncode == 2 and "only folders" in r.stderr
