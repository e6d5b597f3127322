"""SPEC section 16, paths: hostile paths read from a cache, a remote, the journal and the lock
([security.paths]); outputs on reserved paths ([security.reserved]); writes through committed
links, files linked outside the project, FIFOs and devices ([security.symlinks],
[security.special-files]).

Every case runs the real command line in a child process (tests/sandbox.py): it must end
promptly with a clear result, print no traceback, and write nothing outside the project (the
fixture checks `sandbox.outside` byte for byte afterwards).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from sandbox import Sandbox

SECRET = "s3cr3t-value"

CACHED = """\
version: "1.0"
stages:
  s:
    cmd: mkdir -p d && cp src.txt d/a.txt
    deps: [src.txt]
    outs: [d/]
"""

CACHED_FILE = """\
version: "1.0"
stages:
  s:
    cmd: cp src.txt out.txt
    deps: [src.txt]
    outs: [out.txt]
"""

WITH_PARAMS = """\
version: "1.0"
stages:
  s:
    cmd: cp m.src m.json
    deps: [m.src]
    params:
      params.yaml: "*"
    metrics: [m.json]
"""


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cached_project(sandbox: Sandbox, pipeline: str = CACHED) -> str:
    """A project that ran once; returns the hex input signature of its stage."""
    sandbox.write("pipeline.yaml", pipeline)
    sandbox.write("src.txt", "hello\n")
    sandbox.run("run").assert_clean()
    runs = list((sandbox.project / ".reftool" / "cache" / "runs").glob("*.json"))
    assert len(runs) == 1
    return runs[0].name[:-5]


def forget_outputs(sandbox: Sandbox) -> None:
    """Drop the outputs and the local cache: the next run must restore or run the stage."""
    for name in ("d", "out.txt"):
        path = sandbox.project / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    shutil.rmtree(sandbox.project / ".reftool" / "cache")


def entry(signature: str, outs: dict[str, dict[str, object]]) -> bytes:
    return json.dumps({"format": "reftool-run-cache", "signature": "sha256:" + signature,
                       "outs": outs}).encode()


def put(folder: Path, rel: str, data: bytes) -> None:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def poison_dir_entry(folder: Path, signature: str, manifest: bytes) -> None:
    """A run entry for `d/` whose manifest (stored under its true digest) is `manifest`;
    every file it names exists as an object, so that only the path can be at fault."""
    body = b"#!/bin/sh\necho pwned\n"
    put(folder, f"objects/{sha(body)[:2]}/{sha(body)[2:]}", body)
    digest = sha(manifest)
    put(folder, f"objects/{digest[:2]}/{digest[2:]}", manifest)
    put(folder, f"runs/{signature}.json", entry(signature, {"d/": {
        "digest": "sha256:" + digest, "size": len(body), "files": 1, "cache": True,
        "persist": False}}))


def manifest_line(rel: str, mode: str = "x") -> bytes:
    body = b"#!/bin/sh\necho pwned\n"
    return f"{sha(body)} {len(body)} {mode} {rel}\n".encode()


def assert_ran_instead(sandbox: Sandbox, r: object, *needles: str) -> None:
    r.assert_clean()  # type: ignore[attr-defined]
    assert r.code == 0, r.err  # type: ignore[attr-defined]
    both = r.out + r.err  # type: ignore[attr-defined]
    for needle in needles:
        assert needle in both, both
    assert (sandbox.project / "d" / "a.txt").read_text() == "hello\n"
    assert not any(p.name == "x.sh" for p in sandbox.root.rglob("x.sh"))


# ---------------------------------------------------------------- 1. paths from the cache

HOSTILE_MANIFEST_PATHS = [
    "../../outside/x.sh", "../x.sh", "a/../../x.sh", "/tmp/x.sh", "a//x.sh", "./x.sh",
    "a\\..\\x.sh", "a\x01x.sh", "x.sh/", "..", ".",
]


@pytest.mark.parametrize("rel", HOSTILE_MANIFEST_PATHS)
def test_remote_manifest_paths_are_checked(sandbox: Sandbox, rel: str) -> None:
    """[security.paths]: a manifest path out of form is never joined onto a folder."""
    signature = cached_project(sandbox)
    forget_outputs(sandbox)
    remote = sandbox.allowed / "remote"
    poison_dir_entry(remote, signature, manifest_line(rel.replace("/tmp", str(sandbox.outside))))
    r = sandbox.run("run", "--remote", str(remote))
    assert_ran_instead(sandbox, r, "malformed or hostile", "remote", f"runs/{signature}.json")


@pytest.mark.parametrize("manifest", [
    b"not a manifest\n", manifest_line("a") + manifest_line("a"),
    manifest_line("a") + manifest_line("a/b"), manifest_line("a", mode="?"),
    manifest_line("a")[:-1], b"\xff\xfe\n",
], ids=["garbage", "duplicate", "file-and-folder", "mode", "no-final-lf", "not-utf8"])
def test_remote_malformed_manifests_are_not_used(sandbox: Sandbox, manifest: bytes) -> None:
    signature = cached_project(sandbox)
    forget_outputs(sandbox)
    remote = sandbox.allowed / "remote"
    poison_dir_entry(remote, signature, manifest)
    assert_ran_instead(sandbox, sandbox.run("run", "--remote", str(remote)), "malformed")


@pytest.mark.parametrize("outs", [
    {"../outside/bait.txt": {"digest": "sha256:" + "0" * 64, "size": 1, "cache": True,
                             "persist": False}},
    {"/etc/x": {"digest": "sha256:" + "0" * 64, "size": 1, "cache": True, "persist": False}},
    {"out.txt": {"digest": "sha256:../../../outside/bait", "size": 1, "cache": True,
                 "persist": False}},
    {"out.txt": {"digest": "sha256:" + "0" * 60 + "/../", "size": 1, "cache": True,
                 "persist": False}},
    {"out.txt": {"digest": "md5:abc", "size": 1, "cache": True, "persist": False}},
    {"out.txt": {"digest": "sha256:" + "0" * 64, "size": "1", "cache": True,
                 "persist": False}},
    {"out.txt": "not an object"},
], ids=["parent", "absolute", "digest-traversal", "digest-slash", "algorithm", "size",
        "shape"])
def test_remote_run_entries_are_checked(sandbox: Sandbox, outs: dict[str, object]) -> None:
    """A run entry naming an output outside the project, or a digest that is not hex."""
    signature = cached_project(sandbox, CACHED_FILE)
    forget_outputs(sandbox)
    remote = sandbox.allowed / "remote"
    put(remote, f"runs/{signature}.json", entry(signature, outs))  # type: ignore[arg-type]
    r = sandbox.run("run", "--remote", str(remote))
    r.assert_clean()
    assert r.code == 0 and "malformed or hostile" in r.err, r.err
    assert (sandbox.project / "out.txt").read_text() == "hello\n"


def test_malformed_entry_is_reported_once(sandbox: Sandbox) -> None:
    signature = cached_project(sandbox)
    forget_outputs(sandbox)
    remote = sandbox.allowed / "remote"
    poison_dir_entry(remote, signature, manifest_line("../x.sh"))
    r = sandbox.run("run", "--remote", str(remote))
    assert_ran_instead(sandbox, r)
    assert r.err.count("malformed or hostile") == 1, r.err


@pytest.mark.parametrize("where", ["runs", "objects", "entry"])
def test_links_in_a_remote_folder_are_not_followed(sandbox: Sandbox, where: str) -> None:
    """A writer of the remote points its layout outside: neither push nor run follows."""
    signature = cached_project(sandbox)
    remote = sandbox.allowed / "remote"
    remote.mkdir()
    if where == "entry":
        (remote / "runs").mkdir()
        (remote / "runs" / f"{signature}.json").symlink_to(sandbox.outside / "secret.yaml")
        forget_outputs(sandbox)
        r = sandbox.run("run", "--remote", str(remote))
        assert_ran_instead(sandbox, r)
        assert SECRET not in r.out + r.err
        return
    (remote / where).symlink_to(sandbox.outside, target_is_directory=True)
    r = sandbox.run("push", "--remote", str(remote))
    r.assert_error("symbolic link")


def test_pull_names_a_hostile_entry(sandbox: Sandbox) -> None:
    signature = cached_project(sandbox)
    forget_outputs(sandbox)
    remote = sandbox.allowed / "remote"
    poison_dir_entry(remote, signature, manifest_line("../../outside/x.sh"))
    put(remote, "runs/..%2f.json", b"{}")
    r = sandbox.run("pull", "--remote", str(remote))
    r.assert_error("malformed or hostile", f"runs/{signature}.json")


@pytest.mark.parametrize("rel", ["../../outside/x.sh", "/x.sh", "a/../../x.sh"])
def test_poisoned_local_cache(sandbox: Sandbox, rel: str) -> None:
    """The same entry planted in `.reftool/cache` (a shared checkout, a copied folder)."""
    signature = cached_project(sandbox)
    forget_outputs(sandbox)
    poison_dir_entry(sandbox.project / ".reftool" / "cache", signature, manifest_line(rel))
    r = sandbox.run("run")
    assert_ran_instead(sandbox, r, "malformed")


@pytest.mark.parametrize("line", [
    {"stage": "s", "entry": {"cmd": ["x"], "wdir": ".", "deps": {}, "params": {}, "env": {},
                             "outs": {"../outside/bait.txt": {
                                 "digest": "sha256:" + "0" * 64, "size": 1, "cache": True,
                                 "persist": False}}}},
    {"stage": "s", "entry": {"cmd": ["x"], "wdir": "../outside", "deps": {}, "params": {},
                             "env": {}, "outs": {}}},
    {"stage": "../../outside/x", "entry": None},
    {"stage": "s", "entry": {"cmd": ["x"], "wdir": ".", "deps": {"/etc/passwd": {
        "digest": "sha256:" + "0" * 64, "size": 1}}, "params": {}, "env": {}, "outs": {}}},
], ids=["out-outside", "wdir-outside", "stage-name", "absolute-dep"])
def test_poisoned_journal_is_not_applied(sandbox: Sandbox, line: dict[str, object]) -> None:
    cached_project(sandbox, CACHED_FILE)
    lock = (sandbox.project / "pipeline.lock").read_bytes()
    header = {"format": "reftool-lock-journal", "version": 1, "lock": "pipeline.lock",
              "base": sha(lock)}
    sandbox.write(".reftool/lock-journal.jsonl",
                  json.dumps(header) + "\n" + json.dumps(line) + "\n")
    for command in ("plan", "run"):
        r = sandbox.run(command)
        r.assert_clean()
        assert r.code == 0, r.out + r.err
    assert (sandbox.project / "pipeline.lock").read_bytes() == lock


@pytest.mark.parametrize("path", ["../outside/bait.txt", "/etc/passwd", "a/../b", "a\\b"])
def test_poisoned_lock_is_refused(sandbox: Sandbox, path: str) -> None:
    cached_project(sandbox, CACHED_FILE)
    lock = json.loads((sandbox.project / "pipeline.lock").read_text())
    lock["stages"]["s"]["outs"][path] = lock["stages"]["s"]["outs"].pop("out.txt")
    sandbox.write("pipeline.lock", json.dumps(lock))
    for command in ("validate", "plan", "run"):
        sandbox.run(command).assert_error("pipeline.lock", "schema/")


# ---------------------------------------------------------------- 2. reserved paths

def stage_with(section: str, path: str, extra: str = "") -> str:
    return (f'version: "1.0"\n{extra}stages:\n  s:\n    cmd: echo hi\n'
            f'    params:\n      conf/params.yaml: "*"\n    {section}: ["{path}"]\n')


RESERVED = [
    ("outs", ".git/"), ("outs", ".git"), ("outs", ".GIT/"), ("outs", ".git/hooks/pre-commit"),
    ("outs", ".reftool/"), ("outs", ".reftool/cache/"), ("outs", "experiments/"),
    ("outs", "experiments/x.json"), ("outs", "Experiments/"), ("outs", "pipeline.yaml"),
    ("outs", "pipeline.lock"), ("outs", "PIPELINE.LOCK"), ("outs", "reftool.toml"),
    ("outs", ".gitattributes"), ("outs", ".gitignore"), ("outs", ".gitmodules"),
    ("outs", "dvc.yaml"), ("outs", "dvc.lock"), ("outs", "conf/params.yaml"),
    ("outs", "conf/"), ("outs", "vars.yaml"), ("metrics", ".reftool/m.json"),
    ("plots", ".git/x.png"), ("metrics", "pipeline.lock"),
]


@pytest.mark.parametrize(("section", "path"), RESERVED)
def test_reserved_outputs_fail_validation(sandbox: Sandbox, section: str, path: str) -> None:
    """[security.reserved]; a vars file is named by its own code ([template.vars-source])"""
    sandbox.write("pipeline.yaml", stage_with(section, path, "vars: [vars.yaml]\n"))
    sandbox.write("conf/params.yaml", "lr: 1\n")
    sandbox.write("vars.yaml", "x: 1\n")
    code = "semantic/vars_generated" if path == "vars.yaml" else "semantic/reserved_path"
    sandbox.run("validate").assert_error(code, "pipeline.yaml:")


@pytest.mark.parametrize("path", ["gitx/", "experiments2/", "conf2/", "out/.git-like",
                                  "data/.gitignore-copy", "reports/pipeline.yaml"])
def test_near_misses_are_fine(sandbox: Sandbox, path: str) -> None:
    sandbox.write("pipeline.yaml", stage_with("outs", path))
    sandbox.write("conf/params.yaml", "lr: 1\n")
    r = sandbox.run("validate")
    r.assert_clean()
    assert r.code == 0, r.out


def test_reserved_paths_may_be_deps(sandbox: Sandbox) -> None:
    sandbox.write("pipeline.yaml", 'version: "1.0"\nstages:\n  s:\n    cmd: echo hi\n'
                  '    deps: [.gitignore, pipeline.yaml]\n    outs: [o.txt]\n')
    sandbox.write(".gitignore", "x\n")
    r = sandbox.run("validate")
    assert r.code == 0, r.out


def test_run_never_removes_git(sandbox: Sandbox) -> None:
    sandbox.write("pipeline.yaml", 'version: "1.0"\nstages:\n  s:\n    cmd: echo hi\n'
                  '    outs: [.git/]\n')
    sandbox.write(".git/HEAD", "ref: refs/heads/main\n")
    sandbox.run("run").assert_error("semantic/reserved_path")
    assert (sandbox.project / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"


@pytest.mark.parametrize("path", [".git/", ".GIT", "pipeline.yaml", "../outside/", "/etc/"])
def test_remove_output_refuses_reserved_paths(tmp_path: Path, path: str) -> None:
    """Defence in depth: the executor's removal refuses even when validation was bypassed."""
    from reftool.files.safe_io import UnsafePath
    from reftool.pipeline.store import remove_output
    (tmp_path / ".git").mkdir()
    (tmp_path / "pipeline.yaml").write_text("x")
    with pytest.raises(UnsafePath):
        remove_output(tmp_path, path, reserved=frozenset({"pipeline.yaml"}))
    assert (tmp_path / ".git").is_dir() and (tmp_path / "pipeline.yaml").is_file()


