"""File and directory digests exactly as SPEC section 8 defines them, and a local hash cache.

The pure part (`file_digest_of_bytes`, `manifest_line`, `directory_digest_of_manifest`) is what
the conformance suite exercises value by value. `Hasher` applies it to a project on disk,
reading only files whose stat signature changed since they were last hashed.

The hash cache lives in `.reftool/hashcache/` (never versioned: `.reftool/.gitignore` holds `*`).
It is only an optimization: deleting it changes no decision. An entry is trusted only when the
file's size, mtime (ns), ctime (ns) and inode are unchanged, and only if the file had not been
modified within `RACY_WINDOW_NS` of the moment it was hashed ("racy" files, as git calls them,
are hashed again next time). A corrupt or foreign cache is discarded, never trusted.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import stat
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import FileState

CACHE_FORMAT = "reftool-hash-cache"
CACHE_VERSION = 1
#: A file modified this close to (or after) the moment it was hashed is not cached.
RACY_WINDOW_NS = 2_000_000_000
_BUFFER = 1 << 20


# ---------------------------------------------------------------------------------- pure

def file_digest_of_bytes(data: bytes) -> str:
    """[digest.file]: SHA-256 of the raw bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest_line(relpath: str, hexdigest: str, size: int, executable: bool) -> bytes:
    """[digest.directory]: `HEX SP SIZE SP MODE SP PATH LF`."""
    return b"%s %d %s %s\n" % (hexdigest.encode("ascii"), size, b"x" if executable else b"-",
                               relpath.encode("utf-8"))


def manifest(entries: Iterable[tuple[str, str, int, bool]]) -> bytes:
    """The manifest of (relative path, hex digest, size, executable) entries, sorted by the
    UTF-8 bytes of the path."""
    rows = sorted((p.encode("utf-8"), p, h, s, x) for p, h, s, x in entries)
    return b"".join(manifest_line(p, h, s, x) for _, p, h, s, x in rows)


def directory_digest_of_manifest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------- errors

class HashError(Exception):
    """A path that cannot be hashed as SPEC.md says; `code` is a `semantic` error code."""

    def __init__(self, code: str, path: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.path = path


# ---------------------------------------------------------------------------------- on disk

@dataclass(frozen=True, slots=True)
class _Stat:
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    executable: bool

    @classmethod
    def of(cls, st: os.stat_result) -> _Stat:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                   bool(st.st_mode & stat.S_IXUSR))

    def key(self) -> list[int]:
        return [self.size, self.mtime_ns, self.ctime_ns, self.ino, int(self.executable)]


def hash_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, streamed in constant memory."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass
class Progress:
    """Files and bytes hashed; shown on stderr once hashing has taken more than a second."""

    enabled: bool = True
    total_files: int = 0
    total_bytes: int = 0
    files: int = 0
    bytes: int = 0
    started: float = field(default_factory=lambda: time.monotonic())
    _last: float = 0.0
    _shown: bool = False

    def expect(self, files: int, nbytes: int) -> None:
        self.total_files += files
        self.total_bytes += nbytes

    def advance(self, nbytes: int) -> None:
        self.files += 1
        self.bytes += nbytes
        now = time.monotonic()
        if self.enabled and now - self.started > 1.0 and now - self._last > 0.25:
            self._last = now
            self._show(final=False)

    def _show(self, *, final: bool) -> None:
        line = (f"hashing: {self.files:,}/{self.total_files:,} files, "
                f"{_size(self.bytes)}/{_size(self.total_bytes)}")
        if sys.stderr.isatty():
            sys.stderr.write("\r" + line + ("\n" if final else ""))
        elif final or not self._shown or self.files == self.total_files:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            self._show(final=True)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)  # pragma: no cover


