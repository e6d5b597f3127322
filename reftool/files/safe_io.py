"""Reading and writing without being led astray by the tree: SPEC section 16.

Paths read from files (manifests, run entries, the journal, the lock, records) are checked
against [paths.form] before any use ([security.paths]); digests before they name an object.
Files are read only when they are regular files, opened so that a FIFO cannot hang the reader
([security.special-files]). Tool-owned paths are written without following a symbolic link:
every folder between the trusted base and the file, and the file itself, must not be a link
([security.symlinks]); new files are created with O_EXCL and O_NOFOLLOW beside their final
name and renamed into place ([files.machine]).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal, overload

_HEX64 = re.compile(r"[0-9a-f]{64}")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class UnsafePath(OSError):
    """A path the tool refuses to use: it would leave its folder, or go through a link."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unsafe path"


class NotRegularFile(OSError):
    """A FIFO, socket, device or folder where a regular file was expected
    ([security.special-files])."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not a regular file"


# ---------------------------------------------------------------------------------- checking

def is_relative_path(path: object, *, directory: bool | None = None) -> bool:
    """[paths.form], [security.paths]: relative POSIX form, no `.`/`..`/empty segment, no
    backslash, no NUL or control character; `directory` says whether a final `/` is required
    (True), forbidden (False) or either (None)."""
    if not isinstance(path, str) or not path or path.startswith("/"):
        return False
    if directory is not None and path.endswith("/") != directory:
        return False
    if "\\" in path or any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return False
    segments = path[:-1].split("/") if path.endswith("/") else path.split("/")
    return all(s not in ("", ".", "..") for s in segments)


def is_hex_digest(text: object) -> bool:
    """[security.paths]: 64 lowercase hex digits, the only thing allowed to name an object."""
    return isinstance(text, str) and _HEX64.fullmatch(text) is not None


def is_sha256(text: object) -> bool:
    """`sha256:` and 64 lowercase hex digits ([digest.form])."""
    return isinstance(text, str) and text.startswith("sha256:") and is_hex_digest(text[7:])


def _below(base: Path, path: Path) -> Iterator[Path]:
    """Each path from the first component below `base` down to `path` itself."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(base))
    if rel == ".":
        return
    if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        raise UnsafePath(f"{path}: lies outside {base}")
    current = Path(os.path.abspath(base))
    for part in rel.split(os.sep):
        current = current / part
        yield current


LINK_REFUSED = ("is a symbolic link; reftool does not write through a link in a folder it owns "
                "(remove the link)")


def refuse_links(base: Path, path: Path) -> None:
    """[security.symlinks]: raise UnsafePath when `path` or a folder between `base` and it is a
    symbolic link. Components that do not exist yet end the check."""
    for step in _below(base, path):
        try:
            st = os.lstat(step)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePath(f"{step}: {LINK_REFUSED}")


def make_dirs(base: Path, folder: Path) -> None:
    """Create `folder` and its parents below `base`, none of them a link ([security.symlinks])."""
    for step in _below(base, folder):
        try:
            os.mkdir(step)
            continue
        except FileExistsError:
            pass
        st = os.lstat(step)
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePath(f"{step}: {LINK_REFUSED}")
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafePath(f"{step}: is not a folder")


def is_inside(base: Path, path: Path, *, real_base: str | None = None) -> bool:
    """Whether `path`, links resolved, lies in `base` (links resolved; `real_base` when the
    caller knows it already)."""
    if real_base is None:
        real_base = os.path.realpath(base)
    real = os.path.realpath(path)
    return real == real_base or real.startswith(real_base.rstrip(os.sep) + os.sep)


# ---------------------------------------------------------------------------------- writing

def _temp_beside(path: str, dir_fd: int | None = None) -> tuple[str, int]:
    """A new file beside `path` (in the folder `dir_fd`, when given), never through a link."""
    head, tail = os.path.split(path)
    for attempt in range(100):
        tmp = os.path.join(head, f".{tail}.{os.getpid()}.{attempt}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644,
                         dir_fd=dir_fd)
        except FileExistsError:
            continue
        return tmp, fd
    raise UnsafePath(f"{path}: cannot create a temporary file beside it")