def test_remove_output_removes_every_kind_once_and_never_through_a_link(tmp_path: Path) -> None:
    """[exec.outputs-before]: a file, a link (not what it points at), a folder and a FIFO at
    an output path are removed; a missing output or one under a file is no error; an output
    whose folder is a link out of the project is refused, whether the caller gave the
    project's real path or not."""
    from reftool.files.safe_io import UnsafePath
    from reftool.pipeline.store import remove_output
    root = tmp_path / "p"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep\n")
    (root / "f.txt").write_text("x")
    (root / "link.txt").symlink_to(outside / "keep.txt")
    (root / "d").mkdir()
    (root / "d" / "inner.txt").write_text("x")
    os.mkfifo(root / "fifo")
    (root / "afile").write_text("x")
    (root / "out").symlink_to(outside)
    real = os.path.realpath(root)
    for path in ("f.txt", "link.txt", "d/", "fifo", "missing.txt", "afile/under.txt"):
        remove_output(root, path, real_root=real)
    assert sorted(p.name for p in root.iterdir()) == ["afile", "out"]
    assert (outside / "keep.txt").read_text() == "keep\n"
    for real_root in (None, real):
        with pytest.raises(UnsafePath):
            remove_output(root, "out/keep.txt", real_root=real_root)
    assert (outside / "keep.txt").is_file()


