"""Working in git: a merge driver for the lock file, and the commands that install it.
SPEC [lock.merge].

The lock merges stage by stage, as a three-way merge of entries: a stage changed on one side
only takes that side; a stage changed on both sides to the same entry takes it; a stage changed
on both sides to different entries is left out, so the next plan shows it as never run and
`run` records it anew. The result is always a valid, canonical lock: never conflict markers in
a file the tool must parse.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..files.model import Lock, LockEntry, canonical_lock_text, entry_to_dict, lock_from_dict
from ..files.safe_io import ignore_cache_folder, open_for_writing, open_regular, refuse_links
from ..files.values import utf16_key

DRIVER = "reftool-lock"


@dataclass(frozen=True)
class Merged:
    lock: Lock
    dropped: tuple[str, ...]  # stages changed on both sides to different entries


def _same(a: LockEntry | None, b: LockEntry | None) -> bool:
    if a is None or b is None:
        return a is b
    return entry_to_dict(a) == entry_to_dict(b)


def merge(base: Lock | None, ours: Lock, theirs: Lock) -> Merged:
    """[lock.merge]: the three-way merge of two locks, stage by stage."""
    old = base.stages if base is not None else {}
    stages: dict[str, LockEntry] = {}
    dropped = []
    for name in sorted(set(old) | set(ours.stages) | set(theirs.stages), key=utf16_key):
        o, a, b = old.get(name), ours.stages.get(name), theirs.stages.get(name)
        if _same(a, b):
            chosen = a
        elif _same(o, a):  # only theirs changed it
            chosen = b
        elif _same(o, b):  # only ours changed it
            chosen = a
        else:
            dropped.append(name)
            continue
        if chosen is not None:
            stages[name] = chosen
    return Merged(Lock(version="1.0", stages=stages), tuple(dropped))


def read_lock_text(text: str, what: str) -> Lock:
    """A lock from text, checked against the lock schema; ValueError says what is wrong."""
    from ..files.documents import parse
    from ..files.errors import SpecError
    from ..files.validate import Report, _versioned
    try:
        doc = parse(text, display=what, fmt="json")
    except SpecError as e:
        raise ValueError("; ".join(f"{d.location}: {d.message}" for d in e.diagnostics)) from None
    report = Report()
    if not _versioned(doc, "lock", "lock file", report):
        raise ValueError("; ".join(f"{d.location}: {d.message}" for d in report.errors))
    return lock_from_dict(doc.value)


def merge_files(base: Path, ours: Path, theirs: Path) -> tuple[str, Merged]:
    """Merge three lock files as git hands them to a merge driver; an empty or missing base
    (a lock added on both branches) merges as no entries."""
    base_text = _read_text(base) if base.exists() else ""
    base_lock = read_lock_text(base_text, "base") if base_text.strip() else None
    merged = merge(base_lock, read_lock_text(_read_text(ours), "ours"),
                   read_lock_text(_read_text(theirs), "theirs"))
    return canonical_lock_text(merged.lock), merged


# ---------------------------------------------------------------------------------- install

ATTRIBUTE = f"pipeline.lock merge={DRIVER}"


def install(root: Path) -> list[str]:
    """Register the merge driver in the repository's git config and `.gitattributes`, and
    make `.reftool/` ignore itself. Returns what it did, one line each."""
    done = []
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None:
        raise RuntimeError("not inside a git repository (git init first)")
    for key, value in ((f"merge.{DRIVER}.name", "reftool: merge pipeline.lock stage by stage"),
                       (f"merge.{DRIVER}.driver", "reftool merge-lock %O %A %B")):
        current = _git(root, "config", "--local", "--get", key)
        if current != value and not (key.endswith(".driver") and current
                                     and "merge-lock" in current):  # kept if customised
            if _git(root, "config", "--local", key, value) is None:
                raise RuntimeError(f"git config {key} failed")
            done.append(f"git config {key} = {value!r}")
    attributes = root / ".gitattributes"
    lines = []
    if os.path.lexists(attributes):  # [security.symlinks], [security.special-files]
        refuse_links(root, attributes)
        with open_regular(attributes) as raw:
            lines = raw.read().decode("utf-8").splitlines()
    missing = [w for w in [ATTRIBUTE] if w not in lines]
    if missing:
        with open_for_writing(attributes, base=root, append=True) as f:
            if lines and lines[-1] != "":
                f.write("\n")
            f.write("\n".join(missing) + "\n")
        done.append(f"{attributes.name}: {', '.join(missing)}")
    if ignore_cache_folder(root):
        done.append(".reftool/ ignores itself (.reftool/.gitignore)")
    return done


def _read_text(path: Path) -> str:
    """A merge input: a regular file only, so that a FIFO cannot hang git's merge
    ([security.special-files])."""
    with open_regular(path) as f:
        return f.read().decode("utf-8")


def _git(root: Path, *args: str) -> str | None:
    try:
        r = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                           timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


__all__ = ["Merged", "install", "merge", "merge_files"]
