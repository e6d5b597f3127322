"""The workspace as the decision sees it: an `Observer` over a project on disk.

Reads params files once each, hashes paths through the `Hasher` (and its cache), and reads
environment variables from one snapshot taken when it is made.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..files.documents import Document
from ..files.errors import SpecError, diagnostic
from ..files.ignore import IGNORE_FILE, Rule, Rules, parse_ignore_text, read_ignore_file, rules_for
from .hashing import RACY_WINDOW_NS, Hasher, hash_file
from ..files.model import FileState
from ..files.spec import MAX_TEXT_FILE_BYTES, PARAMS_EXTENSIONS


class Workspace:
    def __init__(self, root: Path, hasher: Hasher, *,
                 params: Mapping[str, Document | None] | None = None,
                 environ: Mapping[str, str] | None = None,
                 pipeline_version: str = "1.0") -> None:
        self.root = root
        self.ignore = ignore_rules(root, pipeline_version)
        self.hasher = hasher
        self._params: dict[str, Any] = {
            f: d.value for f, d in (params or {}).items() if d is not None}
        self.environ = dict(os.environ if environ is None else environ)
        self._recorded: dict[str, FileState] = {}
        # when params_file read a file: its stat, the digest of its bytes, and when it was
        # last read or found unchanged by reading
        self._params_seen: dict[str, tuple[tuple[int, ...] | None, str, int]] = {}

    def path_state(self, path: str, exclude: tuple[str, ...] = ()) -> FileState | None:
        """A path's state; a directory's under its rules ([digest.ignore]), which it names
        ([lock.rules])."""
        rules = rules_for(path, self.ignore, exclude) if path.endswith("/") else None
        state = self.hasher.state(path, rules)
        if state is None and self._recorded:
            return self._recorded.get(path)
        if state is not None and rules is not None:
            state = dataclasses.replace(state, rules=rules.digest)
        return state

    def rules_of(self, path: str, exclude: tuple[str, ...] = ()) -> Rules | None:
        """[digest.ignore]: the rules of a directory path; None for a file or no rules."""
        return rules_for(path, self.ignore, exclude) if path.endswith("/") else None

    def rules_digest(self, path: str, exclude: tuple[str, ...] = ()) -> str | None:
        rules = self.rules_of(path, exclude)
        return None if rules is None else rules.digest

    def assume_recorded(self, lock: Any) -> None:
        """From now on a path that is not there counts as the lock records it: for checking a
        committed lock where outputs are not checked out (CI)."""
        for entry in lock.stages.values():
            self._recorded.update(entry.deps)
            self._recorded.update({p: o.state for p, o in entry.outs.items()})

    def params_file(self, file: str) -> Mapping[str, Any]:
        if file not in self._params:
            from ..files.documents import load
            fmt = PARAMS_EXTENSIONS.get(os.path.splitext(file)[1].lower())
            if fmt is None:
                raise SpecError([])  # validation reports it: params_format
            stat_key = _stat_key(self.root / file)  # before it is read: git's order
            read_ns = time.time_ns()
            doc = load(self.root / file, display=file, fmt=fmt,  # type: ignore[arg-type]
                       limit=MAX_TEXT_FILE_BYTES)
            self._params[file] = doc.value
            self._params_seen[file] = (stat_key, doc.digest, read_ns)
        value: Mapping[str, Any] = self._params[file]
        return value

    def env(self, name: str) -> str | None:
        return self.environ.get(name)

    def refresh(self, paths: list[str], files: list[str]) -> dict[str, FileState | None]:
        """Look at these dep paths and params files again when next asked
        ([security.deps-during-run]); returns what was known of each path before (a path
        not looked at yet is left out). The hash cache keeps unchanged files cheap."""
        before = {}
        for path in paths:
            known, state = self.hasher.forget(path)
            if known:
                before[path] = state
        for file in files:
            if not self._params_unchanged(file):
                self._params.pop(file, None)
        return before

    def _params_unchanged(self, file: str) -> bool:
        """Whether a params file still holds what params_file read: its stat is the same and,
        when it was written within RACY_WINDOW_NS of the last read (a write in the same clock
        tick leaves the same stat), its bytes are too ([security.deps-during-run], as the
        hash cache does for deps, [stale.cache])."""
        seen = self._params_seen.get(file)
        if seen is None:
            return False
        key, digest, read_ns = seen
        full = os.path.join(self.root, file)
        if key is None or _stat_key(full) != key:
            return False
        if max(key[0], key[1]) < read_ns - RACY_WINDOW_NS:
            return True
        now_ns = time.time_ns()
        try:
            if hash_file(full) != digest:
                return False
        except OSError:
            return False  # read again when asked, and the error said then
        self._params_seen[file] = (key, digest, now_ns)
        return True


def ignore_rules(root: Path, pipeline_version: str) -> tuple[Rule, ...]:
    """The rules of the project's `.reftoolignore`, read once when the plan is made, for a
    pipeline of version 1.1 or later ([digest.ignore-file]); validation reported a bad one."""
    from ..files.validate import ignore_applies, ignore_file_diagnostics
    if not ignore_applies(pipeline_version):
        return ()
    problems = ignore_file_diagnostics(root)
    if problems:
        raise SpecError(problems)
    try:
        data = read_ignore_file(root)
    except OSError as e:  # changed since it was validated
        raise SpecError([diagnostic("io", "read_error", IGNORE_FILE, str(e))]) from None
    return () if data is None else parse_ignore_text(data)[0]


def _stat_key(path: str | os.PathLike[str]) -> tuple[int, ...] | None:
    """What changes when a file is written (nanosecond times, size, inode); None if absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev)


class CachingWorkspace(Workspace):
    """A workspace that also knows the cache of outputs, so the plan can say "restore"."""

    def __init__(self, root: Path, hasher: Hasher, store: Any, *, remote: Any = None,
                 **kw: Any) -> None:
        super().__init__(root, hasher, **kw)
        self.store = store
        self.remote = remote

    def has_outputs(self, signature: str) -> bool:
        return self.store.lookup(signature) is not None or (
            self.remote is not None and self.remote.has_run(signature))