# ---------------------------------------------------------------- 3. writes through links

def report_project(sandbox: Sandbox) -> None:
    sandbox.write("pipeline.yaml", WITH_PARAMS)
    sandbox.write("m.src", '{"acc": 1}\n')
    sandbox.write("params.yaml", 'lr: "x\\nssh-ed25519 AAAAattacker evil"\n')


@pytest.mark.parametrize("link", [
    ("reftool-report/report.md", "home/.ssh/authorized_keys"),
    ("reftool-report", "home/.ssh"),
])
def test_report_never_writes_through_a_link(sandbox: Sandbox, link: tuple[str, str]) -> None:
    report_project(sandbox)
    sandbox.run("run").assert_clean()
    sandbox.link(link[0], sandbox.outside / link[1])
    r = sandbox.run("report", env={"MPLCONFIGDIR": str(sandbox.allowed / "mpl")})
    r.assert_error("symbolic link", "reftool-report")


@pytest.mark.parametrize("link", [".reftool", ".reftool/logs", ".reftool/cache",
                                  ".reftool/cache/objects", ".reftool/cache/runs",
                                  ".reftool/hashcache", "experiments", "pipeline.lock"])
def test_run_never_writes_through_a_link(sandbox: Sandbox, link: str) -> None:
    """A committed link in a tool-owned path: refused, named, nothing written outside."""
    sandbox.write("pipeline.yaml", CACHED_FILE)
    sandbox.write("src.txt", "hello\n")
    target = sandbox.outside / "home" if link != "pipeline.lock" else sandbox.outside / "bait.txt"
    sandbox.link(link, target)
    r = sandbox.run("run", "-q")
    r.assert_clean()
    if link in (".reftool/hashcache",):  # a cache: not written, the run goes on
        assert r.code == 0, r.err
        return
    assert r.code != 0 or "symbolic link" in r.err, r.out + r.err
    assert "symbolic link" in r.out + r.err or "outside the project" in r.out + r.err