class HashCache:
    """The stat-keyed cache of digests, for one project root."""

    def __init__(self, folder: Path | None, root_id: str) -> None:
        self.folder = folder
        self.root_id = root_id
        self.files: dict[str, list[Any]] = {}  # path -> [size, mtime, ctime, ino, x, hex]
        self.dirs: dict[str, list[Any]] = {}  # path -> [signature, digest, size, files]
        self._dir_files: dict[str, dict[str, list[Any]]] = {}
        self._changed_dirs: set[str] = set()
        self.dirty = False
        self._loaded = False

    @classmethod
    def open(cls, root: Path, *, enabled: bool = True) -> HashCache:
        folder = root / ".reftool" / "hashcache" if enabled else None
        cache = cls(folder, os.path.realpath(root))
        cache._load()
        return cache

    def _read(self, name: str) -> dict[str, Any] | None:
        if self.folder is None:
            return None
        try:
            with open(self.folder / name, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or \
                data.get("version") != CACHE_VERSION or data.get("root") != self.root_id:
            return None  # foreign or from another version: discarded
        return data

    def _load(self) -> None:
        data = self._read("index.json")
        if data is None:
            return
        files, dirs = data.get("files"), data.get("dirs")
        if _valid_rows(files, 6) and _valid_rows(dirs, 4):
            self.files, self.dirs = files, dirs  # type: ignore[assignment]

    def dir_files(self, path: str) -> dict[str, list[Any]]:
        """Per-file entries of a directory, loaded only when the directory changed."""
        if path not in self._dir_files:
            data = self._read(_dir_file_name(path))
            rows = data.get("files") if data and data.get("dir") == path else None
            self._dir_files[path] = rows if _valid_rows(rows, 6) else {}  # type: ignore[assignment]
        return self._dir_files[path]

    def save(self) -> None:
        """Write what changed, atomically; a failure to write is not an error (a cache)."""
        if self.folder is None or not self.dirty:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            ignore = self.folder.parent / ".gitignore"
            if not ignore.exists():
                _atomic_write(ignore, "# written by reftool: a local cache, never versioned\n*\n")
            head = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "root": self.root_id}
            for path, rows in self._dir_files.items():
                if path in self._changed_dirs:
                    _atomic_write(self.folder / _dir_file_name(path),
                                  json.dumps({**head, "dir": path, "files": rows},
                                             separators=(",", ":")))
            _atomic_write(self.folder / "index.json",
                          json.dumps({**head, "files": self.files, "dirs": self.dirs},
                                     separators=(",", ":")))
        except OSError:
            pass
        self.dirty = False

    def set_dir_files(self, path: str, rows: dict[str, list[Any]]) -> None:
        self._dir_files[path] = rows
        self._changed_dirs.add(path)
        self.dirty = True


def _valid_rows(rows: Any, width: int) -> bool:
    return isinstance(rows, dict) and all(
        isinstance(v, list) and len(v) == width for v in rows.values())


def _dir_file_name(path: str) -> str:
    return "dir-" + hashlib.sha256(path.encode("utf-8")).hexdigest()[:24] + ".json"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


