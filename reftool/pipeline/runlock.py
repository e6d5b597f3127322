"""One `run` at a time in a project: an advisory lock on `.reftool/run.lock`.

The operating system releases the lock when its holder dies, so a lock can never be left
behind; the file also names the holder (pid, host, start time) so that a waiting run can say
whom it waits for, and a run that finds the name of a process that is gone says it takes over.
Read-only commands (`validate`, `plan`) never take this lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..files.safe_io import NotRegularFile, make_dirs, refuse_links


class Busy(Exception):
    """Another run holds the lock and waiting was declined."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


def _describe(info: dict[str, Any]) -> str:
    started = info.get("started")
    when = time.strftime("%H:%M:%S", time.localtime(started)) if isinstance(
        started, (int, float)) else "?"
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')}, started {when}"


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / ".reftool" / "run.lock"
        self._fd: int | None = None

    def _read(self, fd: int) -> dict[str, Any]:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            data = json.loads(os.read(fd, 4096) or b"{}")
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def acquire(self, *, wait: bool, say: Callable[[str], None]) -> None:
        """Take the lock; wait for it (saying so) or raise Busy. Ctrl-C while waiting raises
        KeyboardInterrupt, as it should."""
        make_dirs(self.root, self.path.parent)  # [security.symlinks]: no link followed
        refuse_links(self.root, self.path)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK
        fd = os.open(self.path, flags, 0o644)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise NotRegularFile(f"{self.path}: is not a regular file")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe(self._read(fd))
                if not wait:
                    raise Busy(holder) from None
                say(f"waiting for another run ({holder}) to finish; Ctrl-C to stop waiting")
                fcntl.flock(fd, fcntl.LOCK_EX)
            previous = self._read(fd)
            if previous.get("pid") is not None and (
                    previous.get("host") != socket.gethostname() or
                    not _alive(previous.get("pid")) or previous.get("pid") == os.getpid()):
                say(f"taking over the run lock left by {_describe(previous)}, which is no "
                    "longer running")
            info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)  # a clean exit leaves no holder named
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None