HELLO_HEX = hashlib.sha256(b"hello\n").hexdigest()


@pytest.mark.parametrize("link", [f".reftool/cache/objects/{HELLO_HEX[:2]}",
                                  f".reftool/cache/objects/{HELLO_HEX[:2]}/{HELLO_HEX[2:]}"])
def test_outputs_are_never_cached_through_a_link(sandbox: Sandbox, link: str) -> None:
    """The folder an output's object goes in, or the object itself, planted as a link: the
    stage runs and is recorded, its outputs are not cached, the link is named."""
    sandbox.write("pipeline.yaml", CACHED_FILE)
    sandbox.write("src.txt", "hello\n")
    folder = link.count("/") == 3
    sandbox.link(link, sandbox.outside / "home" if folder else sandbox.outside / "bait.txt")
    r = sandbox.run("run", "-q")
    r.assert_clean()
    assert r.code == 0, r.err
    assert "outputs not cached" in r.err and "symbolic link" in r.err, r.err
    assert link in r.err, r.err
    assert (sandbox.project / "pipeline.lock").is_file()


def test_a_cache_folder_swapped_for_a_link_during_a_run_changes_nothing(tmp_path: Path) -> None:
    """[security.symlinks]: the store writes its entries through the folder it checked and
    opened, so a link put in place of `runs/` after that leads nowhere."""
    from reftool.files.model import FileState, OutState
    from reftool.pipeline.store import Store

    root, outside = tmp_path / "project", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "out.txt").write_text("hello\n")
    out = {"out.txt": OutState(state=FileState(digest="sha256:" + HELLO_HEX, size=6, files=None),
                               cache=True, persist=False)}
    store = Store(root)
    store.save("sha256:" + "a" * 64, out)
    runs = root / ".reftool" / "cache" / "runs"
    runs.rename(root / "moved")
    runs.symlink_to(outside, target_is_directory=True)
    store.save("sha256:" + "b" * 64, out)
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in (root / "moved").iterdir()) == ["a" * 64 + ".json",
                                                                  "b" * 64 + ".json"]
    with pytest.raises(OSError, match="symbolic link"):
        Store(root).save("sha256:" + "c" * 64, out)  # a new store checks the folders again