def write_atomic(path: Path, data: bytes, *, base: Path, durable: bool = False) -> None:
    """[files.machine], [security.symlinks]: write beside `path` with O_EXCL|O_NOFOLLOW,
    (flush to stable storage when `durable`), rename over; nothing below `base` is a link."""
    make_dirs(base, path.parent)
    refuse_links(base, path)
    tmp, fd = _temp_beside(os.fspath(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _unlink_quietly(path: str, dir_fd: int | None = None) -> None:
    try:
        os.unlink(path, dir_fd=dir_fd)
    except OSError:
        pass


def lstat_in(folder_fd: int, name: str, display: str) -> os.stat_result | None:
    """What `name` in a folder from `open_folder` is, or None when it is not there; a link
    there is refused ([security.symlinks]): nothing is written over it."""
    try:
        st = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePath(f"{display}: {LINK_REFUSED}")
    return st


def write_in_folder(folder_fd: int, name: str, data: bytes, display: str) -> None:
    """`write_atomic` of a file `name` in a folder from `open_folder`: no folder of the path
    is made or checked again (issue 18, `Store._opened`), and a link swapped in for one
    meanwhile changes nothing."""
    lstat_in(folder_fd, name, display)
    tmp, fd = _temp_beside(name, folder_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.close(fd)
        fd = -1
        os.replace(tmp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        _unlink_quietly(tmp, folder_fd)
        raise


def open_subfolder(folder_fd: int, name: str, display: str) -> int:
    """The folder `name` in a folder from `open_folder`, made if need be and opened as a
    descriptor (to be closed by the caller), never a link ([security.symlinks])."""
    try:
        os.mkdir(name, dir_fd=folder_fd)
    except FileExistsError:
        pass
    try:
        return os.open(name, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW,
                       dir_fd=folder_fd)
    except OSError as e:
        st = lstat_in(folder_fd, name, display)  # a link: refused, named
        what = "is not a folder" if st is not None else f"cannot open it ({e.strerror})"
        raise UnsafePath(f"{display}: {what}") from None


def open_for_writing(path: Path, *, base: Path, append: bool = False) -> IO[str]:
    """A text file below `base` opened for writing (truncated) or appending, never through a
    link ([security.symlinks])."""
    make_dirs(base, path.parent)
    refuse_links(base, path)
    flags = os.O_WRONLY | os.O_CREAT | _NOFOLLOW | _NONBLOCK | (
        os.O_APPEND if append else os.O_TRUNC)  # O_NONBLOCK: as in open_in_folder
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        if e.errno == errno.ENXIO:
            raise NotRegularFile(f"{path}: is a FIFO, expected a regular file") from None
        raise UnsafePath(f"{path}: cannot open for writing ({e.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularFile(f"{path}: {kind_of(mode)}, expected a regular file")
    return open(fd, "a" if append else "w", encoding="utf-8", errors="replace", newline="\n")


CACHE_IGNORE = b"# written by reftool: a local cache, never versioned\n*\n"


def ignore_cache_folder(root: Path) -> bool:
    """[stale.cache]: `.reftool/` ignores itself in git (`.reftool/.gitignore` holds `*`);
    written when it is not there, never through a link. Whether it was written now."""
    ignore = root / ".reftool" / ".gitignore"
    if os.path.lexists(ignore):
        return False
    write_atomic(ignore, CACHE_IGNORE, base=root)
    return True


def open_folder(folder: Path, *, base: Path) -> int:
    """A folder below `base`, made if need be, opened as a descriptor, none of it a link
    ([security.symlinks]): files opened in it with `open_in_folder` cost one call each, and
    a link swapped in for the folder later changes nothing (the descriptor is the folder)."""
    make_dirs(base, folder)
    refuse_links(base, folder)
    try:
        return os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW)
    except OSError as e:
        raise UnsafePath(f"{folder}: cannot open the folder ({e.strerror})") from None


@overload
def open_in_folder(folder_fd: int, name: str, display: str) -> IO[str]: ...
@overload
def open_in_folder(folder_fd: int, name: str, display: str, *,
                   create: Literal[False]) -> IO[str] | None: ...


def open_in_folder(folder_fd: int, name: str, display: str, *,
                   create: bool = True) -> IO[str] | None:
    """A text file named `name` (no folder in it) in a folder from `open_folder`, opened for
    writing (truncated), never through a link ([security.symlinks]). With `create=False`, a
    file that is not there is not made: None (making a file costs far more than truncating
    one, 0.2-1.3 ms against 7 us on ext4 here)."""
    if not name or "/" in name or name in (".", ".."):
        raise UnsafePath(f"{display}: not a file name")
    # O_NONBLOCK: a FIFO found there fails the open (ENXIO) instead of hanging it; a regular
    # file's writes ignore the flag
    flags = os.O_WRONLY | os.O_TRUNC | _NOFOLLOW | _NONBLOCK | (os.O_CREAT if create else 0)
    try:
        fd = os.open(name, flags, 0o644, dir_fd=folder_fd)
    except OSError as e:
        if isinstance(e, FileNotFoundError) and not create:
            return None
        if e.errno == errno.ENXIO:  # a FIFO with no reader
            raise NotRegularFile(f"{display}: is a FIFO, expected a regular file") from None
        raise UnsafePath(f"{display}: cannot open for writing ({e.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularFile(f"{display}: {kind_of(mode)}, expected a regular file")
    return open(fd, "w", encoding="utf-8", errors="replace", newline="\n")


# ---------------------------------------------------------------------------------- reading

def check_regular(path: str | os.PathLike[str], display: str | None = None) -> os.stat_result:
    """[security.special-files]: stat (links followed) and refuse anything but a regular file;
    FileNotFoundError passes through."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile(f"{display or os.fspath(path)}: {kind_of(st.st_mode)}, "
                             "expected a regular file")
    return st


def kind_of(mode: int) -> str:
    """What a file that is not a regular file is, in words."""
    for test, name in ((stat.S_ISDIR, "is a directory"), (stat.S_ISFIFO, "is a FIFO"),
                       (stat.S_ISSOCK, "is a socket"), (stat.S_ISCHR, "is a character device"),
                       (stat.S_ISBLK, "is a block device"), (stat.S_ISLNK, "is a link")):
        if test(mode):
            return name
    return "is not a regular file"


def open_regular_fd(path: str | os.PathLike[str], display: str | None = None, *,
                    checked: bool = False) -> tuple[int, os.stat_result]:
    """A regular file opened for reading, as a descriptor (the caller closes it) and its
    fstat: checked first (unless the caller found a regular file there just now: `checked`),
    then opened with O_NONBLOCK so that a FIFO swapped in meanwhile cannot hang the open,
    then checked again on the descriptor. O_NONBLOCK stays: reads of a regular file ignore it."""
    if not checked:
        check_regular(path, display)
    fd = os.open(path, os.O_RDONLY | _NONBLOCK)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotRegularFile(f"{display or os.fspath(path)}: {kind_of(st.st_mode)}, "
                             "expected a regular file")
    return fd, st


def open_regular(path: str | os.PathLike[str], display: str | None = None, *,
                 buffered: bool = True) -> IO[bytes]:
    """`open_regular_fd` as a file object, in blocking mode."""
    fd, _ = open_regular_fd(path, display)
    if _NONBLOCK:
        import fcntl
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_NONBLOCK)
    return open(fd, "rb") if buffered else open(fd, "rb", buffering=0)


def to_devnull(out: IO[str]) -> None:
    """What is written to `out` from now on goes nowhere: its reader left (`reftool ... |
    head`). A stream that is no file descriptor (a test's buffer) is left as it is."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, out.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)
