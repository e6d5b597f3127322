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
import struct
import sys
import time
import unicodedata
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files.ignore import Rules
from ..files.model import FileState
from ..files.safe_io import (
    ignore_cache_folder, kind_of, open_regular, open_regular_fd, write_atomic,
)

CACHE_FORMAT = "reftool-hash-cache"
CACHE_VERSION = 2  # 2: the top-level files of a directory are cached in chunks
#: A file modified this close to (or after) the moment it was hashed is not cached.
RACY_WINDOW_NS = 2_000_000_000
#: Directories that held at least this many files are walked by two processes.
PARALLEL_WALK_FILES = 20_000
#: Directories that held at least this many files are rebuilt part by part in two processes.
PARALLEL_PARTS_FILES = 2_000
#: The top-level files of a directory are cached in chunks of about this many files: a chunk
#: ends after a file whose name's hash falls in the lowest 1/CHUNK_FILES of its range
#: (`_ends_chunk`), so that its boundaries depend only on the names, and adding, removing or
#: editing a file changes its own chunk alone.
CHUNK_FILES = 1024
#: ... and of at most this many: names that never end a chunk cannot make one huge chunk. A
#: directory with no more top-level files than this keeps them in one part.
CHUNK_MAX = 4 * CHUNK_FILES
_BUFFER = 1 << 20
#: Files of a folder are looked at relative to it, where the platform can (not Windows).
_BY_FD = os.stat in os.supports_dir_fd and os.stat in os.supports_follow_symlinks
#: [digest.directory]: the owner-execute bit, where the platform has one. Windows has none
#: (Python makes one up from the file name's extension), so there MODE is always `-`.
_X_BIT = 0 if os.name == "nt" else stat.S_IXUSR
#: A file's stat in a part's stat digest: size, mtime and ctime (ns), inode, execute bit, as
#: five fixed-width integers (issue 18: half the cost of formatting them as text, per file of
#: every no-op plan over a directory)
_STAT = struct.Struct("<5Q").pack
_U64 = (1 << 64) - 1


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

    def __init__(self, code: str, path: str, message: str, phase: str = "semantic") -> None:
        super().__init__(code, path, message, phase)  # all, so that it crosses processes
        self.code = code
        self.path = path
        self.message = message
        self.phase = phase

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
                   bool(st.st_mode & _X_BIT))

    def key(self) -> list[int]:
        return [self.size, self.mtime_ns, self.ctime_ns, self.ino, int(self.executable)]


_SMALL = 1 << 20


def hash_file(path: str | os.PathLike[str], *, checked: bool = False) -> str:
    """Hex SHA-256 of a file: small files in one read (and one more that finds the end),
    large ones streamed in constant memory, read by a second thread while this one hashes
    (both release the GIL), so that a large file is hashed at close to the speed of SHA-256
    itself. `checked`: the caller found a regular file at `path` just now (issue 18: the
    file object and a second stat were half the cost of hashing a small file)."""
    fd, st = open_regular_fd(path, checked=checked)  # [security.special-files]: never hangs
    try:
        if st.st_size <= _SMALL:
            data = _read_small(fd, st.st_size)
            if len(data) <= _SMALL:
                return hashlib.sha256(data).hexdigest()
            h = hashlib.sha256(data)  # it grew since: go on streaming
        else:
            h = hashlib.sha256()
        with open(fd, "rb", buffering=0, closefd=False) as f:
            _hash_rest(f, h)
        return h.hexdigest()
    finally:
        os.close(fd)


def _read_small(fd: int, size: int) -> bytes:
    """A file's bytes to its end, when it holds `size` bytes: one read of them and one that
    finds the end; reading stops past _SMALL bytes, for the caller to stream the rest."""
    data = os.read(fd, size + 1)  # a read allocates what it asks for: no more than this
    while len(data) <= _SMALL:
        more = os.read(fd, min(1 << 16, _SMALL + 1 - len(data)))
        if not more:
            break
        data += more
    return data


def _hash_rest(f: Any, h: Any) -> None:
    """Feed the rest of `f` to `h`: a reader thread fills buffers, this thread hashes them."""
    import queue
    import threading
    free: queue.Queue[bytearray] = queue.Queue()
    full: queue.Queue[tuple[bytearray, int] | BaseException] = queue.Queue()
    for _ in range(3):
        free.put(bytearray(_BUFFER * 4))

    def read() -> None:
        try:
            while True:
                buffer = free.get()
                if buffer is _STOP:
                    return
                n = f.readinto(buffer)
                full.put((buffer, n))
                if not n:
                    return
        except BaseException as e:  # handed to the hashing thread, which raises it
            full.put(e)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while True:
            item = full.get()
            if isinstance(item, BaseException):
                raise item
            buffer, n = item
            if not n:
                break
            h.update(memoryview(buffer)[:n])
            free.put(buffer)
    finally:
        free.put(_STOP)
        reader.join()


_STOP = bytearray()


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

    def advance(self, nbytes: int, files: int = 1) -> None:
        self.files += files
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
    """A byte count for people: `512 B`, `2.0 MB`, `1.8 GB`."""
    if n < 1000:
        return f"{n} B"
    for unit, scale in (("KB", 1e3), ("MB", 1e6)):
        if n < scale * 999.95:  # so that rounding never shows 1000.0
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1e9:.1f} GB"