def test_plots_never_write_through_a_link(sandbox: Sandbox) -> None:
    from reftool.files.safe_io import UnsafePath, write_atomic
    (sandbox.project / "reftool-plots").symlink_to(sandbox.outside)
    with pytest.raises(UnsafePath):
        write_atomic(sandbox.project / "reftool-plots" / "bait.txt", b"x",
                     base=sandbox.project)


def test_ci_workflow_never_posts_a_linked_report() -> None:
    ci = Path(__file__).parent.parent / "examples" / "ci"
    # the report is uploaded only when this job wrote it; the comment workflow posts only a
    # regular file, never a link
    assert "steps.report.outcome == 'success'" in (ci / "github-actions.yml").read_text()
    assert "test ! -L" in (ci / "github-actions-comment.yml").read_text()


# ---------------------------------------------------------------- 4. files linked outside

def assert_no_secret(sandbox: Sandbox, *runs: object) -> None:
    for r in runs:
        assert SECRET not in r.out + r.err  # type: ignore[attr-defined]
    for path in sandbox.project.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("command", [("validate",), ("plan",), ("run",), ("exp", "show"),
                                     ("report",), ("params", "diff"), ("dag",)])
def test_params_linked_outside_are_never_read(sandbox: Sandbox, command: tuple[str, ...]) -> None:
    """[security.symlinks]: `params.yaml -> ../outside/secret.yaml`."""
    sandbox.write("pipeline.yaml", WITH_PARAMS)
    sandbox.write("m.src", '{"acc": 1}\n')
    sandbox.link("params.yaml", sandbox.outside / "secret.yaml")
    r = sandbox.run(*command)
    r.assert_clean()
    assert r.code != 0, r.out
    assert_no_secret(sandbox, r)


