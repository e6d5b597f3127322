"""A shared cache in a folder: push, pull, and run restoring from it (issue: scale past one
machine, the remote-cache part)."""

from __future__ import annotations

import shutil

import pytest
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
    from reftool.pipeline.store import Remote, Store
    project.base(PIPELINE, **{"in.txt": "data\n"})
    remote_dir = tmp_path_factory.mktemp("remote")
    cli(project.root, "run", "-q")
    remote = Remote(str(remote_dir), jobs=1)  # one transfer at a time: which one dies is known
    store = Store(project.root)
    import reftool.pipeline.store as store_module
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
    r = cli(project.root, "run", "--remote", "nosuch://bucket/x")
    assert r.returncode == 2 and "remote 'nosuch://bucket/x'" in r.stderr


# ---------------------------------------------------------------------------------- S3

def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def s3(tmp_path_factory) -> dict[str, str]:
    """An S3 server on 127.0.0.1 (moto's server mode), and the environment that reaches it:
    credentials come from the environment, as the storage library reads them."""
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    import time
    import urllib.request
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except OSError:
            assert time.monotonic() < deadline, "moto did not start"
            time.sleep(0.2)
    r = subprocess.run([sys.executable, "-c", "import s3fs; s3fs.S3FileSystem().mkdir('cache')"],
                       env={**__import__("os").environ, **env}, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    yield env
    server.kill()
    server.wait()


def test_s3_remote_push_and_restore(project: Project, tmp_path_factory, s3) -> None:
    project.base(PIPELINE, **{"in.txt": "data\n"})
    assert cli(project.root, "run", "-q").returncode == 0
    r = cli(project.root, "push", "--remote", "s3://cache/team", env=s3)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("pushed 3 object(s) and 2 run(s) to s3://cache/team")
    other = clone(project.root, tmp_path_factory.mktemp("c") / "clone")
    r = cli(other, "run", "--remote", "s3://cache/team", env=s3)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "restored from cache 2" in r.stdout and "ran-a" not in r.stdout
    assert (other / "d/y").read_text() == "data\n"
    third = clone(project.root, tmp_path_factory.mktemp("t") / "third")
    r = cli(third, "pull", "--remote", "s3://cache/team", env=s3)
    assert r.returncode == 0 and "pulled 2 run(s)" in r.stdout


def test_s3_corrupt_object_not_used(project: Project, tmp_path_factory, s3) -> None:
    project.base(PIPELINE, **{"in.txt": "data\n"})
    cli(project.root, "run", "-q")
    cli(project.root, "push", "--remote", "s3://cache/x", env=s3)
    code = ("import s3fs\nfs = s3fs.S3FileSystem()\n"
            "for p in fs.find('cache/x/objects'):\n    fs.pipe_file(p, b'tampered')\n")
    subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, **s3},
                   check=True, capture_output=True)
    other = clone(project.root, tmp_path_factory.mktemp("c") / "clone")
    r = cli(other, "run", "--remote", "s3://cache/x", env=s3)
    assert r.returncode == 0 and "ran-a" in r.stdout and "ran-b" in r.stdout


def test_s3_unreachable_is_a_clear_error(project: Project) -> None:
    pytest.importorskip("s3fs")
    project.base(PIPELINE, **{"in.txt": "data\n"})
    cli(project.root, "run", "-q")
    env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION":
           "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_free_port()}",
           "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard"}
    r = cli(project.root, "push", "--remote", "s3://cache/x", env=env)
    assert r.returncode == 1 and "push failed" in r.stderr
    assert "Traceback" not in r.stderr


MANY = "version: \"1.0\"\nstages:\n" + "".join(
    f"  s{i}:\n    cmd: echo {i} > s{i}.txt\n    outs: [s{i}.txt]\n" for i in range(6))


