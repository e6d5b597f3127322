"""The answer of a no-op `plan`, remembered with everything it observed (issue 18).

A `plan` that finds nothing to run prints the same text for as long as its inputs are the
same: the project's files, the stat of every path it looked at, the listing of every folder it
walked, the environment, the command line and the tool itself. The first such plan records
what it observed, as `Recorder` sees it: every `os.stat` and `os.lstat` it made, every file it
opened (stat-ed just before), and every folder it listed (walked whole, every entry stat-ed),
inside the project and outside `.reftool/` (the tool's caches; its journal is observed). The
next `plan` with the same command line stats those paths again and walks those folders, and
when every observation is equal, prints the remembered answer without loading, validating or
deciding anything: the cost of a no-op plan becomes that of stat-ing its paths.

The trust is the hash cache's ([stale.cache]): a file whose stat is unchanged is taken to be
unchanged, and nothing observed within `RACY_NS` of the recording is trusted (no answer is
remembered then), since a file can change again within one timestamp tick. Only a plan that
ended with nothing to run, exit 0, and nothing on stderr is remembered; a stale project always
takes the full path (it may consult the run cache, which is not observed). A memo names the
inode and nanosecond change time of the files it observed, so one copied in from elsewhere (a
pull request that adds `.reftool/plan-memo.json`) matches nothing. `REFTOOL_NO_PLAN_MEMO=1`
turns it off.

This module imports only the standard library: `python -m reftool plan` answers from it before
the rest of the tool is imported.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time

TYPE_CHECKING = False  # typing is not imported on the fast path (mypy reads this as True)
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import IO, Any

try:  # the interpreter's own SHA-256: hashlib would load OpenSSL first (milliseconds)
    from _sha256 import sha256  # type: ignore[import-not-found]  # Python 3.11
except ImportError:  # pragma: no cover - other Pythons
    try:
        from _sha2 import sha256  # type: ignore[import-not-found]  # 3.12 and later
    except ImportError:
        from hashlib import sha256

MEMO = os.path.join(".reftool", "plan-memo.json")
JOURNAL = os.path.join(".reftool", "lock-journal.jsonl")
FORMAT = "reftool-plan-memo"
VERSION = 1
RACY_NS = 2_000_000_000  # as the hash cache's [stale.cache] window
#: A plan that listed folders of more entries than this in all is not remembered: checking
#: the answer would walk them in one process, slower than the plan's own walk in two
#: (a directory dep of 100,000 files: 1.1 s against 0.55 s).
WALK_LIMIT = 20_000
ENTRIES = 4  # answers kept, one per command line, the latest first
MAX_MEMO_BYTES = 256 * 1024 * 1024
PIPELINE = "pipeline.yaml"  # [tool.root]: the default pipeline file
LOCK = "pipeline.lock"
#: Options whose plan is never remembered: --force is never a no-op; --committed-only and
#: --no-hash-cache ask for work that a memo would skip; -f and -C name other files.
NOT_REMEMBERED = ("--force", "--committed-only", "--no-hash-cache", "-f", "--file", "-h",
                  "--help")

#: An observation is named `KIND\0PATH`: KIND "s" (stat), "l" (lstat) or "t" (a folder walked
#: whole); PATH relative to the project's root.


def eligible(argv: Sequence[str]) -> bool:
    """Whether this command line's answer may be remembered and replayed."""
    if not argv or argv[0] != "plan" or os.environ.get("REFTOOL_NO_PLAN_MEMO"):
        return False
    return not any(a == o or a.startswith(o + "=") or (o == "-f" and a.startswith("-f"))
                   for a in argv[1:] for o in NOT_REMEMBERED)