def test_vars_linked_outside_are_never_read(sandbox: Sandbox) -> None:
    sandbox.write("pipeline.yaml", 'version: "1.0"\nvars: [v.yaml]\nstages:\n  s:\n'
                  '    cmd: echo ${token}\n    outs: [o.txt]\n')
    sandbox.link("v.yaml", sandbox.outside / "secret.yaml")
    runs = [sandbox.run(c) for c in ("validate", "plan", "run")]
    for r in runs:
        r.assert_error("semantic/path_escapes", "v.yaml")
    assert_no_secret(sandbox, *runs)


def test_wdir_linked_outside(sandbox: Sandbox) -> None:
    sandbox.write("pipeline.yaml", 'version: "1.0"\nstages:\n  s:\n    cmd: touch pwned\n'
                  '    wdir: w\n    outs: [o.txt]\n')
    sandbox.link("w", sandbox.outside)
    for command in ("validate", "plan", "run"):
        sandbox.run(command).assert_error("semantic/path_escapes", "wdir")


@pytest.mark.parametrize("name", ["pipeline.yaml", "pipeline.lock"])
def test_pipeline_and_lock_linked_outside(sandbox: Sandbox, name: str) -> None:
    if name == "pipeline.lock":
        sandbox.write("pipeline.yaml", CACHED_FILE)
        sandbox.write("src.txt", "x\n")
    sandbox.link(name, sandbox.outside / "secret.yaml")
    runs = [sandbox.run(c) for c in ("validate", "plan", "run")]
    for r in runs:
        r.assert_error("semantic/path_escapes", name)
    assert_no_secret(sandbox, *runs)


# ---------------------------------------------------------------- 7. FIFOs and devices

fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")


def make_fifo(sandbox: Sandbox, rel: str) -> None:
    path = sandbox.project / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)


@fifo
@pytest.mark.parametrize(("rel", "commands", "needle"), [
    ("pipeline.yaml", ["validate", "plan", "run", "dag"], "not_a_file"),
    ("params.yaml", ["validate", "plan", "run"], "params.yaml"),
    ("pipeline.lock", ["validate", "plan", "run"], "pipeline.lock"),
    ("src.txt", ["validate", "plan", "run"], "src.txt"),
    ("data/inner.txt", ["plan", "run"], "data/inner.txt"),
    ("reftool.toml", ["run", "push"], "reftool.toml"),
], ids=["pipeline", "params", "lock", "dep", "inside-dir-dep", "reftool-toml"])
def test_fifos_are_refused_promptly(sandbox: Sandbox, rel: str, commands: list[str],
                                    needle: str) -> None:
    sandbox.write("pipeline.yaml", 'version: "1.0"\nstages:\n  s:\n    cmd: echo hi\n'
                  '    deps: [src.txt, data/]\n    params:\n      params.yaml: "*"\n'
                  '    outs: [o.txt]\n')
    sandbox.write("src.txt", "x\n")
    sandbox.write("data/ok.txt", "x\n")
    sandbox.write("params.yaml", "lr: 1\n")
    (sandbox.project / rel).unlink(missing_ok=True)
    make_fifo(sandbox, rel)
    for command in commands:
        r = sandbox.run(command)
        r.assert_error(needle)
        assert r.seconds < 20