def test_a_remote_out_of_reach_is_said_once_and_the_run_goes_on(project: Project) -> None:
    # scale review R9: 9-13 s per stage, silently (102 stages: 75 done after 600 s)
    pytest.importorskip("s3fs")
    project.base(MANY)
    env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION":
           "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_free_port()}"}
    r = cli(project.root, "run", "--remote", "s3://cache/x", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ran 6" in r.stdout
    assert r.stderr.count("is out of reach") == 1 and "going on without it" in r.stderr


def test_a_corrupt_remote_object_is_said_and_the_next_push_replaces_it(
        project: Project, tmp_path_factory) -> None:
    # scale review R4: pull said "pulled 6 run(s)" of 7 and push "pushed 0": never repaired
    project.base(PIPELINE, **{"in.txt": "data\n"})
    remote = tmp_path_factory.mktemp("remote")
    cli(project.root, "run", "-q")
    cli(project.root, "push", "--remote", str(remote))
    victim = sorted((remote / "objects").glob("*/*"))[0]
    good = victim.read_bytes()
    victim.write_bytes(bytes([good[0] ^ 1]) + good[1:])  # one bit, same size
    r = cli(project.root, "cache", "verify", "--remote", str(remote))
    assert r.returncode == 1 and "is corrupt" in r.stdout
    other = clone(project.root, tmp_path_factory.mktemp("c") / "clone")
    r = cli(other, "pull", "--remote", str(remote))
    assert r.returncode == 1 and "is corrupt" in r.stderr and "not used" in r.stderr
    r = cli(other, "run", "--remote", str(remote))  # recomputes what it could not restore
    assert r.returncode == 0 and "is corrupt" in r.stderr
    r = cli(other, "push", "--remote", str(remote))  # its cache holds the object: replaced
    assert r.returncode == 0, r.stderr
    assert victim.read_bytes() == good
    assert cli(project.root, "cache", "verify", "--remote", str(remote)).returncode == 0
    third = clone(project.root, tmp_path_factory.mktemp("t") / "third")
    r = cli(third, "run", "--remote", str(remote))
    assert "restored from cache 2" in r.stdout and "corrupt" not in r.stderr


def test_cache_verify_and_gc(project: Project) -> None:
    project.base(PIPELINE, **{"in.txt": "data\n"})
    cli(project.root, "run", "-q")
    project.write("in.txt", "other\n")
    cli(project.root, "run", "-q")
    r = cli(project.root, "cache", "verify")
    assert r.returncode == 0 and r.stdout.endswith(": 0 corrupt\n")
    objects = sorted((project.root / ".reftool/cache/objects").glob("*/*"))
    r = cli(project.root, "cache", "gc", "--dry-run")
    assert r.stdout.startswith("would remove 0 run entries and 0 object(s)")  # all needed
    r = cli(project.root, "cache", "gc", "--older-than", "0")
    assert r.returncode == 0 and r.stdout.startswith("removed 2 run entries"), r.stdout
    left = sorted((project.root / ".reftool/cache/objects").glob("*/*"))
    assert 0 < len(left) < len(objects)
    cli(project.root, "run", "--force", "-q")  # what the lock's stages need is still there
    assert cli(project.root, "plan", "--exit-code").returncode == 0
    left[0].write_bytes(b"x")
    r = cli(project.root, "cache", "verify", "--repair")
    assert r.returncode == 1 and "(removed)" in r.stdout and not left[0].exists()


def test_a_users_own_settings_are_not_committed(project: Project, tmp_path_factory) -> None:
    # the remote and scheduler of one user, in the uncommitted .reftool/config.toml
    project.base(PIPELINE, **{"in.txt": "data\n"})
    mine, team = tmp_path_factory.mktemp("mine"), tmp_path_factory.mktemp("team")
    project.write("reftool.toml", f'[cache]\nremote = "{team}"\n')
    project.write(".reftool/config.toml", f'[cache]\nremote = "{mine}"\n')
    cli(project.root, "run", "-q")
    assert cli(project.root, "push").returncode == 0
    assert list((mine / "objects").glob("*/*")) and not (team / "objects").exists()
    project.write(".reftool/config.toml", "[cache]\nremote = 3\n")
    r = cli(project.root, "push")
    assert r.returncode == 1 and ".reftool/config.toml: schema/type" in r.stderr
