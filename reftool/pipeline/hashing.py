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
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files.ignore import Rules
from ..files.model import FileState
from ..files.safe_io import kind_of, open_regular, write_atomic

CACHE_FORMAT = "reftool-hash-cache"
CACHE_VERSION = 1
#: A file modified this close to (or after) the moment it was hashed is not cached.
RACY_WINDOW_NS = 2_000_000_000
#: Directories that held at least this many files are walked by two processes.
PARALLEL_WALK_FILES = 20_000
#: Directories that held at least this many files are rebuilt part by part in two processes.
PARALLEL_PARTS_FILES = 2_000
_BUFFER = 1 << 20
#: [digest.directory]: the owner-execute bit, where the platform has one. Windows has none
#: (Python makes one up from the file name's extension), so there MODE is always `-`.
_X_BIT = 0 if os.name == "nt" else stat.S_IXUSR


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


def hash_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file: small files in one read, large ones streamed in constant
    memory, read by a second thread while this one hashes (both release the GIL), so that a
    large file is hashed at close to the speed of SHA-256 itself."""
    with open_regular(path, buffered=False) as f:  # [security.special-files]: never hangs
        if os.fstat(f.fileno()).st_size <= _SMALL:  # read() of a size allocates that size
            data = f.read()  # unbuffered: reads it all
            if len(data) <= _SMALL:
                return hashlib.sha256(data).hexdigest()
            h = hashlib.sha256(data)  # it grew since: go on streaming
        else:
            h = hashlib.sha256()
        _hash_rest(f, h)
        return h.hexdigest()


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
    cached in *parts*: its top-level files, and each top-level subdirectory. A part keeps the
    manifest lines it contributes (`.frag`, raw bytes under a header naming the part and the
    stat digest it was taken under) and its per-file rows (`.rows.json`), so that a change
    in one part rewrites only that part, and unchanged parts are read as raw bytes.
    """

    def __init__(self, folder: Path | None, root_id: str) -> None:
        self.folder = folder
        self.root_id = root_id
        self.files: dict[str, list[Any]] = {}  # path -> [size, mtime, ctime, ino, x, hex]
        self.dirs: dict[str, list[Any]] = {}  # path -> [signature, digest, size, files]
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
        if _valid_rows(files, 6) and _valid_rows(dirs, 4):
            self.files, self.dirs = files, dirs  # type: ignore[assignment]

    def part_store(self) -> PartStore | None:
        return None if self.folder is None else PartStore(str(self.folder), self.root_id)

    def save(self) -> None:
        """Write what changed, atomically; a failure to write is not an error (a cache)."""
        if self.folder is None or not self.dirty:
            return
        try:
            ignore = self.folder.parent / ".gitignore"
            if not ignore.exists():
                _atomic_write(ignore, "# written by reftool: a local cache, never versioned\n*\n")
            _atomic_write(self.folder / "index.json", json.dumps(
                {**self._head(), "files": self.files, "dirs": self.dirs},
                separators=(",", ":")))
        except OSError:
            pass
        self.dirty = False