@fifo
@pytest.mark.parametrize("rel", [".reftool/lock-journal.jsonl", ".reftool/documents.json",
                                 ".reftool/hashcache/index.json"])
def test_fifos_in_tool_caches_are_passed_over(sandbox: Sandbox, rel: str) -> None:
    sandbox.write("pipeline.yaml", CACHED_FILE)
    sandbox.write("src.txt", "x\n")
    make_fifo(sandbox, rel)
    for command in ("plan", "run"):
        r = sandbox.run(command)
        r.assert_clean()


@fifo
def test_fifo_metrics_and_records(sandbox: Sandbox) -> None:
    sandbox.write("pipeline.yaml", WITH_PARAMS)
    sandbox.write("m.src", '{"acc": 1}\n')
    sandbox.write("params.yaml", "lr: 1\n")
    make_fifo(sandbox, "m.json")
    make_fifo(sandbox, "experiments/x.json")
    sandbox.run("validate").assert_error("m.json")
    r = sandbox.run("exp", "show")
    r.assert_clean()
    sandbox.run("metrics", "diff").assert_clean()


@fifo
@pytest.mark.parametrize("which", [0, 1, 2])
def test_fifo_merge_lock_inputs(sandbox: Sandbox, which: int) -> None:
    names = ["base.lock", "ours.lock", "theirs.lock"]
    for name in names:
        sandbox.write(name, '{"stages":{},"version":"1.0"}\n')
    (sandbox.project / names[which]).unlink()
    make_fifo(sandbox, names[which])
    sandbox.run("merge-lock", *names).assert_error(names[which])


@fifo
def test_fifo_dvc_yaml(sandbox: Sandbox) -> None:
    make_fifo(sandbox, "dvc.yaml")
    sandbox.run("import-dvc").assert_error("dvc.yaml")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
@pytest.mark.parametrize("rel", ["src.txt", "data/zero"])
def test_device_linked_in_is_refused(sandbox: Sandbox, rel: str) -> None:
    sandbox.write("pipeline.yaml", 'version: "1.0"\nstages:\n  s:\n    cmd: echo hi\n'
                  '    deps: [src.txt, data/]\n    outs: [o.txt]\n')
    sandbox.write("src.txt", "x\n")
    sandbox.write("data/ok.txt", "x\n")
    (sandbox.project / rel).unlink(missing_ok=True)
    sandbox.link(rel, "/dev/zero")
    r = sandbox.run("plan")
    r.assert_error(rel)


def test_a_stage_log_planted_as_a_link_is_refused(tmp_path: Path) -> None:
    """[security.symlinks]: the log a stage writes (.reftool/logs/STAGE.log), opened in the
    folder checked once a run, is never opened through a link at its own name."""
    import os

    from reftool.files.safe_io import UnsafePath, open_folder, open_in_folder
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    root = tmp_path / "project"
    root.mkdir()
    fd = open_folder(root / ".reftool" / "logs", base=root)
    try:
        (root / ".reftool" / "logs" / "train.log").symlink_to(outside)
        with pytest.raises(UnsafePath):
            open_in_folder(fd, "train.log", ".reftool/logs/train.log")
        with pytest.raises(UnsafePath):
            open_in_folder(fd, "../x.log", "bad")
        with open_in_folder(fd, "prep.log", ".reftool/logs/prep.log") as f:
            f.write("ok\n")
    finally:
        os.close(fd)
    assert outside.read_text() == "keep\n"
    assert (root / ".reftool" / "logs" / "prep.log").read_text() == "ok\n"