class HashCache:
    """The stat-keyed cache of digests, for one project root.

    `index.json` holds single files and the stat signatures of directories. A directory is
    cached in *parts*: its top-level files, in chunks when there are many (CHUNK_MAX), and
    each top-level subdirectory. A part keeps the manifest lines it contributes (`.frag`, raw
    bytes under a header naming the part and the stat digest it was taken under) and its
    per-file rows (`.rows.json`), so that a change in one part rewrites only that part, and
    unchanged parts are read as raw bytes.
    """

    def __init__(self, folder: Path | None, root_id: str) -> None:
        self.folder = folder
        self.root_id = root_id
        self.files: dict[str, list[Any]] = {}  # path -> [size, mtime, ctime, ino, x, hex]
        # path -> [signature ("" when a file was racy), digest, size, files, the names
        # that ended its chunks of top-level files]
        self.dirs: dict[str, list[Any]] = {}
        self.dirty = False

    @classmethod
    def open(cls, root: Path, *, enabled: bool = True) -> HashCache:
        folder = root / ".reftool" / "hashcache" if enabled else None
        cache = cls(folder, os.path.realpath(root))
        cache._load()
        return cache

    def _head(self) -> dict[str, Any]:
        return {"format": CACHE_FORMAT, "version": CACHE_VERSION, "root": self.root_id}

    def _read(self, name: str) -> dict[str, Any] | None:
        if self.folder is None:
            return None
        try:
            with open_regular(self.folder / name) as f:
                data = json.loads(f.read())
        except (OSError, ValueError, RecursionError):
            return None
        if not isinstance(data, dict) or any(data.get(k) != v for k, v in self._head().items()):
            return None  # foreign or from another version: discarded
        return data

    def _load(self) -> None:
        data = self._read("index.json")
        if data is None:
            return
        files, dirs = data.get("files"), data.get("dirs")
        if _valid_rows(files, 6) and _valid_rows(dirs, 5) and all(
                isinstance(r[0], str) and isinstance(r[3], int) and isinstance(r[4], list)
                and all(isinstance(b, str) for b in r[4])
                for r in dirs.values()):  # type: ignore[union-attr]
            self.files, self.dirs = files, dirs  # type: ignore[assignment]

    def part_store(self) -> PartStore | None:
        return None if self.folder is None else PartStore(str(self.folder), self.root_id)

    def save(self) -> None:
        """Write what changed, atomically; a failure to write is not an error (a cache)."""
        if self.folder is None or not self.dirty:
            return
        try:
            ignore_cache_folder(self.folder.parent.parent)
            _atomic_write(self.folder / "index.json", json.dumps(
                {**self._head(), "files": self.files, "dirs": self.dirs},
                separators=(",", ":")))
        except OSError:
            pass
        self.dirty = False


@dataclass(frozen=True, slots=True)
class PartStore:
    """Where the parts of cached directories live; plain data, so worker processes use it.

    A part is a chunk of the top-level files of a directory, or one top-level subdirectory
    (part NAME). A chunk is named after the file that ends it (part "/NAME"); the last one,
    or all of them when they are few, is part "".
    `<key>.frag` holds the manifest lines the part contributes, as raw bytes under a header
    naming the part and the stat digest it was taken under; `<key>.rows.json` its per-file
    rows [size, mtime, ctime, ino, x, hex], trusted file by file on an equal stat.
    """

    folder: str
    root_id: str

    def _key(self, path: str, part: str) -> str:
        return os.path.join(self.folder, "parts",
                            hashlib.sha256(f"{path}\0{part}".encode()).hexdigest()[:32])

    def _header(self, path: str, part: str, sig: str, size: int, count: int) -> list[Any]:
        return [CACHE_FORMAT, CACHE_VERSION, self.root_id, path, part, sig, size, count]

    def lines(self, path: str, part: str, sig: str) -> tuple[bytes, int, int] | None:
        """The manifest lines, size and file count of a part taken under stat digest `sig`."""
        try:
            with open_regular(self._key(path, part) + ".frag") as f:
                head, _, body = f.read().partition(b"\n")
            fields = json.loads(head)
        except (OSError, ValueError):
            return None
        if not isinstance(fields, list) or len(fields) != 8 or \
                fields[:6] != self._header(path, part, sig, 0, 0)[:6]:
            return None
        size, count = fields[6], fields[7]
        if not isinstance(size, int) or not isinstance(count, int) or \
                body.count(b"\n") != count:
            return None
        return body, size, count

    def rows(self, path: str, part: str) -> dict[str, list[Any]]:
        try:
            with open_regular(self._key(path, part) + ".rows.json") as f:
                data = json.loads(f.read())
        except (OSError, ValueError, RecursionError):
            return {}
        ok = isinstance(data, dict) and data.get("head") == self._header(path, part, "", 0, 0)[:5]
        rows = data.get("rows") if ok else None
        return rows if _valid_rows(rows, 6) else {}  # type: ignore[return-value]

    def write(self, path: str, part: str, sig: str | None, body: bytes, size: int, count: int,
              rows: dict[str, list[Any]]) -> None:
        """Remember a part; with `sig` None (it held a racy file) only its rows are kept."""
        key = self._key(path, part)
        try:
            _atomic_write(Path(key + ".rows.json"), json.dumps(
                {"head": self._header(path, part, "", 0, 0)[:5], "rows": rows},
                separators=(",", ":")))
            if sig is None:
                Path(key + ".frag").unlink(missing_ok=True)
            else:
                _atomic_write_bytes(Path(key + ".frag"), json.dumps(
                    self._header(path, part, sig, size, count),
                    separators=(",", ":")).encode() + b"\n" + body)
        except OSError:
            pass  # a cache: failing to write it is no error


