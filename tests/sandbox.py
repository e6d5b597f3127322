"""A sandbox for hostile-input tests (SPEC section 16): a project, a folder beside it that nothing
may touch, and the tool run in a child process with a time and memory cap.

    def test_x(sandbox: Sandbox) -> None:
        sandbox.write("pipeline.yaml", ...)
        r = sandbox.run("validate")
        r.assert_clean()                  # no traceback, no internal error, no hang
        assert r.code == 1 and "semantic/reserved_path" in r.out

When the test ends, the fixture checks that nothing outside `sandbox.project` changed: the
`outside` folder (bait files, a fake home and `.ssh`) is byte-for-byte as it was, and nothing new
appeared beside the project. Tests that need to write outside on purpose (a remote folder) put
it under `sandbox.allowed`.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MEMORY_LIMIT = 1_500_000_000  # bytes of address space for the child
TIMEOUT = 30.0  # seconds: a hang guard, not a performance assertion


def _limit_memory() -> None:  # in the child, before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def write_file(root: Path, rel: str, content: str | bytes) -> Path:
    """Write `content` at `root/rel`, making folders; text starting with a newline is
    dedented, so tests can write files as indented triple-quoted strings."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(textwrap.dedent(content) if content.startswith("\n") else content,
                        encoding="utf-8")
    return path


def snapshot(top: Path) -> dict[str, tuple[str, bytes]]:
    """Every entry below `top` (links not followed): its kind and its bytes or link target."""
    found: dict[str, tuple[str, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(top))
            st = path.lstat()
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path).encode())
            elif path.is_dir():
                found[rel] = ("dir", b"")
            elif path.is_file():
                found[rel] = (f"file {st.st_mode & 0o777:o}", path.read_bytes())
            else:
                found[rel] = ("special", b"")
    return found


@dataclass
class Run:
    argv: tuple[str, ...]
    code: int
    out: str
    err: str
    seconds: float

    def assert_clean(self) -> None:
        """No traceback, no internal error (exit 70), no crash by signal."""
        for text in (self.out, self.err):
            assert "Traceback (most recent call last)" not in text, text[-3000:]
            assert "internal error" not in text, text[-3000:]
        assert self.code not in (70, -9, -11, -6), f"{self.argv}: exit {self.code}\n" \
            f"{self.out[-2000:]}\n{self.err[-2000:]}"
        assert self.code >= 0, f"{self.argv}: killed by signal {-self.code}\n{self.err[-2000:]}"

    def assert_error(self, *needles: str) -> None:
        """A clean, non-zero exit whose output names every needle (a code, a file, ...)."""
        self.assert_clean()
        assert self.code != 0, f"{self.argv}: exit 0\n{self.out[-2000:]}\n{self.err[-2000:]}"
        both = self.out + self.err
        for needle in needles:
            assert needle in both, f"{self.argv}: {needle!r} not in output:\n{both[-3000:]}"


class Sandbox:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.project = root / "project"
        self.outside = root / "outside"
        self.allowed = root / "allowed"
        for d in (self.project, self.outside, self.allowed):
            d.mkdir()
        (self.outside / "bait.txt").write_text("do not touch\n")
        (self.outside / "home" / ".ssh").mkdir(parents=True)
        (self.outside / "home" / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA ok\n")
        (self.outside / "secret.yaml").write_text("token: s3cr3t-value\n")
        self.before = snapshot(self.outside)

    def write(self, rel: str, content: str | bytes) -> Path:
        return write_file(self.project, rel, content)

    def link(self, rel: str, target: str | Path) -> Path:
        path = self.project / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
        return path

    def run(self, *argv: str, timeout: float = TIMEOUT, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> Run:
        full_env = {k: v for k, v in os.environ.items() if k != "REFTOOL_DEBUG"}
        full_env.update({"PYTHONIOENCODING": "utf-8", "HOME": str(self.outside / "home")})
        full_env.update(env or {})
        start = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", "reftool", *argv],
                                  cwd=cwd or self.project, env=full_env, capture_output=True,
                                  stdin=subprocess.DEVNULL, timeout=timeout,
                                  preexec_fn=_limit_memory, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"reftool {' '.join(argv)} did not finish within {timeout:.0f} s")
        return Run(tuple(argv), proc.returncode, proc.stdout.decode("utf-8", "replace"),
                   proc.stderr.decode("utf-8", "replace"), time.perf_counter() - start)

    def check_untouched(self) -> None:
        after = snapshot(self.outside)
        changed = sorted(k for k in set(after) | set(self.before)
                         if after.get(k) != self.before.get(k))
        assert changed == [], f"written outside the project: {changed}"
        extra = sorted(p.name for p in self.root.iterdir())
        assert extra == ["allowed", "outside", "project"], f"created beside the project: {extra}"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path)
    yield box
    box.check_untouched()