class Hasher:
    """States (digest, size, file count) of project paths, as [lock.contents] records them."""

    def __init__(self, root: Path, cache: HashCache, *, progress: Progress | None = None,
                 jobs: int | None = None, now_ns: int | None = None) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        self.cache = cache
        self.progress = progress or Progress(enabled=False)
        self.jobs = jobs or min(2, os.cpu_count() or 1)
        self.now_ns = time.time_ns() if now_ns is None else now_ns
        self._memo: dict[str, FileState | None] = {}

    def state(self, path: str) -> FileState | None:
        """The state of a file (`a/b`) or directory (`a/`) path; None when it does not exist.

        Raises HashError for a path SPEC.md refuses ([paths.symlinks], [paths.directory],
        [digest.directory]).
        """
        if path not in self._memo:
            self._memo[path] = self._dir_state(path) if path.endswith("/") \
                else self._file_state(path)
        return self._memo[path]

    def forget(self, path: str) -> None:
        """Drop what is known of `path` (it was rewritten)."""
        self._memo.pop(path, None)

    # -- files

    def _target(self, path: str) -> str | None:
        full = os.path.join(self.root, path.rstrip("/"))
        if not os.path.lexists(full):
            return None
        real = os.path.realpath(full)
        if real != self.real_root and not real.startswith(self.real_root + os.sep):
            raise HashError("path_escapes", path, f"{path!r} resolves outside the project")
        return full

    def _trusted(self, row: list[Any] | None, st: _Stat) -> str | None:
        if row is not None and row[:5] == st.key():
            return str(row[5])
        return None

    def _remember(self, rows: dict[str, list[Any]], key: str, st: _Stat, hexdigest: str) -> None:
        if max(st.mtime_ns, st.ctime_ns) < self.now_ns - RACY_WINDOW_NS:  # not racy
            rows[key] = st.key() + [hexdigest]
        else:
            rows.pop(key, None)

    def _file_state(self, path: str) -> FileState | None:
        full = self._target(path)
        if full is None:
            return None
        st_raw = os.stat(full)
        if stat.S_ISDIR(st_raw.st_mode):
            raise HashError("path_kind", path, f"{path!r} is a directory; write it as "
                            f"{path + '/'!r}")
        st = _Stat.of(st_raw)
        hexdigest = self._trusted(self.cache.files.get(path), st)
        if hexdigest is None:
            self.progress.expect(1, st.size)
            hexdigest = hash_file(full)
            self.progress.advance(st.size)
            self._remember(self.cache.files, path, st, hexdigest)
            self.cache.dirty = True
        return FileState(digest="sha256:" + hexdigest, size=st.size)

    # -- directories

    def _dir_state(self, path: str) -> FileState | None:
        full = self._target(path)
        if full is None:
            return None
        if not os.path.isdir(full):
            raise HashError("path_kind", path, f"{path!r} is a file; write it without '/'")
        listing, signature = self._walk(full, path)
        cached = self.cache.dirs.get(path)
        if cached is not None and cached[0] == signature:  # nothing below it changed
            return FileState(digest=cached[1], size=cached[2], files=cached[3])
        listing.sort(key=lambda t: t[0])  # [digest.directory]: by the UTF-8 bytes of the path
        rows = self.cache.dir_files(path)
        todo: list[tuple[str, str, _Stat]] = []
        digests: dict[str, str] = {}
        stats: list[tuple[str, _Stat]] = []
        for _, rel, target, raw in listing:
            st = _Stat.of(raw)
            stats.append((rel, st))
            known = self._trusted(rows.get(rel), st)
            if known is None:
                todo.append((rel, target, st))
            else:
                digests[rel] = known
        self.progress.expect(len(todo), sum(st.size for _, _, st in todo))
        for rel, hexdigest in self._hash_many(todo):
            digests[rel] = hexdigest
        racy = False
        new_rows: dict[str, list[Any]] = {}
        for rel, st in stats:
            self._remember(new_rows, rel, st, digests[rel])
            racy = racy or rel not in new_rows
        data = manifest((rel, digests[rel], st.size, st.executable) for rel, st in stats)
        state = FileState(digest=directory_digest_of_manifest(data),
                          size=sum(st.size for _, st in stats), files=len(stats))
        self.cache.set_dir_files(path, new_rows)
        if racy:
            self.cache.dirs.pop(path, None)
        else:
            self.cache.dirs[path] = [signature, state.digest, state.size, state.files]
        return state

    def _hash_many(self, todo: list[tuple[str, str, _Stat]]) -> Iterable[tuple[str, str]]:
        def one(item: tuple[str, str, _Stat]) -> tuple[str, str]:
            rel, target, st = item
            hexdigest = hash_file(target)
            self.progress.advance(st.size)
            return rel, hexdigest
        if len(todo) < 8 or self.jobs < 2:
            return [one(t) for t in todo]
        with ThreadPoolExecutor(self.jobs) as pool:
            return list(pool.map(one, todo, chunksize=64))

    def _walk(self, top: str, path: str) -> tuple[list[tuple[bytes, str, str, Any]], str]:
        """Regular files below `top` as (UTF-8 relative path, relative path, real path, stat),
        and a signature of all their stats: equal signatures mean nothing below changed.

        This runs on every plan over every file of a directory dep, so it does as little as
        it can per file: one stat, one line of the signature.
        """
        found: list[tuple[bytes, str, str, Any]] = []
        lines: list[bytes] = []
        stack: list[tuple[str, str]] = [(top, "")]
        gc_was_enabled = gc.isenabled()
        gc.disable()  # no cyclic garbage here; collections would only slow a large walk
        try:
            while stack:
                folder, prefix = stack.pop()
                with os.scandir(folder) as it:
                    entries = sorted(it, key=_name)
                for e in entries:
                    rel = prefix + e.name
                    encoded = self._encoded(rel, path)
                    if e.is_dir(follow_symlinks=False):
                        stack.append((e.path, rel + "/"))
                        continue
                    if e.is_symlink():
                        target = self._link_target(e.path, path + rel)
                        if target is None:
                            continue
                        st = os.stat(target)
                    elif e.is_file(follow_symlinks=False):
                        target, st = e.path, e.stat(follow_symlinks=False)
                    else:
                        continue  # sockets, fifos, devices: no regular file
                    found.append((encoded, rel, target, st))
                    lines.append(b"%s %d %d %d %d %d\n" % (
                        encoded, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                        st.st_mode & stat.S_IXUSR))
        finally:
            if gc_was_enabled:
                gc.enable()
        return found, hashlib.sha256(b"".join(lines)).hexdigest()

    @staticmethod
    def _encoded(rel: str, path: str) -> bytes:
        """[digest.directory]: a path must be representable in the manifest."""
        if "\n" in rel or "\r" in rel:
            raise HashError("path_unrepresentable", path + rel,
                            f"file name {rel!r} in {path!r} holds a line break")
        try:
            return rel.encode("utf-8")
        except UnicodeEncodeError:
            raise HashError("path_unrepresentable", path + rel,
                            f"a file name in {path!r} is not valid UTF-8: "
                            f"{rel.encode('utf-8', 'surrogateescape')!r}") from None

    def _link_target(self, link: str, shown: str) -> str | None:
        """[paths.symlinks]: the file a link inside a directory names, if any."""
        real = os.path.realpath(link)
        if real != self.real_root and not real.startswith(self.real_root + os.sep):
            raise HashError("path_escapes", shown, f"{shown!r} links outside the project")
        if os.path.isdir(real):
            raise HashError("symlink_dir", shown, f"{shown!r} is a link to a directory")
        return real if os.path.exists(real) else None  # a dangling link is no file


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


def hasher_for(root: Path, *, use_cache: bool = True, progress: Progress | None = None) -> Hasher:
    return Hasher(root, HashCache.open(root, enabled=use_cache), progress=progress)


__all__ = [
    "HashCache", "HashError", "Hasher", "Progress", "directory_digest_of_manifest",
    "file_digest_of_bytes", "hash_file", "hasher_for", "manifest", "manifest_line",
]
