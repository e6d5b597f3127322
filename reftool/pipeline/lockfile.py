"""Writing the lock: atomic canonical replacement, and a journal that makes each finished stage
durable at a cost that does not grow with the pipeline. SPEC [files.machine], [exec.record].

A run appends one line per finished stage to `.reftool/lock-journal.jsonl`: that is the moment
the stage is recorded. [exec.record] asks the entry to be on stable storage before any stage
that depends on it starts, so the lines are flushed to stable storage in groups: before such a
stage starts (`Journal.sync`), and when the journal closes. A stage nothing waits on costs no
fsync of its own (issue 18: one fsync per stage was 0.79 s of a 1,000-stage run); a runner
killed with SIGKILL loses nothing (written lines are in the system's hands), and a power loss
loses at most stages that no started stage depends on, which the next run runs again. The lock file itself is replaced
atomically, in canonical form, when the run ends (and now and then during a long run), so that
it is at every moment a valid lock. Rewriting the whole lock after each stage, as DVC does,
makes a run quadratic in the number of stages.

The journal starts with a header naming the digest of the lock it extends. Readers (`plan`,
the next `run`) apply its entries to that lock; a journal whose lock has changed since (a git
checkout, another tool) is stale and ignored, so no entry is ever applied to the wrong lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from ..files.model import (
    Lock,
    LockEntry,
    Pipeline,
    canonical_lock_text,
    entry_from_dict,
    entry_to_dict,
    hide_secrets,
)
from ..files.safe_io import NotRegularFile, open_for_writing, open_regular, write_atomic

#: SPEC [pipeline.stage-name], [generate.names]: what a journal line may name ([security.paths]).
_STAGE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}(@[A-Za-z0-9_.+=,-]+)?")

JOURNAL = os.path.join(".reftool", "lock-journal.jsonl")
JOURNAL_FORMAT = "reftool-lock-journal"
JOURNAL_VERSION = 1


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str, *, base: Path | None = None) -> None:
    """[files.machine]: write beside, flush to stable storage, rename over; never through
    a link at `path` or in a folder between `base` (default: its folder) and it
    ([security.symlinks])."""
    write_atomic(path, text.encode("utf-8"), base=base or path.parent, durable=True)
    _fsync_dir(path.parent)


def lock_digest(path: Path) -> str:
    """The SHA-256 of the lock file's bytes; `none` when there is no lock file, `unreadable`
    when it is not a regular file ([security.special-files])."""
    try:
        with open_regular(path) as f:
            return hashlib.sha256(f.read()).hexdigest()
    except FileNotFoundError:
        return "none"
    except NotRegularFile:
        return "unreadable"


def write_lock(path: Path, lock: Lock) -> str:
    """The lock written, canonical ([lock.canonical]); returns its text."""
    text = canonical_lock_text(lock)
    atomic_write_text(path, text)
    return text


class Journal:
    """The journal of one run; `append` returns once the entry is on stable storage."""

    def __init__(self, root: Path, lock_path: Path) -> None:
        self.root = root
        self.path = root / JOURNAL
        self.lock_path = lock_path
        self._file: Any = None
        self.entries = 0
        self.unsynced: set[str] = set()  # stages whose lines are written, not yet synced
        self.syncs = 0

    def start(self) -> None:
        """Begin a journal over the lock as it is now (after any older journal was applied)."""
        header = {"format": JOURNAL_FORMAT, "version": JOURNAL_VERSION,
                  "lock": self.lock_path.name, "base": lock_digest(self.lock_path)}
        text = json.dumps(header, separators=(",", ":")) + "\n"
        write_atomic(self.path, text.encode("utf-8"), base=self.root, durable=True)
        _fsync_dir(self.path.parent)
        self._file = open_for_writing(self.path, base=self.root, append=True)
        self.entries = 0

    def append(self, stage: str, entry: LockEntry | None) -> None:
        """[exec.record]: the stage is recorded when this returns (its line written to the
        file); `sync` makes it durable. With `entry` None, the stage's entry is dropped: its
        outputs are about to be removed and rewritten, so the old entry no longer describes
        the workspace."""
        line = json.dumps({"stage": stage,
                           "entry": None if entry is None else entry_to_dict(entry)},
                          ensure_ascii=False, separators=(",", ":"))
        self._file.write(line + "\n")
        self._file.flush()
        self.entries += 1
        self.unsynced.add(stage)

    def sync(self) -> None:
        """[exec.record]: every line appended so far on stable storage."""
        if self.unsynced and self._file is not None:
            os.fsync(self._file.fileno())
            self.syncs += 1
        self.unsynced.clear()

    def close(self) -> None:
        if self._file is not None:
            self.sync()
            self._file.close()
            self._file = None

    def finish(self, lock: Lock) -> str:
        """Replace the lock with everything recorded, then drop the journal; returns the
        lock's text."""
        text = write_lock(self.lock_path, lock)
        self.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        _fsync_dir(self.path.parent)
        return text


def replay(root: Path, lock_path: Path, lock: Lock | None) -> tuple[Lock | None, int, int]:
    """The lock with an unfinished run's journal applied; how many journal lines were applied,
    and how many of them recorded a stage (the others dropped a stage's entry).

    A journal over another lock (its base digest differs) is ignored. A torn last line (the
    run was killed while writing it) is ignored: that stage was not recorded.
    """
    path = root / JOURNAL
    try:  # [security.special-files]: a FIFO planted there is passed over, not waited on
        with open_regular(path) as f:
            lines = f.read().decode("utf-8").split("\n")
    except (OSError, UnicodeDecodeError):
        return lock, 0, 0
    try:
        header = json.loads(lines[0])
    except ValueError:
        return lock, 0, 0
    if not isinstance(header, dict) or header.get("format") != JOURNAL_FORMAT or \
            header.get("version") != JOURNAL_VERSION or header.get("lock") != lock_path.name \
            or header.get("base") != lock_digest(lock_path):
        return lock, 0, 0
    from ..files.schemacheck import is_valid
    stages = dict(lock.stages) if lock is not None else {}
    applied = 0
    for line in lines[1:-1]:  # the text after the last LF was never completed
        try:
            record = json.loads(line)
            entry = record["entry"]
            if not isinstance(record["stage"], str) or \
                    not _STAGE_NAME.fullmatch(record["stage"]):  # [security.paths]
                break
            if entry is None:
                stages.pop(record["stage"], None)
            elif not is_valid("lock", entry, pointer="/$defs/entry"):
                break
            else:
                stages[record["stage"]] = entry_from_dict(entry)
            applied += 1
        except (ValueError, KeyError, TypeError):
            break
    if not applied:
        return lock, 0, 0
    recorded = sum(1 for line in lines[1:1 + applied] if '"entry":null' not in line)
    return Lock(version=lock.version if lock else "1.0", stages=stages), applied, recorded


def pruned(lock: Lock, stages: set[str]) -> Lock:
    """[lock.prune]: without the entries of stages no longer in the pipeline."""
    return Lock(version="1.0", stages={n: e for n, e in lock.stages.items() if n in stages})


def for_pipeline(lock: Lock, pipeline: Pipeline) -> Lock:
    """The lock a tool writes for `pipeline`: pruned ([lock.prune]), and with no value of a
    variable the pipeline records by digest, even in an entry of a stage that did not run
    ([security.secrets])."""
    kept = pruned(lock, set(pipeline.stages))
    return Lock(version=kept.version, stages={
        n: hide_secrets(e, pipeline.stages[n]) for n, e in kept.stages.items()})
