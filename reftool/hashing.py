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
#: Directories that held at least this many files are walked by two processes.
PARALLEL_WALK_FILES = 20_000
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
        super().__init__(code, path, message)  # all three, so that it crosses processes
        self.code = code
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return self.message


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
        self._dir_subs: dict[str, dict[str, str]] = {}
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
        if _valid_rows(files, 6) and _valid_rows(dirs, 5):
            self.files, self.dirs = files, dirs  # type: ignore[assignment]

    def dir_files(self, path: str) -> tuple[dict[str, list[Any]], dict[str, str]]:
        """Per-file entries of a directory, with the subdirectory stat digests they were
        taken under; loaded only when the directory changed."""
        if path not in self._dir_files:
            data = self._read(_dir_file_name(path))
            ok = data is not None and data.get("dir") == path and \
                _valid_rows(data.get("files"), 6) and isinstance(data.get("subs"), dict)
            self._dir_files[path] = data["files"] if ok else {}  # type: ignore[index]
            self._dir_subs[path] = data["subs"] if ok else {}  # type: ignore[index]
        return self._dir_files[path], self._dir_subs[path]

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
                                  json.dumps({**head, "dir": path, "files": rows,
                                              "subs": self._dir_subs[path]},
                                             separators=(",", ":")))
            _atomic_write(self.folder / "index.json",
                          json.dumps({**head, "files": self.files, "dirs": self.dirs},
                                     separators=(",", ":")))
        except OSError:
            pass
        self.dirty = False

    def set_dir_files(self, path: str, rows: dict[str, list[Any]], subs: dict[str, str]) -> None:
        self._dir_files[path] = rows
        self._dir_subs[path] = subs
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
        self._pool: Any = None
        self._prefetched: dict[str, dict[str, Any]] = {}  # dir -> subdir -> async result

    def prefetch(self) -> None:
        """Start walking, in two worker processes, the large directories hashed last time,
        so that their walk overlaps with reading and validating the project files. Results
        are used only if the directory is asked for; otherwise they are dropped."""
        big = [p for p, row in self.cache.dirs.items() if row[3] >= PARALLEL_WALK_FILES]
        if self.jobs < 2 or not big or not _can_fork():
            return
        import multiprocessing
        self._pool = multiprocessing.get_context("fork").Pool(self.jobs)
        for path in big:
            full = os.path.join(self.root, path.rstrip("/"))
            try:
                subdirs = sorted(e.name for e in os.scandir(full)
                                 if e.is_dir(follow_symlinks=False))
            except OSError:
                continue
            self._prefetched[path] = {
                name: self._pool.apply_async(_scan_signature, ((
                    os.path.join(full, name), name + "/", path, self.real_root),))
                for name in subdirs}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None

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
        """[digest.directory], reading only the files whose stat changed.

        A directory's stat signature is built in two levels: one digest per top-level
        subdirectory (over the stats of every file below it) and the stats of the files at
        its top. When the signature equals the cached one, nothing is read; otherwise only
        the subdirectories whose digest changed are walked again, and only their changed
        files are read. Large directories are walked by two processes.
        """
        full = self._target(path)
        if full is None:
            return None
        if not os.path.isdir(full):
            raise HashError("path_kind", path, f"{path!r} is a file; write it without '/'")
        cached = self.cache.dirs.get(path)
        parallel = self.jobs >= 2 and cached is not None and cached[3] >= PARALLEL_WALK_FILES
        top_found, top_lines, subdirs = _scan_top(full, path, self.real_root)
        sub_sigs, found_by_sub = self._subtree_signatures(full, path, subdirs, parallel)
        signature = hashlib.sha256(b"".join(top_lines) + b"".join(
            b"%s/ %s\n" % (name.encode("utf-8"), sub_sigs[name].encode("ascii"))
            for name in subdirs)).hexdigest()
        if cached is not None and cached[0] == signature:  # nothing below it changed
            return FileState(digest=cached[1], size=cached[2], files=cached[3])
        rows, old_subs = self.cache.dir_files(path)  # subs as they were when rows were written
        by_sub = _rows_by_subdir(rows)
        entries: list[tuple[bytes, str, str | None, _Stat | None, list[Any] | None]] = [
            (enc, rel, target, _Stat.of(raw), None) for enc, rel, target, raw in top_found]
        for name in subdirs:
            reused = by_sub.get(name) if old_subs.get(name) == sub_sigs[name] else None
            if reused is not None:  # unchanged: its rows are still true, no stat needed
                entries.extend((rel.encode("utf-8"), rel, None, None, row)
                               for rel, row in reused)
                continue
            found = found_by_sub.get(name)
            if found is None:
                found = _scan(os.path.join(full, name), name + "/", path, self.real_root)[0]
            entries.extend((enc, rel, target, _Stat.of(raw), None)
                           for enc, rel, target, raw in found)
        entries.sort(key=lambda t: t[0])  # [digest.directory]: by the UTF-8 bytes of the path
        todo: list[tuple[str, str, _Stat]] = []
        digests: dict[str, str] = {}
        for _, rel, target, st, row in entries:
            if row is not None:
                digests[rel] = str(row[5])
                continue
            assert st is not None and target is not None
            known = self._trusted(rows.get(rel), st)
            if known is None:
                todo.append((rel, target, st))
            else:
                digests[rel] = known
        self.progress.expect(len(todo), sum(st.size for _, _, st in todo))
        for rel, hexdigest in self._hash_many(todo):
            digests[rel] = hexdigest
        new_rows: dict[str, list[Any]] = {}
        lines: list[bytes] = []
        size = 0
        racy = False
        for enc, rel, _, st, row in entries:
            if row is not None:
                new_rows[rel] = row
                size += row[0]
                lines.append(manifest_line(rel, digests[rel], row[0], bool(row[4])))
                continue
            assert st is not None
            self._remember(new_rows, rel, st, digests[rel])
            racy = racy or rel not in new_rows
            size += st.size
            lines.append(manifest_line(rel, digests[rel], st.size, st.executable))
        state = FileState(digest=directory_digest_of_manifest(b"".join(lines)), size=size,
                          files=len(entries))
        self.cache.set_dir_files(path, new_rows, {} if racy else sub_sigs)
        if racy:
            self.cache.dirs.pop(path, None)
        else:
            self.cache.dirs[path] = [signature, state.digest, state.size, state.files, sub_sigs]
        return state

    def _subtree_signatures(self, full: str, path: str, subdirs: list[str], parallel: bool
                            ) -> tuple[dict[str, str], dict[str, list[_Found]]]:
        """The stat digest of each top-level subdirectory, and (when walked here) its files."""
        jobs = [(os.path.join(full, name), name + "/", path, self.real_root) for name in subdirs]
        ahead = self._prefetched.pop(path, None)
        if ahead is not None and set(ahead) == set(subdirs):
            return {name: ahead[name].get() for name in subdirs}, {}
        if parallel and len(subdirs) >= 2:
            import multiprocessing
            with multiprocessing.get_context("fork").Pool(self.jobs) as pool:
                sigs = pool.map(_scan_signature, jobs, chunksize=max(1, len(jobs) // 16))
            return dict(zip(subdirs, sigs)), {}
        sub_sigs: dict[str, str] = {}
        found_by_sub: dict[str, list[_Found]] = {}
        for name, job in zip(subdirs, jobs):
            found, lines = _scan(*job)
            sub_sigs[name] = hashlib.sha256(b"".join(lines)).hexdigest()
            found_by_sub[name] = found
        return sub_sigs, found_by_sub

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


_Found = tuple[bytes, str, str, os.stat_result]  # UTF-8 relative path, path, real path, stat


def _scan_top(top: str, path: str, real_root: str) -> tuple[list[_Found], list[bytes], list[str]]:
    """The files at the top of a directory (with their signature lines) and its subdirectories."""
    found: list[_Found] = []
    lines: list[bytes] = []
    subdirs: list[str] = []
    with os.scandir(top) as it:
        entries = sorted(it, key=_name)
    for e in entries:
        encoded = _encoded(e.name, path)
        if e.is_dir(follow_symlinks=False):
            subdirs.append(e.name)
            continue
        item = _file_of(e, e.name, encoded, path, real_root)
        if item is not None:
            found.append(item)
            lines.append(_line(item))
    return found, lines, subdirs


def _scan(top: str, prefix: str, path: str, real_root: str) -> tuple[list[_Found], list[bytes]]:
    """Every regular file below `top`, depth first in name order, with its signature line.

    This runs on every plan over every file of a directory dep, so it does as little as it
    can per file: one stat, one line.
    """
    found: list[_Found] = []
    lines: list[bytes] = []
    stack: list[tuple[str, str]] = [(top, prefix)]
    gc_was_enabled = gc.isenabled()
    gc.disable()  # no cyclic garbage is made here; collections would only slow a large walk
    try:
        while stack:
            folder, pre = stack.pop()
            with os.scandir(folder) as it:
                entries = sorted(it, key=_name)
            for e in entries:
                rel = pre + e.name
                encoded = _encoded(rel, path)
                if e.is_dir(follow_symlinks=False):
                    stack.append((e.path, rel + "/"))
                    continue
                item = _file_of(e, rel, encoded, path, real_root)
                if item is not None:
                    found.append(item)
                    lines.append(_line(item))
    finally:
        if gc_was_enabled:
            gc.enable()
    return found, lines


def _scan_signature(job: tuple[str, str, str, str]) -> str:
    """In a worker process: the stat digest of one subtree, the lines `_scan` would give.

    The same walk as `_scan` without collecting the files: this is the whole cost of a
    no-op plan over a large directory, so each file costs one stat and one line.
    """
    top, prefix, path, real_root = job
    lines: list[bytes] = []
    append = lines.append
    stack: list[tuple[str, str]] = [(top, prefix)]
    while stack:
        folder, pre = stack.pop()
        with os.scandir(folder) as it:
            entries = sorted(it, key=_name)
        for e in entries:
            rel = pre + e.name
            if e.is_dir(follow_symlinks=False):
                _encoded(rel, path)
                stack.append((e.path, rel + "/"))
            elif e.is_file(follow_symlinks=False) and not e.is_symlink():
                st = e.stat(follow_symlinks=False)
                append(b"%s %d %d %d %d %d\n" % (_encoded(rel, path), st.st_size,
                                                 st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                                                 st.st_mode & stat.S_IXUSR))
            else:
                item = _file_of(e, rel, _encoded(rel, path), path, real_root)
                if item is not None:
                    append(_line(item))
    return hashlib.sha256(b"".join(lines)).hexdigest()


def _line(item: _Found) -> bytes:
    encoded, _, _, st = item
    return b"%s %d %d %d %d %d\n" % (encoded, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                                     st.st_ino, st.st_mode & stat.S_IXUSR)


def _file_of(e: os.DirEntry[str], rel: str, encoded: bytes, path: str,
             real_root: str) -> _Found | None:
    if e.is_symlink():
        target = _link_target(e.path, path + rel, real_root)
        return None if target is None else (encoded, rel, target, os.stat(target))
    if e.is_file(follow_symlinks=False):
        return encoded, rel, e.path, e.stat(follow_symlinks=False)
    return None  # sockets, fifos, devices: no regular file


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


def _link_target(link: str, shown: str, real_root: str) -> str | None:
    """[paths.symlinks]: the file a link inside a directory names, if any."""
    real = os.path.realpath(link)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise HashError("path_escapes", shown, f"{shown!r} links outside the project")
    if os.path.isdir(real):
        raise HashError("symlink_dir", shown, f"{shown!r} is a link to a directory")
    return real if os.path.exists(real) else None  # a dangling link is no file


def _rows_by_subdir(rows: dict[str, list[Any]]) -> dict[str, list[tuple[str, list[Any]]]]:
    grouped: dict[str, list[tuple[str, list[Any]]]] = {}
    for rel, row in rows.items():
        head, sep, _ = rel.partition("/")
        if sep:
            grouped.setdefault(head, []).append((rel, row))
    return grouped


def _can_fork() -> bool:
    import multiprocessing
    return "fork" in multiprocessing.get_all_start_methods()


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


def hasher_for(root: Path, *, use_cache: bool = True, progress: Progress | None = None) -> Hasher:
    return Hasher(root, HashCache.open(root, enabled=use_cache), progress=progress)


__all__ = [
    "HashCache", "HashError", "Hasher", "Progress", "directory_digest_of_manifest",
    "file_digest_of_bytes", "hash_file", "hasher_for", "manifest", "manifest_line",
]