def find_root(start: str, pipeline_file: str = PIPELINE) -> str | None:
    """[tool.root]: the nearest of `start` and its parents holding the pipeline file, searched
    as git searches for `.git`: upward, and no further than the top of the git repository
    `start` is in (a folder holding `.git`); None when there is none. (Here, not in the CLI,
    so that a remembered plan finds its root before the CLI is imported.)"""
    if os.path.isabs(pipeline_file):
        return None
    folder = start
    while True:
        if os.path.isfile(os.path.join(folder, pipeline_file)):
            return folder
        if os.path.lexists(os.path.join(folder, ".git")):
            return None
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _stat_value(st: os.stat_result) -> list[int]:
    # mode, size, mtime and ctime in ns, inode, device
    return [st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def _observe(path: str, kind: str) -> object:
    """What the disk says of `path` now: a stat, an lstat, or a folder walked whole."""
    if kind == "t":
        return _walk(path)[0]  # past WALK_LIMIT entries: PAST_LIMIT, never a recorded digest
    try:
        return _stat_value(os.stat(path) if kind == "s" else os.lstat(path))
    except OSError as e:
        return f"errno {e.errno}"


#: The digest of a tree past the walk limit: never a recorded one (those are hex).
PAST_LIMIT = "past the walk limit"


def _walk(folder: str, skip: frozenset[str] = frozenset(), limit: int = WALK_LIMIT
          ) -> tuple[str, int, int]:
    """The digest of a folder's whole tree (every entry's name and lstat, and the stat of what
    each link points at), the latest mtime or ctime in it, and its number of entries. `skip`
    are full paths of folders left out (the project's `.reftool` and `.git`). The tree is
    listed first and stat-ed only when it holds at most `limit` entries; past that, the digest
    is PAST_LIMIT and nothing was stat-ed (issue 18: 100 folders of 1,000 files had 21,000 of
    them stat-ed on every plan, 20% of its time, for an answer then not kept)."""
    tree = _tree(folder, skip, limit)
    if tree is None:
        return PAST_LIMIT, 0, limit + 1
    lines: list[bytes] = []
    latest = count = 0
    for prefix, entries in tree:
        if isinstance(entries, int):
            lines.append(b"%s\0errno %d\n" % (os.fsencode(prefix), entries))
            continue
        count += len(entries)
        for entry in entries:
            if entry.path in skip:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as err:
                lines.append(b"%s\0errno %d\n" % (os.fsencode(prefix + entry.name),
                                                    err.errno or 0))
                continue
            latest = max(latest, st.st_mtime_ns, st.st_ctime_ns)
            lines.append(b"%s\0%d %d %d %d %d %d\n" % (
                os.fsencode(prefix + entry.name), st.st_mode, st.st_size, st.st_mtime_ns,
                st.st_ctime_ns, st.st_ino, st.st_dev))
            if stat.S_ISLNK(st.st_mode):
                lines.append(f"->{_observe(entry.path, 's')}\n".encode())
    return str(sha256(b"".join(lines)).hexdigest()), latest, count


def _tree(folder: str, skip: frozenset[str], limit: int
          ) -> list[tuple[str, list[os.DirEntry[str]] | int]] | None:
    """Each folder of a tree (its path below `folder`, with a final `/`) with its entries by
    name, or the errno that stopped its listing, in walk order; None past `limit` entries.
    Folders are told by the listing's entry type, without a stat (a folder made or replaced
    after the plan began changes a change time the walk then reads: the answer is racy)."""
    out: list[tuple[str, list[os.DirEntry[str]] | int]] = []
    count = 0
    stack = [(folder, "")]
    while stack:
        top, prefix = stack.pop()
        try:
            entries = _entries(top, limit - count)
        except OSError as e:
            out.append((prefix, e.errno or 0))
            continue
        count += len(entries)
        if count > limit:
            return None
        out.append((prefix, entries))
        for entry in entries:
            try:
                if entry.path not in skip and entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, prefix + entry.name + "/"))
            except OSError:
                continue  # its stat says so, in the walk
    return out


def _entries(folder: str, most: int) -> list[os.DirEntry[str]]:
    """A folder's entries by name; past `most`, only the first `most + 1` read (issue 18: a
    folder of 100,000 files was listed, sorted and stat-ed whole before the limit was
    checked, 1.1 s and 100 MiB on each plan, for an answer then not kept)."""
    entries = []
    with os.scandir(folder) as it:
        for entry in it:
            entries.append(entry)
            if len(entries) > most:
                return entries
    return sorted(entries, key=_name)


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _tool_stamp() -> str:
    """The tool as installed: its Python, and the size and mtime of every file of the package
    and of its schemas, so that an edited or upgraded tool never replays an old answer."""
    package = os.path.dirname(os.path.abspath(__file__))
    h = sha256(f"{sys.version}\0{os.path.realpath(sys.executable)}\n".encode())
    for top in (package, os.path.join(os.path.dirname(package), "schemas")):
        for folder, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith((".py", ".json")):
                    try:
                        st = os.stat(os.path.join(folder, name))
                    except OSError:
                        continue
                    h.update(f"{folder}/{name}\0{st.st_size} {st.st_mtime_ns}\n".encode(
                        "utf-8", "surrogateescape"))
    return str(h.hexdigest())


def _environment() -> str:
    """Every variable but `_`, which shells set to the path of each command they run (so that
    `reftool plan` and `python -m reftool plan` would never share an answer); a stage may
    record any other ([pipeline.env-record])."""
    h = sha256()
    for name, value in sorted(os.environ.items()):
        if name != "_":
            h.update(f"{name}={value}\0".encode("utf-8", "surrogateescape"))
    return str(h.hexdigest())


def key(argv: Sequence[str], start: str, root: str) -> dict[str, object]:
    """What an answer is remembered under, besides the observations."""
    return {"argv": list(argv), "start": start, "root": root, "env": _environment(),
            "tool": _tool_stamp()}