@dataclass(frozen=True, slots=True)
class _PartJob:
    full: str  # the directory on disk
    path: str  # the directory as the pipeline names it (`a/b/`)
    part: str  # a chunk of its top-level files ("" or "/NAME"), else a top-level subdirectory
    real_root: str
    store: PartStore | None
    now_ns: int
    rules: Rules | None = None  # [digest.ignore]
    key: str = ""  # the directory's key in the caches: its path, and its rules' digest
    names: tuple[str, ...] | None = None  # a chunk's file names, in manifest order
    rows_from: tuple[str, ...] = ()  # the parts whose rows may hold its files (else itself)


@dataclass(frozen=True, slots=True)
class _PartResult:
    part: str
    sig: str
    body: bytes
    size: int
    count: int
    cacheable: bool  # no file in it was racy
    hashed_files: int
    hashed_bytes: int


def _build_part(job: _PartJob) -> _PartResult:
    """Walk one part, read only its changed files, and give its manifest lines.

    Runs in the process that asks, or in a worker process: it reads and writes the part
    store itself, so nothing large crosses between processes.
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()  # many small objects and no cycles: collections would only slow this
    try:
        if job.names is not None:
            found = _scan_names(job.full, job.names, job.path, job.real_root)
        else:
            found = _scan(os.path.join(job.full, job.part), job.part + "/", job.path,
                          job.real_root, job.rules)
        sig = _stat_digest([f[0] for f in found], [_packed(f[3]) for f in found])
        store_key = job.key or job.path
        hit = job.store.lines(store_key, job.part, sig) if job.store else None
        if hit is not None:
            return _PartResult(job.part, sig, hit[0], hit[1], hit[2], True, 0, 0)
        old: dict[str, list[Any]] = {}
        if job.store is not None:
            for part in job.rows_from or (job.part,):
                old.update(job.store.rows(store_key, part))
        found.sort(key=_first)
        _no_twins([f[0] for f in found], job.path)
        rows: dict[str, list[Any]] = {}
        out: list[bytes] = []
        size = hashed_files = hashed_bytes = 0
        limit = job.now_ns - RACY_WINDOW_NS
        for encoded, rel, target, st in found:
            key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                   1 if st.st_mode & _X_BIT else 0]
            row = old.get(rel)
            if row is not None and row[:5] == key:
                hexdigest = row[5]
            else:
                hexdigest = hash_file(target, checked=True)  # a regular file, by its stat
                hashed_files += 1
                hashed_bytes += st.st_size
            if max(st.st_mtime_ns, st.st_ctime_ns) < limit:  # not racy: safe to trust later
                key.append(hexdigest)
                rows[rel] = key
            size += st.st_size
            out.append(b"%s %d %s %s\n" % (hexdigest.encode("ascii"), st.st_size,
                                           b"x" if key[4] else b"-", encoded))
        body = b"".join(out)
        cacheable = len(rows) == len(found)
        if job.store is not None:
            job.store.write(store_key, job.part, sig if cacheable else None, body, size,
                            len(found), rows)
        return _PartResult(job.part, sig, body, size, len(found), cacheable, hashed_files,
                           hashed_bytes)
    finally:
        if gc_was_enabled:
            gc.enable()


def _first(t: tuple[Any, ...]) -> Any:
    return t[0]


def _valid_rows(rows: Any, width: int) -> bool:
    return isinstance(rows, dict) and all(
        isinstance(v, list) and len(v) == width for v in rows.values())


def _atomic_write(path: Path, text: str) -> None:
    _atomic_write_bytes(path, text.encode("utf-8"))


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """A file of the hash cache, below `.reftool/`: no link followed from the project root
    down ([security.symlinks])."""
    parts = path.parts
    top = len(parts) - 1 - parts[::-1].index(".reftool")
    write_atomic(path, data, base=Path(*parts[:top]))


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
        self._memo: dict[str, dict[str, FileState | None]] = {}  # path -> rules digest -> state
        self._pool: Any = None
        # dir -> (its listing, [(parts, async stat digests of those parts)])
        self._prefetched: dict[str, tuple[_Listing, list[tuple[list[str], Any]]]] = {}
        self._real_dirs: dict[str, str] = {}  # folder -> its realpath, until a stage writes

    def prefetch(self) -> None:
        """Start walking, in two worker processes, the large directories hashed last time,
        so that their walk overlaps with reading and validating the project files. The
        folder itself is listed here, once; the workers stat its chunks of files and its
        subdirectories. Results are used only if the directory is asked for (under no
        rules), as its state at this moment; otherwise they are dropped.

        The folder is listed without the type of each entry, as if all were files (a third
        cheaper: one folder of 100,000 files, 36 ms against 59 ms); the workers stat every
        name anyway, and one that finds a folder among them makes its digest `_SUBFOLDER`,
        so that the directory is listed again with types when it is asked for."""
        big = [p for p, row in self.cache.dirs.items()  # not those hashed under rules
               if row[3] >= PARALLEL_WALK_FILES and "\0" not in p]
        if self.jobs < 2 or not big or not _can_fork():
            return
        self._pool = _fork_pool(self.jobs)
        for path in big:
            full = os.path.join(self.root, path.rstrip("/"))
            try:
                listing = _list_top(full, path, None, typed=False)
            except (OSError, HashError):
                continue  # asked for, it is listed again and the error said then
            jobs = _signature_jobs(full, path, self.real_root, listing, None)
            self._prefetched[path] = (listing, [  # a few parts a task: fewer round trips
                ([part for part, _ in batch],
                 self._pool.apply_async(_signatures_of, ([job for _, job in batch],)))
                for batch in _batches(jobs, 16)])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None

    def state(self, path: str, rules: Rules | None = None) -> FileState | None:
        """The state of a file (`a/b`) or directory (`a/`) path; None when it does not exist.
        A directory is hashed under `rules` ([digest.ignore]); a file has none.

        Raises HashError for a path SPEC.md refuses ([paths.symlinks], [paths.directory],
        [digest.directory]).
        """
        known = self._memo.get(path)
        if known is None:
            known = self._memo[path] = {}
        digest = "" if rules is None else rules.digest
        if digest not in known:
            known[digest] = self._dir_state(path, rules) if path.endswith("/") \
                else self._file_state(path)
        return known[digest]

    def forget(self, path: str) -> tuple[bool, FileState | None]:
        """Drop what is known of `path` (it was rewritten): (whether it was known, its state
        under no rules, or else under the rules whose digest sorts first)."""
        self._real_dirs.clear()  # a stage wrote: a folder may have become a link
        self._prefetched.pop(path, None)  # walked before it wrote
        states = self._memo.pop(path, {})  # by path: forgetting is O(1) (issue 18: it was a
        # scan of every state known, 0.45 s of a 1,000-stage run)
        if not states:
            return False, None
        return True, states[min(states)]  # "" (under no rules) sorts first

    # -- files

    def _target(self, path: str) -> str | None:
        return self._located(path)[0]

    def _located(self, path: str) -> tuple[str | None, os.stat_result | None]:
        """The full path of a project path and, when it is no link, its stat; (None, None)
        when it does not exist. Raises HashError when it resolves outside the project
        ([paths.symlinks]). One lstat per path: the real path of its folder is known after
        the first path in it (issue 18: it was about 8 stat calls a path)."""
        full = os.path.join(self.root, path.rstrip("/"))
        try:
            st = os.lstat(full)
        except (OSError, ValueError):
            return None, None
        folder, name = os.path.split(full)
        if stat.S_ISLNK(st.st_mode) or name in ("", ".", ".."):
            real, kept = os.path.realpath(full), None
        else:
            known = self._real_dirs.get(folder)
            if known is None:
                known = self._real_dirs[folder] = os.path.realpath(folder)
            real, kept = os.path.join(known, name), st
        if real != self.real_root and not real.startswith(self.real_root + os.sep):
            raise HashError("path_escapes", path, f"{path!r} resolves outside the project")
        return full, kept

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
        full, st_raw = self._located(path)
        if full is None:
            return None
        if st_raw is None:  # a link: what it points at
            st_raw = os.stat(full)
        if stat.S_ISDIR(st_raw.st_mode):
            raise HashError("path_kind", path, f"{path!r} is a directory; write it as "
                            f"{path + '/'!r}")
        if not stat.S_ISREG(st_raw.st_mode):  # [security.special-files]
            raise HashError("not_a_file", path, f"{path!r} {kind_of(st_raw.st_mode)}, "
                            "expected a regular file", phase="io")
        st = _Stat.of(st_raw)
        hexdigest = self._trusted(self.cache.files.get(path), st)
        if hexdigest is None:
            self.progress.expect(1, st.size)
            hexdigest = hash_file(full, checked=True)  # a regular file, by its stat
            self.progress.advance(st.size)
            self._remember(self.cache.files, path, st, hexdigest)
            self.cache.dirty = True
        return FileState(digest="sha256:" + hexdigest, size=st.size)

    # -- directories

    def _dir_state(self, path: str, rules: Rules | None = None) -> FileState | None:
        """[digest.directory], reading only the files whose stat changed.

        The stat signature has two levels: a digest per *part* (each chunk of the top-level
        files, and each top-level subdirectory, over the stats of every file in it). When it
        equals the cached one, nothing is read. Otherwise each part whose stat digest changed
        is walked again and only its changed files are read; the manifest lines of the other
        parts come from the cache as they are, since a part's lines are contiguous in manifest
        order. Large directories are walked and hashed by two processes, part by part.
        """
        full = self._target(path)
        if full is None:
            return None
        if not os.path.isdir(full):
            raise HashError("path_kind", path, f"{path!r} is a file; write it without '/'")
        key = path if rules is None else f"{path}\0{rules.digest}"  # [stale.cache]
        cached = self.cache.dirs.get(key)
        store = self.cache.part_store()
        ahead, sigs = self._walked_ahead(path) if rules is None else (None, {})
        listing = ahead or _list_top(full, path, rules)
        parts = listing.parts()
        chunk_names = dict(listing.chunks)
        results: dict[str, _PartResult] = {}
        todo = parts
        if cached is not None:  # is any part changed? (the common case: none)
            if ahead is None:
                sigs = self._part_signatures(full, path, listing, rules, parallel=(
                    self.jobs >= 2 and cached[3] >= PARALLEL_WALK_FILES))
            if _signature(sigs, parts) == cached[0]:
                return FileState(digest=cached[1], size=cached[2], files=cached[3])
            todo = []
            for part in parts:
                hit = store.lines(key, part, sigs[part]) if store else None
                if hit is None:
                    todo.append(part)
                else:
                    results[part] = _PartResult(part, sigs[part], hit[0], hit[1], hit[2],
                                                True, 0, 0)
        before = cached[4] if cached is not None else None
        jobs = [_PartJob(full, path, part, self.real_root, store, self.now_ns, rules, key,
                         chunk_names.get(part), _rows_from(part, chunk_names.get(part), before))
                for part in todo]
        for result in self._run_parts(jobs, parallel=self.jobs >= 2 and len(jobs) >= 2 and (
                cached is None or cached[3] >= PARALLEL_PARTS_FILES)):
            results[result.part] = result
            self.progress.expect(result.hashed_files, result.hashed_bytes)
            self.progress.advance(result.hashed_bytes, result.hashed_files)
        state = FileState(
            digest=directory_digest_of_manifest(_manifest_of(listing, results)),
            size=sum(r.size for r in results.values()),
            files=sum(r.count for r in results.values()))
        cacheable = all(r.cacheable for r in results.values())  # else a file was racy
        self.cache.dirs[key] = [
            _signature({p: r.sig for p, r in results.items()}, parts) if cacheable else "",
            state.digest, state.size, state.files, listing.boundaries()]
        self.cache.dirty = True
        return state

    def _walked_ahead(self, path: str) -> tuple[_Listing | None, dict[str, str]]:
        """What `prefetch` found of a directory: its listing and the stat digests of its
        parts; (None, {}) if it was not walked, or if its names held a folder."""
        ahead = self._prefetched.pop(path, None)
        if ahead is None:
            return None, {}
        sigs = {part: sig for batch, result in ahead[1] for part, sig in zip(batch, result.get())}
        if _SUBFOLDER in sigs.values():  # listed as all files, it holds a folder
            return None, {}
        return ahead[0], sigs

    def _run_parts(self, jobs: list[_PartJob], *, parallel: bool) -> Iterable[_PartResult]:
        if not parallel or not _can_fork():
            return [_build_part(job) for job in jobs]
        if self._pool is not None:
            return list(self._pool.imap_unordered(_build_part, jobs))
        with _fork_pool(self.jobs) as pool:
            return list(pool.imap_unordered(_build_part, jobs))

    def _part_signatures(self, full: str, path: str, listing: _Listing, rules: Rules | None,
                         *, parallel: bool) -> dict[str, str]:
        """The stat digest of each part: chunks of files and subdirectories."""
        jobs = _signature_jobs(full, path, self.real_root, listing, rules)
        if parallel and len(jobs) >= 2 and _can_fork():
            work = [job for _, job in jobs]
            size = max(1, len(work) // 16)
            if self._pool is not None:
                sigs = self._pool.map(_part_signature, work, chunksize=size)
            else:
                with _fork_pool(self.jobs) as pool:
                    sigs = pool.map(_part_signature, work, chunksize=size)
            return {part: sig for (part, _), sig in zip(jobs, sigs)}
        return {part: _part_signature(job) for part, job in jobs}


@dataclass(frozen=True, slots=True)
class _Listing:
    """The top of a directory: its files in chunks, and its subdirectories, leaving out what
    its rules exclude. Each chunk is (part name, its file names in manifest order)."""

    chunks: list[tuple[str, tuple[str, ...]]]
    subdirs: list[str]

    def parts(self) -> list[str]:
        return [part for part, _ in self.chunks] + self.subdirs

    def boundaries(self) -> list[str]:
        """The NFC names that end its chunks, in order (the last chunk, "", ends none)."""
        return [part[1:] for part, _ in self.chunks if part]


_Found = tuple[bytes, str, str, os.stat_result]  # UTF-8 relative path, path, real path, stat
_SigJob = tuple[str, tuple[str, ...] | None, str, str, str, Rules | None]  # see _part_signature


def _list_top(top: str, path: str, rules: Rules | None = None, typed: bool = True
              ) -> _Listing:
    """The files at the top of a directory, in chunks, and its subdirectories, from one
    listing and no stat (the file type comes with the listing where the platform gives it).
    Every name is checked ([digest.directory]) before the rules apply ([digest.ignore]).
    Not `typed`: every entry counts as a file (see `Hasher.prefetch`)."""
    files: list[str] = []
    subdirs: list[str] = []
    if not typed:
        files = os.listdir(top)
    else:
        with os.scandir(top) as it:
            for e in it:
                (subdirs if e.is_dir(follow_symlinks=False) else files).append(e.name)
    files.sort()
    subdirs.sort()
    text = "".join(files) + "".join(subdirs)
    if text.isascii() and "\n" not in text and "\r" not in text:
        # ASCII: sorted as str is sorted as bytes; encoded in one piece, twice as fast
        encoded = "\n".join(files).encode().split(b"\n") if files else []
    else:
        every = sorted(files + subdirs)
        _no_twins([_encoded(name, path) for name in every], path)
        pairs = sorted((_encoded(name, path), name) for name in files)
        encoded, files = [e for e, _ in pairs], [name for _, name in pairs]
    if rules is not None:
        keep = [not rules.excluded(_nfc(name), False) for name in files]
        encoded = [e for e, k in zip(encoded, keep) if k]
        files = [name for name, k in zip(files, keep) if k]
        subdirs = [name for name in subdirs if not rules.excluded(_nfc(name), True)]
    return _Listing(_chunks(encoded, files), subdirs)


def _chunks(encoded: list[bytes], names: list[str]) -> list[tuple[str, tuple[str, ...]]]:
    """Files in manifest order cut into chunks whose boundaries depend only on the names: a
    chunk ends after a name that `_ends_chunk`, or after CHUNK_MAX files (counted from the
    last such name, so that this cut moves only within a run of names that end no chunk).
    A chunk is named "/" + the name that ends it; the last one is ""."""
    if len(names) <= CHUNK_MAX:
        return [("", tuple(names))]
    limit = (1 << 32) // CHUNK_FILES  # `_ends_chunk`, inline: this runs on every plan
    crcs = list(map(zlib.crc32, encoded))  # in one C loop, then tested: faster than at once
    ends = [i for i, crc in enumerate(crcs) if crc * _MIX & 0xFFFFFFFF < limit]
    out: list[tuple[str, tuple[str, ...]]] = []
    start = 0
    for end in ends + [len(names)]:  # the last: no name ends it
        stop = min(end + 1, len(names))
        while stop - start > CHUNK_MAX:  # a run too long: cut it every CHUNK_MAX files
            cut = start + CHUNK_MAX
            out.append(("/" + encoded[cut - 1].decode("utf-8"), tuple(names[start:cut])))
            start = cut
        if end < len(names):
            out.append(("/" + encoded[end].decode("utf-8"), tuple(names[start:stop])))
            start = stop
    out.append(("", tuple(names[start:])))
    return out


def _ends_chunk(encoded: bytes) -> bool:
    """Whether a file name (NFC, UTF-8) ends a chunk: 1 name in CHUNK_FILES, the same on every
    machine. CRC-32 is cheap but linear, so that the low bits of similar names (`f0001.txt`,
    `f0002.txt`) are alike; a multiplication spreads it into its high bits, which decide."""
    return zlib.crc32(encoded) * _MIX & 0xFFFFFFFF < (1 << 32) // CHUNK_FILES


_MIX = 0x9E3779B1  # 2**32 / the golden ratio (Knuth's multiplicative hashing)


def _rows_from(part: str, names: tuple[str, ...] | None,
               before: list[str] | None) -> tuple[str, ...]:
    """The parts whose rows may hold the files of a chunk: the chunks of the last walk whose
    names overlap it (`before`: the names that ended them), so that a chunk split or joined
    since (a boundary file added or removed) reads none of its unchanged files again."""
    if names is None or not names or before is None:
        return (part,)
    first, last = _nfc(names[0]), _nfc(names[-1])
    return tuple(dict.fromkeys(
        [part] + ["/" + before[i] if i < len(before) else ""
                  for i in range(bisect_left(before, first), bisect_left(before, last) + 1)]))


def _manifest_of(listing: _Listing, results: dict[str, _PartResult]) -> bytes:
    """[digest.directory]: the manifest from the lines of the parts. A chunk's lines are
    contiguous, and so are a subdirectory's, which sort as "NAME/" among the top-level files:
    a chunk is split into its lines only where a subdirectory sorts inside it."""
    subdirs = [(_nfc(name).encode("utf-8") + b"/", results[name].body)
               for name in listing.subdirs]
    inside = sorted(k for k, _ in subdirs)
    blocks = list(subdirs)
    for part, _ in listing.chunks:
        body = results[part].body
        if not body:
            continue
        first = body[:body.index(b"\n")].split(b" ", 3)[3]
        last = body.rsplit(b"\n", 2)[-2].split(b" ", 3)[3]
        i = bisect_right(inside, first)
        if i < len(inside) and inside[i] < last:
            blocks += [(line.split(b" ", 3)[3], line + b"\n") for line in body.split(b"\n")[:-1]]
        else:
            blocks.append((first, body))
    blocks.sort(key=_first)
    return b"".join(body for _, body in blocks)


def _signature_jobs(full: str, path: str, real_root: str, listing: _Listing,
                    rules: Rules | None) -> list[tuple[str, _SigJob]]:
    """What `_part_signature` needs for each part, as plain data for a worker process."""
    jobs: list[tuple[str, _SigJob]] = [
        (part, (full, names, "", path, real_root, None)) for part, names in listing.chunks]
    jobs += [(name, (os.path.join(full, name), None, name + "/", path, real_root, rules))
             for name in listing.subdirs]
    return jobs


def _batches(items: list[Any], count: int) -> list[list[Any]]:
    """`items` in at most `count` runs of about equal length, in order."""
    n = len(items)
    count = max(1, min(count, n))
    return [items[i * n // count:(i + 1) * n // count] for i in range(count)]


def _signatures_of(jobs: list[_SigJob]) -> list[str]:
    return [_part_signature(job) for job in jobs]


def _part_signature(job: _SigJob) -> str:
    """In a worker process: the stat digest of one part, a chunk of files or a subtree."""
    folder, names, prefix, path, real_root, rules = job
    if names is None:
        return _scan_signature((folder, prefix, path, real_root, rules))
    return _names_signature(folder, names, path, real_root)


#: the stat digest of a chunk of names one of which is a folder: never a part's digest
_SUBFOLDER = "subfolder"


def _names_signature(top: str, names: tuple[str, ...], path: str, real_root: str) -> str:
    """The stat digest of files of `top`, of what `_scan_names` would find: one lstat a file,
    relative to the folder where the platform can; `_SUBFOLDER` if a name is a folder."""
    found: list[bytes] = []
    stats: list[bytes] = []
    add_name, add_stat = found.append, stats.append
    fd = os.open(top, os.O_RDONLY) if _BY_FD else None
    try:
        for name in names:
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False) if fd is not None \
                    else os.lstat(os.path.join(top, name))
            except FileNotFoundError:
                continue  # gone since the folder was listed
            if stat.S_ISREG(st.st_mode):  # the names were checked when the folder was listed
                add_name(name.encode() if name.isascii() else _encoded(name, path))
                try:  # `_packed`, inline: this is the whole per-file cost of a no-op plan
                    add_stat(_STAT(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                                   st.st_mode & _X_BIT))
                except struct.error:
                    add_stat(_packed(st))
            elif stat.S_ISDIR(st.st_mode):
                return _SUBFOLDER
            else:
                item = _file_at(os.path.join(top, name), name, path, real_root, st)
                if item is not None:
                    add_name(item[0])
                    add_stat(_packed(item[3]))
    finally:
        if fd is not None:
            os.close(fd)
    return _stat_digest(found, stats)


def _scan_names(top: str, names: tuple[str, ...], path: str, real_root: str) -> list[_Found]:
    """The files of `top` named (a chunk of its top-level files)."""
    found: list[_Found] = []
    for name in names:
        full = os.path.join(top, name)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            continue  # gone since the folder was listed
        item = _file_at(full, name, path, real_root, st)
        if item is not None:
            found.append(item)
    return found


def _file_at(full: str, name: str, path: str, real_root: str,
             st: os.stat_result) -> _Found | None:
    """A top-level file of a directory from its lstat, as `_file_of` does from its entry."""
    encoded = _encoded(name, path)
    if stat.S_ISREG(st.st_mode):
        return encoded, name, full, st
    if stat.S_ISDIR(st.st_mode):
        return None  # a folder since the listing: a part of its own on the next listing
    if stat.S_ISLNK(st.st_mode):
        target = _link_target(full, path + name, real_root)
        if target is None:
            return None
        full, st = target, os.stat(target)
    if not stat.S_ISREG(st.st_mode):  # [security.special-files]: FIFOs, sockets, devices
        raise HashError("not_a_file", path + name, f"{path + name!r} {kind_of(st.st_mode)}, "
                        "expected a regular file", phase="io")
    return encoded, name, full, st


def _scan(top: str, prefix: str, path: str, real_root: str, rules: Rules | None = None
          ) -> list[_Found]:
    """Every regular file below `top`, depth first in name order, with its stat."""
    found: list[_Found] = []
    stack: list[tuple[str, str]] = [(top, prefix)]
    gc_was_enabled = gc.isenabled()
    gc.disable()  # no cyclic garbage is made here; collections would only slow a large walk
    try:
        while stack:
            folder, pre = stack.pop()
            with os.scandir(folder) as it:
                entries = sorted(it, key=_name)
            if not all(e.name.isascii() for e in entries):
                _no_twins([_encoded(pre + e.name, path) for e in entries], path)
            for e in entries:
                rel = pre + e.name
                encoded = _encoded(rel, path)
                is_dir = e.is_dir(follow_symlinks=False)
                if rules is not None and rules.excluded(_nfc(rel), is_dir):
                    continue
                if is_dir:
                    stack.append((e.path, rel + "/"))
                    continue
                item = _file_of(e, rel, encoded, path, real_root)
                if item is not None:
                    found.append(item)
    finally:
        if gc_was_enabled:
            gc.enable()
    return found


def _scan_signature(job: tuple[str, str, str, str, Rules | None]) -> str:
    """In a worker process: the stat digest of one subtree, of what `_scan` would find.

    The same walk as `_scan` without collecting the files: this is the whole cost of a
    no-op plan over a large directory, so each file costs one stat and one packing.
    """
    top, prefix, path, real_root, rules = job
    found: list[bytes] = []
    stats: list[bytes] = []
    add_name, add_stat = found.append, stats.append
    stack: list[tuple[str, str]] = [(top, prefix)]
    while stack:
        folder, pre = stack.pop()
        with os.scandir(folder) as it:
            entries = sorted(it, key=_name)
        for e in entries:
            rel = pre + e.name
            if rules is not None and rules.excluded(_nfc(_checked(rel, path)),
                                                    e.is_dir(follow_symlinks=False)):
                continue
            if e.is_dir(follow_symlinks=False):
                _encoded(rel, path)
                stack.append((e.path, rel + "/"))
            elif e.is_file(follow_symlinks=False) and not e.is_symlink():
                st = e.stat(follow_symlinks=False)
                add_name(_encoded(rel, path))
                try:  # `_packed`, inline
                    add_stat(_STAT(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                                   st.st_mode & _X_BIT))
                except struct.error:
                    add_stat(_packed(st))
            else:
                item = _file_of(e, rel, _encoded(rel, path), path, real_root)
                if item is not None:
                    add_name(item[0])
                    add_stat(_packed(item[3]))
    return _stat_digest(found, stats)


def _packed(st: os.stat_result) -> bytes:
    """A file's stat as its part's stat digest holds it. A value out of the 64-bit range (an
    mtime before 1970 or after 2554) is kept modulo 2**64: a change of content still moves
    the ctime, which the system sets to now."""
    values = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode & _X_BIT)
    try:
        return _STAT(*values)
    except struct.error:
        return _STAT(*(v & _U64 for v in values))


def _stat_digest(names: list[bytes], stats: list[bytes]) -> str:
    """The stat digest of a part: the manifest names of its files in manifest order, then
    their packed stats. Names are neither empty nor hold NUL, so the first two NULs end them,
    and each stat is 40 bytes: no two lists give one input."""
    return hashlib.sha256(b"\0".join(names) + b"\0\0" + b"".join(stats)).hexdigest()


def _file_of(e: os.DirEntry[str], rel: str, encoded: bytes, path: str,
             real_root: str) -> _Found | None:
    if e.is_symlink():
        target = _link_target(e.path, path + rel, real_root)
        if target is None:
            return None
        st = os.stat(target)
    elif e.is_file(follow_symlinks=False):
        return encoded, rel, e.path, e.stat(follow_symlinks=False)
    else:
        st, target = e.stat(follow_symlinks=False), e.path
    if not stat.S_ISREG(st.st_mode):  # [security.special-files]: FIFOs, sockets, devices
        raise HashError("not_a_file", path + rel, f"{path + rel!r} {kind_of(st.st_mode)}, "
                        "expected a regular file", phase="io")
    return encoded, rel, target, st


def _checked(rel: str, path: str) -> str:
    _encoded(rel, path)
    return rel


def _encoded(rel: str, path: str) -> bytes:
    """[digest.directory]: the manifest bytes of a relative path: its NFC form in UTF-8. A
    name holding LF or CR, or not valid UTF-8, cannot be written in the manifest."""
    if rel.isascii():
        if "\n" in rel or "\r" in rel:
            raise HashError("path_unrepresentable", path + rel,
                            f"file name {rel!r} in {path!r} holds a line break")
        return rel.encode("ascii")
    if "\n" in rel or "\r" in rel:
        raise HashError("path_unrepresentable", path + rel,
                        f"file name {rel!r} in {path!r} holds a line break")
    try:
        return _nfc(rel).encode("utf-8")
    except UnicodeEncodeError:
        raise HashError("path_unrepresentable", path + rel,
                        f"a file name in {path!r} is not valid UTF-8: "
                        f"{rel.encode('utf-8', 'surrogateescape')!r}") from None


def _nfc(text: str) -> str:
    """[digest.directory]: names are written, sorted and matched in Unicode NFC."""
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


def _no_twins(encoded: list[bytes], path: str) -> None:
    """[digest.directory]: two names of one folder with one NFC form are one manifest path."""
    if len(set(encoded)) != len(encoded):
        seen: set[bytes] = set()
        for name in encoded:
            if name in seen:
                shown = path + name.decode("utf-8")
                raise HashError("path_unrepresentable", shown,
                                f"{shown!r} is named twice: two names in it have this one "
                                "NFC form, which the manifest cannot tell apart")
            seen.add(name)


def _link_target(link: str, shown: str, real_root: str) -> str | None:
    """[paths.symlinks]: the file a link inside a directory names, if any."""
    real = os.path.realpath(link)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise HashError("path_escapes", shown, f"{shown!r} links outside the project")
    if os.path.isdir(real):
        raise HashError("symlink_dir", shown, f"{shown!r} is a link to a directory")
    return real if os.path.exists(real) else None  # a dangling link is no file


def _signature(sigs: dict[str, str], parts: list[str]) -> str:
    """A directory's stat signature from the stat digests of its parts: their names, in
    order, are part of it, so that a file moved from one chunk to another changes it."""
    return hashlib.sha256(b"".join(
        b"%s %s\n" % (part.encode("utf-8"), sigs[part].encode("ascii"))
        for part in parts)).hexdigest()


def _fork_pool(jobs: int) -> Any:
    """Worker processes that SIGTERM stops at once. They are forks of the tool, whose SIGTERM
    handler raises KeyboardInterrupt (reftool/__main__.py); a worker that took that signal
    just before blocking on the pool's lock would never run it, and `terminate` would wait
    for it forever. SIGTERM is held while they are made, and their own is the default."""
    import multiprocessing
    import signal
    held = hasattr(signal, "pthread_sigmask")
    if held:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        return multiprocessing.get_context("fork").Pool(jobs, initializer=_worker_signals)
    finally:
        if held:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _worker_signals() -> None:
    import signal
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the tool's to handle: a
        # worker that took it printed a KeyboardInterrupt traceback of its own
    except ValueError:  # not the main thread of the worker: leave it (a failing
        pass  # initializer would have the pool start workers forever)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


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