@dataclass(frozen=True, slots=True)
class PartStore:
    """Where the parts of cached directories live; plain data, so worker processes use it.

    A part is the top-level files of a directory (part "") or one top-level subdirectory.
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
    part: str  # "" for its top-level files, else a top-level subdirectory
    real_root: str
    store: PartStore | None
    now_ns: int
    rules: Rules | None = None  # [digest.ignore]
    key: str = ""  # the directory's key in the caches: its path, and its rules' digest


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
        if job.part == "":
            found, lines, _ = _scan_top(job.full, job.path, job.real_root, job.rules)
        else:
            found, lines = _scan(os.path.join(job.full, job.part), job.part + "/", job.path,
                                 job.real_root, job.rules)
        sig = hashlib.sha256(b"".join(lines)).hexdigest()
        store_key = job.key or job.path
        hit = job.store.lines(store_key, job.part, sig) if job.store else None
        if hit is not None:
            return _PartResult(job.part, sig, hit[0], hit[1], hit[2], True, 0, 0)
        old = job.store.rows(store_key, job.part) if job.store else {}
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
                hexdigest = hash_file(target)
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
        self._prefetched: dict[str, dict[str, Any]] = {}  # dir -> subdir -> async result
        self._real_dirs: dict[str, str] = {}  # folder -> its realpath, until a stage writes

    def prefetch(self) -> None:
        """Start walking, in two worker processes, the large directories hashed last time,
        so that their walk overlaps with reading and validating the project files. Results
        are used only if the directory is asked for; otherwise they are dropped."""
        big = [p for p, row in self.cache.dirs.items()  # not those hashed under rules
               if row[3] >= PARALLEL_WALK_FILES and "\0" not in p]
        if self.jobs < 2 or not big or not _can_fork():
            return
        import multiprocessing
        self._pool = multiprocessing.get_context("fork").Pool(self.jobs, _worker_start)
        for path in big:
            full = os.path.join(self.root, path.rstrip("/"))
            try:
                subdirs = sorted(e.name for e in os.scandir(full)
                                 if e.is_dir(follow_symlinks=False))
            except OSError:
                continue
            self._prefetched[path] = {
                name: self._pool.apply_async(_scan_signature, ((
                    os.path.join(full, name), name + "/", path, self.real_root, None),))
                for name in subdirs}

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
            real, st = os.path.realpath(full), None
        else:
            known = self._real_dirs.get(folder)
            if known is None:
                known = self._real_dirs[folder] = os.path.realpath(folder)
            real = os.path.join(known, name)
        if real != self.real_root and not real.startswith(self.real_root + os.sep):
            raise HashError("path_escapes", path, f"{path!r} resolves outside the project")
        return full, None if st is None or stat.S_ISLNK(st.st_mode) else st

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
            hexdigest = hash_file(full)
            self.progress.advance(st.size)
            self._remember(self.cache.files, path, st, hexdigest)
            self.cache.dirty = True
        return FileState(digest="sha256:" + hexdigest, size=st.size)

    # -- directories

    def _dir_state(self, path: str, rules: Rules | None = None) -> FileState | None:
        """[digest.directory], reading only the files whose stat changed.

        The stat signature has two levels: a digest per *part* (the top-level files, and each
        top-level subdirectory, over the stats of every file in it). When it equals the cached
        one, nothing is read. Otherwise each part whose stat digest changed is walked again and
        only its changed files are read; the manifest lines of the other parts come from the
        cache as they are, since a part's lines are contiguous in manifest order. Large
        directories are walked and hashed by two processes, part by part.
        """
        full = self._target(path)
        if full is None:
            return None
        if not os.path.isdir(full):
            raise HashError("path_kind", path, f"{path!r} is a file; write it without '/'")
        key = path if rules is None else f"{path}\0{rules.digest}"  # [stale.cache]
        cached = self.cache.dirs.get(key)
        store = self.cache.part_store()
        _, top_lines, subdirs = _scan_top(full, path, self.real_root, rules)
        parts = [""] + subdirs
        results: dict[str, _PartResult] = {}
        todo = parts
        if cached is not None:  # is any part changed? (the common case: none)
            big = self.jobs >= 2 and cached[3] >= PARALLEL_WALK_FILES
            sigs = self._subtree_signatures(full, path, subdirs, big, rules)
            sigs[""] = hashlib.sha256(b"".join(top_lines)).hexdigest()
            if _signature(sigs, subdirs) == cached[0]:
                return FileState(digest=cached[1], size=cached[2], files=cached[3])
            todo = []
            for part in parts:
                hit = store.lines(key, part, sigs[part]) if store else None
                if hit is None:
                    todo.append(part)
                else:
                    results[part] = _PartResult(part, sigs[part], hit[0], hit[1], hit[2],
                                                True, 0, 0)
        jobs = [_PartJob(full, path, part, self.real_root, store, self.now_ns, rules, key)
                for part in todo]
        for result in self._run_parts(jobs, parallel=self.jobs >= 2 and len(jobs) >= 2 and (
                cached is None or cached[3] >= PARALLEL_PARTS_FILES)):
            results[result.part] = result
            self.progress.expect(result.hashed_files, result.hashed_bytes)
            self.progress.advance(result.hashed_bytes, result.hashed_files)
        # a subdirectory's lines form one block that sorts as "NAME/" among the top-level
        # files' own lines ([digest.directory] orders by the UTF-8 bytes of the path)
        blocks = [(line.split(b" ", 3)[3], line + b"\n")
                  for line in results[""].body.split(b"\n")[:-1]]
        blocks += [(_nfc(name).encode("utf-8") + b"/", results[name].body) for name in subdirs]
        blocks.sort(key=_first)
        state = FileState(
            digest=directory_digest_of_manifest(b"".join(body for _, body in blocks)),
            size=sum(r.size for r in results.values()),
            files=sum(r.count for r in results.values()))
        if all(r.cacheable for r in results.values()):
            self.cache.dirs[key] = [_signature({p: r.sig for p, r in results.items()}, subdirs),
                                     state.digest, state.size, state.files]
        else:
            self.cache.dirs.pop(key, None)
        self.cache.dirty = True
        return state

    def _run_parts(self, jobs: list[_PartJob], *, parallel: bool) -> Iterable[_PartResult]:
        if not parallel or not _can_fork():
            return [_build_part(job) for job in jobs]
        import multiprocessing
        with multiprocessing.get_context("fork").Pool(self.jobs, _worker_start) as pool:
            return list(pool.imap_unordered(_build_part, jobs))

    def _subtree_signatures(self, full: str, path: str, subdirs: list[str], parallel: bool,
                            rules: Rules | None = None) -> dict[str, str]:
        """The stat digest of each top-level subdirectory."""
        jobs = [(os.path.join(full, name), name + "/", path, self.real_root, rules)
                for name in subdirs]
        ahead = self._prefetched.pop(path, None) if rules is None else None
        if ahead is not None and set(ahead) == set(subdirs):
            return {name: ahead[name].get() for name in subdirs}
        if parallel and len(subdirs) >= 2 and _can_fork():
            import multiprocessing
            with multiprocessing.get_context("fork").Pool(self.jobs, _worker_start) as pool:
                sigs = pool.map(_scan_signature, jobs, chunksize=max(1, len(jobs) // 16))
            return dict(zip(subdirs, sigs))
        return {name: _scan_signature(job) for name, job in zip(subdirs, jobs)}


_Found = tuple[bytes, str, str, os.stat_result]  # UTF-8 relative path, path, real path, stat


def _scan_top(top: str, path: str, real_root: str, rules: Rules | None = None
              ) -> tuple[list[_Found], list[bytes], list[str]]:
    """The files at the top of a directory (with their signature lines) and its subdirectories,
    leaving out what `rules` exclude ([digest.ignore])."""
    found: list[_Found] = []
    lines: list[bytes] = []
    subdirs: list[str] = []
    with os.scandir(top) as it:
        entries = sorted(it, key=_name)
    if not all(e.name.isascii() for e in entries):
        _no_twins([_encoded(e.name, path) for e in entries], path)
    for e in entries:
        encoded = _encoded(e.name, path)
        is_dir = e.is_dir(follow_symlinks=False)
        if rules is not None and rules.excluded(_nfc(e.name), is_dir):
            continue  # an excluded entry is not examined further
        if is_dir:
            subdirs.append(e.name)
            continue
        item = _file_of(e, e.name, encoded, path, real_root)
        if item is not None:
            found.append(item)
            lines.append(_line(item))
    return found, lines, subdirs


def _scan(top: str, prefix: str, path: str, real_root: str, rules: Rules | None = None
          ) -> tuple[list[_Found], list[bytes]]:
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
                    lines.append(_line(item))
    finally:
        if gc_was_enabled:
            gc.enable()
    return found, lines


def _scan_signature(job: tuple[str, str, str, str, Rules | None]) -> str:
    """In a worker process: the stat digest of one subtree, the lines `_scan` would give.

    The same walk as `_scan` without collecting the files: this is the whole cost of a
    no-op plan over a large directory, so each file costs one stat and one line.
    """
    top, prefix, path, real_root, rules = job
    lines: list[bytes] = []
    append = lines.append
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
                append(b"%s %d %d %d %d %d\n" % (_encoded(rel, path), st.st_size,
                                                 st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                                                 st.st_mode & _X_BIT))
            else:
                item = _file_of(e, rel, _encoded(rel, path), path, real_root)
                if item is not None:
                    append(_line(item))
    return hashlib.sha256(b"".join(lines)).hexdigest()


def _line(item: _Found) -> bytes:
    encoded, _, _, st = item
    return b"%s %d %d %d %d %d\n" % (encoded, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                                     st.st_ino, st.st_mode & _X_BIT)


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


def _signature(sigs: dict[str, str], subdirs: list[str]) -> str:
    """A directory's stat signature from the stat digests of its parts."""
    return hashlib.sha256(sigs[""].encode() + b"".join(
        b"%s/ %s\n" % (name.encode("utf-8"), sigs[name].encode("ascii"))
        for name in subdirs)).hexdigest()


def _worker_start() -> None:
    """In a forked worker: the signal handlers it inherited are the parent's (a `run`'s
    handler prints "interrupted" and carries on), so the SIGTERM by which a pool is
    terminated would not end it, and the pool would wait for it forever. A worker ends on
    SIGTERM and leaves Ctrl-C to the process that forked it."""
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _can_fork() -> bool:
    """Whether worker processes may be forked now: only while this process has no other
    thread. A thread may hold a lock (stdout's, the printer's, the allocator's) at the moment
    of the fork, and the child would wait on it forever: `run` hashes directories while stage
    threads finish, and a pool forked then hung about one run in ten (issue 18)."""
    import threading
    if threading.active_count() > 1:
        return False
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