def _read(root: str) -> list[dict[str, Any]]:
    """The remembered answers; none when the memo is no regular file of a bounded size (a
    link, a FIFO or a device planted there is neither followed nor waited on:
    [security.special-files], [security.symlinks])."""
    try:
        fd = os.open(os.path.join(root, MEMO), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return []
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_MEMO_BYTES:
            return []
        with os.fdopen(fd, "rb") as f:
            fd = -1
            data = json.loads(f.read(MAX_MEMO_BYTES + 1))
    except (OSError, ValueError, RecursionError):
        return []
    finally:
        if fd >= 0:
            os.close(fd)
    if not isinstance(data, dict) or data.get("format") != FORMAT or \
            data.get("version") != VERSION or not isinstance(data.get("entries"), list):
        return []
    return [e for e in data["entries"] if isinstance(e, dict)]


def _holds(entry: dict[str, Any], root: str) -> bool:
    """Whether every observation of a remembered answer is still what the disk says."""
    seen = entry.get("observed")
    if not isinstance(seen, dict) or not isinstance(entry.get("stdout"), str):
        return False
    # a memo that does not observe the pipeline file and the lock proves nothing
    for must in (PIPELINE, LOCK):
        if f"l\0{must}" not in seen:
            return False
    for name, value in seen.items():
        kind, _, path = name.partition("\0")
        if kind not in ("s", "l", "t") or _observe(os.path.join(root, path), kind) != value:
            return False
    return True


def answer(argv: Sequence[str], out: IO[str]) -> int | None:
    """Print the remembered answer of this plan and return its exit code; None when there is
    none that still holds (the caller then plans for real)."""
    if not eligible(argv):
        return None
    try:
        start = os.getcwd()
        root = find_root(start)
        if root is None:
            return None
        entries = _read(root)
        if not entries:
            return None  # nothing remembered: the key is not even computed
        wanted = key(argv, start, root)
        for entry in entries:
            if entry.get("key") == wanted and _holds(entry, root):
                out.write(entry["stdout"])
                out.flush()
                code = entry.get("code", 0)
                return code if isinstance(code, int) else None
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return None


class Recorder:
    """Records what a plan observes, while it runs in this process (see the module's text).

    Worker processes are not watched: a folder they walk was listed here first (its top), and
    a listing is observed as its whole tree. Anything the recorder cannot follow (a path given
    as a descriptor) makes it `spoiled`: nothing is remembered."""

    _active: Recorder | None = None
    _hooked = False

    def __init__(self, root: str) -> None:
        self.root = root
        self._base = root if root.endswith("/") else root + "/"  # os.path.join's prefix
        self.started = time.time_ns()
        self.observed: dict[str, Any] = {}
        self.listed: set[str] = set()  # folders the plan listed
        self.latest = 0  # the latest mtime or ctime observed
        self.spoiled = False
        self._busy = False
        self._pid = os.getpid()  # forked workers inherit the hooks; only this process records
        self._skip = frozenset({os.path.join(root, ".reftool"), os.path.join(root, ".git")})
        self._real: tuple[Callable[..., os.stat_result], Callable[..., os.stat_result]] | None \
            = None

    # -- what counts

    def _relative(self, path: object) -> str | None:
        """The path as the project names it, or None when it is not observed (outside the
        project, or one of the tool's caches)."""
        if isinstance(path, str):
            text = path
        elif isinstance(path, (bytes, os.PathLike)):
            text = os.fsdecode(path)
        else:
            self.spoiled = True  # a descriptor: cannot be observed again by name
            return None
        full = text if text.startswith("/") else self._base + text
        if "/." in full or "//" in full or full.endswith("/"):  # else normpath changes nothing
            full = os.path.normpath(full)  # (issue 18: a third of the hook's cost)
        if full == self.root:
            return "."
        if not full.startswith(self.root + os.sep):
            return None
        rel = full[len(self.root) + 1:]
        if rel == JOURNAL or not (rel == ".reftool" or rel.startswith(".reftool" + os.sep)):
            return rel
        return None

    def _note(self, rel: str, kind: str, value: object) -> None:
        if isinstance(value, list):
            self.latest = max(self.latest, value[2], value[3])
        name = f"{kind}\0{rel}"
        old = self.observed.get(name)
        if old is not None and old != value:
            self.spoiled = True  # it changed while the plan ran
        self.observed[name] = value

    # -- the hooks

    def _stat(self, real: Callable[..., os.stat_result], kind: str
              ) -> Callable[..., os.stat_result]:
        def hooked(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
            if self._busy or os.getpid() != self._pid:
                return real(path, *args, **kwargs)
            named = self._named(path, kwargs.get("dir_fd"))
            follow = kwargs.get("follow_symlinks", True) and kind == "s"
            try:
                result = real(path, *args, **kwargs)
            except OSError as e:
                rel = self._relative(named)
                if rel is not None:
                    self._note(rel, "s" if follow else "l", f"errno {e.errno}")
                raise
            rel = self._relative(named)
            if rel is not None:
                self._note(rel, "s" if follow else "l", _stat_value(result))
            return result
        return hooked

    def _named(self, path: Any, dir_fd: int | None) -> Any:
        """The path a stat relative to a folder's descriptor is of, by the name the system
        keeps for the descriptor; None (which spoils the recording) where it keeps none."""
        if dir_fd is None or isinstance(path, int) or os.path.isabs(os.fsdecode(path)):
            return path
        try:
            folder = os.readlink(f"/proc/self/fd/{dir_fd}")
        except OSError:
            return None
        return os.path.join(folder, os.fsdecode(path))

    @classmethod
    def _audit(cls, event: str, args: tuple[Any, ...]) -> None:
        self = cls._active
        if self is None or self._busy or event not in ("open", "os.scandir", "os.listdir") \
                or os.getpid() != self._pid:
            return
        self._busy = True
        try:
            self._seen(event, args)
        finally:
            self._busy = False

    def _seen(self, event: str, args: tuple[Any, ...]) -> None:
        path = args[0] if args else None
        if event == "open":
            if path is None or isinstance(path, int):
                return  # os.fdopen and the like: the file was observed when it was opened
            rel = self._relative(path)
            if rel is None:
                return
            full = os.path.join(self.root, rel)
            self._note(rel, "l", _observe(full, "l"))  # before it is read: git's order
            self._note(rel, "s", _observe(full, "s"))
            return
        if path is None:
            path = "."
        rel = self._relative(path)
        if rel is not None:
            self.listed.add(rel)  # walked whole if the answer is kept (`_walk_listed`)

    def _walk_listed(self) -> None:
        """Observe each folder the plan listed as its whole tree, once, at the end: a change
        made after the plan began has a change time after `started`, and makes the answer
        racy, so a walk now proves the tree was as it is since before the plan looked. A plan
        whose answer is not kept (one that found work) pays for no walk."""
        walked: list[str] = []
        budget = WALK_LIMIT
        for rel in sorted(self.listed, key=lambda r: (r.count(os.sep), r)):
            full = os.path.normpath(os.path.join(self.root, rel))
            if any(full == w or full.startswith(w + os.sep) for w in walked):
                continue  # inside a folder already walked whole
            digest, latest, count = _walk(full, self._skip, budget)
            budget -= count
            if budget < 0:
                self.spoiled = True  # too large to check faster than planning: not kept
                return
            walked.append(full)
            self.latest = max(self.latest, latest)
            self._note(rel, "t", digest)

    def __enter__(self) -> Recorder:
        if not Recorder._hooked:  # an audit hook cannot be removed: installed once, idle after
            sys.addaudithook(Recorder._audit)
            Recorder._hooked = True
        self._real = (os.stat, os.lstat)
        os.stat = self._stat(self._real[0], "s")
        os.lstat = self._stat(self._real[1], "l")
        Recorder._active = self
        return self

    def __exit__(self, *exc: object) -> None:
        Recorder._active = None
        if self._real is not None:
            os.stat, os.lstat = self._real

    # -- the outcome

    def usable(self) -> bool:
        """Whether what was observed may be trusted later: nothing spoiled it, nothing in it
        is racy, and it includes the pipeline file and the lock."""
        return not self.spoiled and self.latest < self.started - RACY_NS and \
            f"l\0{PIPELINE}" in self.observed and \
            isinstance(self.observed.get(f"l\0{LOCK}"), list)

    def remember(self, argv: Sequence[str], start: str, stdout: str, code: int) -> bool:
        """Keep this plan's answer in `.reftool/plan-memo.json`, replaced atomically; False when
        it may not be kept. A failure to write is no error (a cache)."""
        self._busy = True  # nothing of this is the plan's own observation
        try:
            self._walk_listed()
        finally:
            self._busy = False
        if not self.usable():
            return False
        from pathlib import Path

        from .files.safe_io import ignore_cache_folder, write_atomic
        entry = {"key": key(argv, start, self.root), "observed": self.observed,
                 "stdout": stdout, "code": code}
        entries = [entry] + [e for e in _read(self.root) if e.get("key") != entry["key"]]
        data = {"format": FORMAT, "version": VERSION, "entries": entries[:ENTRIES]}
        try:
            ignore_cache_folder(Path(self.root))
            write_atomic(Path(self.root, MEMO), json.dumps(data, separators=(",", ":")).encode(),
                         base=Path(self.root))
        except OSError:
            return False
        return True


__all__ = ["Recorder", "answer", "eligible", "find_root"]
