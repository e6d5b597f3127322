"""The local content-addressed cache of outputs, keyed by input signature. SPEC [exec.cache].

    .reftool/cache/objects/ab/cdef...   file contents, and directory manifests, by SHA-256
    .reftool/cache/runs/<signature>.json  what a stage with that input signature produced

Objects are written beside their final name and renamed into place once their digest was
verified, so a partial object is never visible. Everything read back is verified again: a
corrupt object is reported, deleted and never restored.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..files.model import FileState, OutState
from ..files.spec import reserved_conflict
from ..files.safe_io import (
    UnsafePath, is_hex_digest, is_inside, is_relative_path, is_sha256, lstat_in, make_dirs,
    open_folder, open_regular, open_subfolder, refuse_links, write_atomic, write_in_folder,
)

RUNS_FORMAT = "reftool-run-cache"
TRANSFER_JOBS = min(16, 4 * (os.cpu_count() or 1))  # push and pull transfers at once, as DVC
# S3: an endpoint out of reach fails in seconds, not after botocore's default retries (9-13 s
# per call; one such call per stage made a 102-stage run take more than 600 s)
S3_OPTIONS: dict[str, Any] = {"config_kwargs": {
    "connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 2, "mode": "standard"}}}


def remote_errors() -> tuple[type[BaseException], ...]:
    """What a remote raises when it is out of reach, refuses, or holds something malformed:
    OS errors (a folder's, and fsspec's own), malformed entries, and the S3 client's errors.
    Anything else is a bug of ours and is not caught as a remote's failure."""
    errors: list[type[BaseException]] = [OSError, ValueError, KeyError, TypeError, CorruptCache]
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        pass
    else:
        errors += [BotoCoreError, ClientError]
    return tuple(errors)


class CorruptCache(Exception):
    """An object of the cache does not hold what its name says."""


class CorruptObject(CorruptCache):
    """A remote object whose bytes do not match its digest."""

    def __init__(self, hexdigest: str) -> None:
        super().__init__(f"object {hexdigest[:12]} is corrupt")
        self.hexdigest = hexdigest


class MalformedEntry(CorruptCache):
    """[security.paths]: a run entry or manifest naming a path or digest that is not in the
    spec's form (an absolute path, `..`, a digest with `/`): hostile or broken, never used."""


def _hex(digest: object) -> str:
    """The hex part of a `sha256:` digest, checked before it names a file ([security.paths])."""
    if not isinstance(digest, str) or not is_sha256(digest):
        raise MalformedEntry(f"malformed digest {str(digest)[:80]!r}")
    return digest[7:]


def checked_outs(data: Any, signature: str) -> dict[str, OutState]:
    """The outputs of a run entry, every path and digest checked ([security.paths]); raises
    MalformedEntry naming what is wrong."""
    if not isinstance(data, dict) or data.get("format") != RUNS_FORMAT or \
            data.get("signature") != signature or not isinstance(data.get("outs"), dict):
        raise MalformedEntry("not a run entry of this signature")
    outs = {}
    for path, o in data["outs"].items():
        if not is_relative_path(path) or not isinstance(o, dict):
            raise MalformedEntry(f"output path {str(path)[:80]!r} is not a relative path")
        _hex(o.get("digest"))
        files = o.get("files")
        if path.endswith("/") != (files is not None) or not isinstance(o.get("size"), int) \
                or not isinstance(o.get("cache"), bool) or not isinstance(o.get("persist"), bool):
            raise MalformedEntry(f"output {path!r} is malformed")
        outs[path] = OutState(state=FileState(digest=o["digest"], size=o["size"], files=files),
                              cache=o["cache"], persist=o["persist"])
    return outs


def manifest_rows(data: bytes) -> list[tuple[str, str, bool]]:
    """The (hex digest, relative path, executable) rows of a directory manifest, each checked
    ([digest.directory], [security.paths]); raises MalformedEntry."""
    rows = []
    try:
        lines = data.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise MalformedEntry("directory manifest is not UTF-8") from None
    if lines[-1] != "":
        raise MalformedEntry("directory manifest does not end with a line feed")
    seen: set[str] = set()
    for line in lines[:-1]:
        parts = line.split(" ", 3)
        if len(parts) != 4 or not is_hex_digest(parts[0]) or not parts[1].isdigit() or \
                parts[2] not in ("x", "-") or not is_relative_path(parts[3], directory=False):
            raise MalformedEntry(f"directory manifest line {line[:120]!r} is malformed")
        rel = parts[3]
        if rel in seen or any(rel.startswith(s + "/") or s.startswith(rel + "/") for s in seen):
            raise MalformedEntry(f"directory manifest names {rel!r} twice or as a folder")
        seen.add(rel)
        rows.append((parts[0], rel, parts[2] == "x"))
    return rows


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder = root / ".reftool" / "cache"
        self._folders: dict[str, int] = {}  # objects/ and runs/, opened once they are written
        self._folders_lock = threading.Lock()
        weakref.finalize(self, _close_all, self._folders)

    def _opened(self, name: str) -> int:
        """The cache's folder `objects` or `runs`, made, checked and opened once a store
        ([security.symlinks]): what is saved in it goes through the descriptor (issue 18:
        making and checking each folder of the path again, twice a stage, was a quarter of
        saving a stage's outputs)."""
        with self._folders_lock:
            fd = self._folders.get(name)
            if fd is None:
                fd = self._folders[name] = open_folder(self.folder / name, base=self.root)
            return fd

    def _object(self, hexdigest: str) -> Path:
        if not is_hex_digest(hexdigest):  # [security.paths]: a digest never walks the tree
            raise MalformedEntry(f"malformed digest {str(hexdigest)[:80]!r}")
        return self.folder / "objects" / hexdigest[:2] / hexdigest[2:]

    def _run(self, signature: str) -> Path:
        return self.folder / "runs" / (_hex(signature) + ".json")

    def _corrupt_note(self) -> Path:
        return self.folder / "remote-corrupt.txt"

    def remote_corrupt(self) -> set[str]:
        """The remote objects found corrupt, that the next push replaces."""
        try:
            text = self._corrupt_note().read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError):
            return set()
        return {line for line in text.split() if is_hex_digest(line)}

    def note_remote_corrupt(self, hexdigest: str) -> None:
        self._write(self._corrupt_note(), "".join(
            f"{h}\n" for h in sorted(self.remote_corrupt() | {hexdigest})).encode())

    def clear_remote_corrupt(self, replaced: set[str]) -> None:
        left = self.remote_corrupt() - replaced
        if left != self.remote_corrupt():
            self._write(self._corrupt_note(), "".join(f"{h}\n" for h in sorted(left)).encode())

    # ------------------------------------------------------------------------------ lookups

    def lookup(self, signature: str) -> dict[str, OutState] | None:
        """The outputs recorded under an input signature, when all their objects are there.
        Raises MalformedEntry for an entry naming a path or digest out of form."""
        try:
            refuse_links(self.root, self._run(signature))
            with open_regular(self._run(signature)) as f:
                data = json.loads(f.read())
        except (OSError, ValueError, RecursionError):
            return None
        outs = checked_outs(data, signature)
        if not all(self._object(_hex(o.state.digest)).is_file() for o in outs.values()):
            return None
        return outs

    # ------------------------------------------------------------------------------ saving

    def save(self, signature: str, outs: Mapping[str, OutState],
             rules: Mapping[str, Any] | None = None) -> None:
        """Store the outputs of a stage that just ran, then the entry naming them. A directory
        is stored as its manifest under its rules says: excluded files are not stored
        ([digest.ignore])."""
        for path, out in outs.items():
            target = self.root / path.rstrip("/")
            if path.endswith("/"):
                self._save_dir(target, out.state.digest, path, (rules or {}).get(path))
            else:
                self._save_file(target, out.state.digest)
        entry = {"format": RUNS_FORMAT, "signature": signature, "outs": {
            p: {"digest": o.state.digest, "size": o.state.size, "cache": o.cache,
                "persist": o.persist, **({"files": o.state.files}
                                         if o.state.files is not None else {})}
            for p, o in outs.items()}}
        name = _hex(signature) + ".json"
        write_in_folder(self._opened("runs"), name, json.dumps(entry, sort_keys=True).encode(),
                        f".reftool/cache/runs/{name}")  # [security.symlinks]

    def _write(self, final: Path, data: bytes) -> None:
        write_atomic(final, data, base=self.root)  # [security.symlinks]

    def _save_file(self, source: Path, digest: str) -> None:
        hexdigest = _hex(digest)
        display = f".reftool/cache/objects/{hexdigest[:2]}"
        folder = open_subfolder(self._opened("objects"), hexdigest[:2], display)
        try:
            name = hexdigest[2:]
            there = lstat_in(folder, name, f"{display}/{name}")  # [security.symlinks]
            if there is not None and stat.S_ISREG(there.st_mode):
                return
            tmp = f".{name}.{os.getpid()}.tmp"
            if _copy_hashing(source, tmp, dir_fd=folder) != hexdigest:
                os.unlink(tmp, dir_fd=folder)  # it changed after it was hashed: not kept
                raise CorruptCache(f"{source} changed while it was stored")
            os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
        finally:
            os.close(folder)

    def _save_dir(self, source: Path, digest: str, path: str, rules: Any) -> None:
        """The files of the directory's manifest, found by the walk that hashed it
        ([digest.directory]: NFC names, links to files, excluded entries left out)."""
        from .hashing import _X_BIT, _scan, manifest
        rows = []
        found = _scan(str(source), "", path, os.path.realpath(self.root), rules)
        for encoded, _, real, st in found:
            hexdigest = _file_hex(Path(real))
            self._save_file(Path(real), "sha256:" + hexdigest)
            rows.append((encoded.decode("utf-8"), hexdigest, st.st_size,
                         bool(st.st_mode & _X_BIT)))
        data = manifest(rows)
        if hashlib.sha256(data).hexdigest() != _hex(digest):
            raise CorruptCache(f"{source} changed while it was stored")
        self._write(self._object(_hex(digest)), data)

    # ------------------------------------------------------------------------------ upkeep

    def objects(self) -> list[str]:
        root = self.folder / "objects"
        return sorted(p.parent.name + p.name for p in root.glob("*/*")
                      if not p.name.startswith(".") and is_hex_digest(p.parent.name + p.name)) \
            if root.is_dir() else []

    def verify(self, *, repair: bool) -> list[str]:
        """Every local object checked against its name: the corrupt ones (removed with
        `repair`, so that they are fetched or computed again)."""
        bad = []
        for hexdigest in self.objects():
            obj = self._object(hexdigest)
            if _file_hex(obj) != hexdigest:
                bad.append(hexdigest)
                if repair:
                    obj.unlink(missing_ok=True)
        return bad

    def gc(self, keep: set[str], *, older_than_days: float | None, dry_run: bool
           ) -> tuple[int, int, int]:
        """Remove run entries older than `older_than_days` (all kept when None) that are not
        the signatures in `keep`, then every object no kept entry needs (a directory's
        manifest and its files). Returns (entries, objects, bytes) removed."""
        cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
        needed: set[str] = set()
        dropped = []
        for path in sorted((self.folder / "runs").glob("*.json")):
            signature = "sha256:" + path.name[:-5]
            if cutoff is not None and signature not in keep and path.stat().st_mtime < cutoff:
                dropped.append(path)
                continue
            try:
                outs = checked_outs(json.loads(path.read_bytes()), signature)
            except (OSError, ValueError, CorruptCache):
                dropped.append(path)  # unreadable or malformed: never used anyway
                continue
            for out in outs.values():
                needed.add(_hex(out.state.digest))
                if out.state.files is not None:
                    try:
                        rows = manifest_rows(self._object(_hex(out.state.digest)).read_bytes())
                    except (OSError, CorruptCache):
                        continue
                    needed.update(h for h, _, _ in rows)
        garbage = [h for h in self.objects() if h not in needed]
        size = sum(self._object(h).stat().st_size for h in garbage)
        if not dry_run:
            for path in dropped:
                path.unlink(missing_ok=True)
            for h in garbage:
                self._object(h).unlink(missing_ok=True)
        return len(dropped), len(garbage), size

    # ------------------------------------------------------------------------------ restoring

    def restore(self, outs: Mapping[str, OutState]) -> None:
        """Put each output in place from the cache, verified; raises CorruptCache (after
        deleting the bad object) when an object does not hold what its name says, and
        MalformedEntry or UnsafePath when a path would leave the project ([security.paths])."""
        for path, out in outs.items():
            if not is_relative_path(path) or reserved_conflict(path) is not None:
                raise MalformedEntry(f"output path {path[:80]!r} is not a relative path")
            target = self.root / path.rstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            if not is_inside(self.root, target.parent):
                raise UnsafePath(f"{path}: its folder resolves outside the project")
            if path.endswith("/"):
                self._restore_dir(target, _hex(out.state.digest))
            else:
                self._restore_file(target, _hex(out.state.digest), executable=False)

    def _checked_object(self, hexdigest: str) -> Path:
        obj = self._object(hexdigest)
        refuse_links(self.root, obj)
        if _file_hex(obj) != hexdigest:
            obj.unlink(missing_ok=True)
            raise CorruptCache(f"cache object {hexdigest[:12]} is corrupt (removed)")
        return obj

    def _restore_file(self, target: Path, hexdigest: str, *, executable: bool) -> None:
        obj = self._object(hexdigest)
        refuse_links(self.root, obj)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.restore")
        got = _copy_hashing(obj, tmp)
        if got != hexdigest:
            tmp.unlink()
            obj.unlink(missing_ok=True)
            raise CorruptCache(f"cache object {hexdigest[:12]} is corrupt (removed)")
        if executable:
            os.chmod(tmp, os.stat(tmp).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        _remove(target)
        os.replace(tmp, target)

    def _restore_dir(self, target: Path, hexdigest: str) -> None:
        rows = manifest_rows(self._checked_object(hexdigest).read_bytes())
        staging = target.with_name(f".{target.name}.{os.getpid()}.restore")
        _remove(staging)
        staging.mkdir()
        try:  # every row was checked: each write stays inside the staging folder
            for file_hex, rel, executable in rows:
                make_dirs(staging, (staging / rel).parent)
                self._restore_file(staging / rel, file_hex, executable=executable)
        except BaseException:
            _remove(staging)
            raise
        _remove(target)
        os.replace(staging, target)


def _file_hex(path: Path) -> str:
    from .hashing import hash_file
    return hash_file(path)


def _copy_hashing(source: Path, dest: str | Path, *, dir_fd: int | None = None) -> str:
    """Copy a regular file into a new file `dest` (O_EXCL, O_NOFOLLOW; in the folder `dir_fd`
    when given) with the source's permission bits, hashing it."""
    h = hashlib.sha256()
    try:
        os.unlink(dest, dir_fd=dir_fd)  # a leftover of a killed run of this process id
    except FileNotFoundError:
        pass
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    with open_regular(source) as src, open(os.open(dest, flags, 0o644, dir_fd=dir_fd),
                                           "wb") as out:
        while chunk := src.read(1 << 20):
            h.update(chunk)
            out.write(chunk)
        os.fchmod(out.fileno(), stat.S_IMODE(os.fstat(src.fileno()).st_mode))  # as copymode
    return h.hexdigest()


def _close_all(folders: dict[str, int]) -> None:
    for fd in folders.values():
        os.close(fd)
    folders.clear()


def _remove(path: Path) -> None:
    """Remove a file, link or directory, if there (one lstat)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):  # as pathlib's is_*()
            return
        raise
    if stat.S_ISDIR(mode):
        shutil.rmtree(path)
    else:
        path.unlink()


def remove_output(root: Path, path: str, *, reserved: frozenset[str] = frozenset(),
                  real_root: str | None = None) -> None:
    """[exec.outputs-before]; never a reserved path, nor anything outside the project, even
    if validation was bypassed ([security.reserved]). `real_root`: the project's real path,
    when the caller knows it."""
    if not is_relative_path(path) or reserved_conflict(path, reserved) is not None:
        raise UnsafePath(f"{path}: is reserved; reftool never removes it")
    target = root / path.rstrip("/")
    if not is_inside(root, target.parent, real_base=real_root):
        raise UnsafePath(f"{path}: its folder resolves outside the project")
    _remove(target)


# ---------------------------------------------------------------------------------- remotes

_DOWN: dict[str, str] = {}  # remote URL -> why it is out of reach, for this process


class Remote:
    """A shared cache: a folder (a network file system) or object storage (`s3://bucket/prefix`
    and anything else fsspec reaches, with `pip install 'reftool[remote]'`), in the local
    cache's layout. Everything copied is verified against its digest and never visible half
    written: a folder's files are written beside their name and renamed; an object store makes
    an upload visible only once it is complete. Objects go up before the run entries that name
    them. Credentials come from the storage library's own environment and configuration
    (`AWS_*` for S3), never from project files.
    """

    def __init__(self, url: str, *, warn: Callable[[str], None] | None = None,
                 jobs: int = TRANSFER_JOBS) -> None:
        self.url = url
        self.warn = warn or (lambda text: None)
        self.jobs = max(1, jobs)
        self.corrupt_found = 0
        path = url[len("file://"):] if url.startswith("file://") else url
        self.fs: Any = None
        if "://" in path:
            try:
                import fsspec
            except ImportError:
                raise ValueError(f"remote {url!r} needs fsspec and its driver: "
                                 "pip install 'reftool[remote]'") from None
            options = S3_OPTIONS if url.startswith(("s3://", "s3a://")) else {}
            try:
                self.fs, self.base = fsspec.core.url_to_fs(url, **options)
            except (ImportError, ValueError) as e:
                raise ValueError(f"remote {url!r}: {e}") from None
            self.base = self.base.rstrip("/")
        else:
            self.folder = Path(path).expanduser().resolve()

    # -- where things are, and the four things a backend does

    def _key(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    def _local(self, rel: str) -> Path:
        """A file of a folder remote; a link in the remote's layout is refused, so that a
        writer of the remote cannot point a read or a write elsewhere ([security.symlinks])."""
        refuse_links(self.folder, self.folder / rel)
        return self.folder / rel

    def _exists(self, rel: str) -> bool:
        if self.fs is not None:
            return bool(self.fs.exists(self._key(rel)))
        return self._local(rel).is_file()

    def _read(self, rel: str) -> bytes:
        if self.fs is not None:
            return bytes(self.fs.cat_file(self._key(rel)))
        with open_regular(self._local(rel)) as f:
            return f.read()

    def _download(self, rel: str, local: Path) -> None:
        if self.fs is not None:
            self.fs.get_file(self._key(rel), str(local))
        else:
            _copy_hashing(self._local(rel), local)

    def _upload(self, local: Path, rel: str) -> None:
        if self.fs is not None:
            self.fs.put_file(str(local), self._key(rel))  # visible once complete
            return
        target = self._local(rel)
        make_dirs(self.folder, target.parent)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            _copy_hashing(local, tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, target)

    def _runs(self) -> list[str]:
        if self.fs is not None:
            try:
                found = self.fs.find(self._key("runs"))
            except FileNotFoundError:
                return []
            names = [Path(p).name[:-5] for p in found if p.endswith(".json")]
        else:
            names = [p.name[:-5] for p in self._local("runs").glob("*.json")]
        return sorted(n for n in names if is_hex_digest(n))  # [security.paths]

    # -- what the tool asks

    @property
    def down(self) -> str | None:
        """Why the remote is out of reach, once found so by this process (plan and run each
        hold a Remote of the same URL: said once, asked no more)."""
        return _DOWN.get(self.url)

    def _failed(self, e: BaseException) -> None:
        """A remote operation failed: a missing entry is not news; anything else means the
        remote is out of reach, said once, and not asked again by this command."""
        if isinstance(e, (FileNotFoundError, CorruptCache)) or self.down is not None:
            return
        _DOWN[self.url] = f"{type(e).__name__}: {str(e)[:200]}"
        self.warn(f"remote {self.url} is out of reach ({self.down}); going on without it")

    def has_run(self, signature: str) -> bool:
        if self.down is not None:
            return False
        try:
            return self._exists(f"runs/{_hex(signature)}.json")
        except remote_errors() as e:  # a remote out of reach holds nothing for this run
            self._failed(e)
            return False

    def fetch_run(self, signature: str, store: Store) -> bool:
        """Bring a run entry and every object it needs into the local cache; False when the
        remote does not have them all, or one is corrupt (it is then not used). Raises
        MalformedEntry, naming the remote and the entry, for an entry or manifest whose
        paths or digests are out of form ([security.paths]): nothing of it is used."""
        name = f"runs/{_hex(signature)}.json"
        if self.down is not None:
            return False
        try:
            raw = self._read(name)
            outs = checked_outs(json.loads(raw), signature)
            for out in outs.values():
                hexdigest = _hex(out.state.digest)
                self._fetch_object(hexdigest, store)
                if out.state.files is not None:  # a directory: its manifest names its files
                    rows = manifest_rows(store._checked_object(hexdigest).read_bytes())
                    for file_hex, _, _ in rows:
                        self._fetch_object(file_hex, store)
        except CorruptObject as e:
            self._report_corrupt(e.hexdigest, name, store)
            return False
        except (MalformedEntry, UnsafePath) as e:
            raise MalformedEntry(f"remote {self.url} holds a malformed or hostile entry "
                                 f"{name}: {e}; it is not used") from None
        except remote_errors() + (RecursionError,) as e:  # unreachable or missing
            self._failed(e)
            return False
        store._write(store._run(signature), raw)
        return True

    def _fetch_object(self, hexdigest: str, store: Store) -> None:
        local = store._object(hexdigest)
        refuse_links(store.root, local)
        if local.is_file():
            return
        make_dirs(store.root, local.parent)
        tmp = local.with_name(f".{local.name}.{os.getpid()}.{threading.get_ident()}.download")
        try:
            self._download(f"objects/{hexdigest[:2]}/{hexdigest[2:]}", tmp)
            if _file_hex(tmp) != hexdigest:
                raise CorruptObject(hexdigest)
            os.replace(tmp, local)
        finally:
            tmp.unlink(missing_ok=True)

    def _report_corrupt(self, hexdigest: str, name: str, store: Store) -> None:
        """A remote object whose bytes do not match its name: never used, said, and noted so
        that the next `push` from a cache holding it replaces it."""
        self.corrupt_found += 1
        store.note_remote_corrupt(hexdigest)
        self.warn(f"remote {self.url}: object {hexdigest[:12]} (named by {name}) is corrupt: "
                  "its bytes do not match its digest; not used (reftool push from a cache that "
                  "holds it replaces it)")

    def _listing(self, folder: str) -> dict[str, int]:
        """rel path -> size of every file under `folder` of the remote, in one listing."""
        if self.fs is not None:
            try:
                found = self.fs.find(self._key(folder), detail=True)
            except FileNotFoundError:
                return {}
            prefix = self.base + "/"
            return {p[len(prefix):] if p.startswith(prefix) else p: int(info.get("size") or 0)
                    for p, info in found.items()}
        top = self._local(folder)
        out = {}
        for path in top.rglob("*") if top.is_dir() else []:
            if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
                out[path.relative_to(self.folder).as_posix()] = path.stat().st_size
        return out

    def push(self, store: Store) -> tuple[int, int]:
        """Copy the local objects and run entries the remote lacks, or holds with another size,
        or was found to hold corrupt: objects first, so that a run entry is never visible
        before what it names; JOBS transfers at once. Returns (objects, runs) copied."""
        listed = self._listing("objects")
        corrupt = store.remote_corrupt()
        todo = []
        root = store.folder / "objects"
        for path in sorted(root.glob("*/*")) if root.is_dir() else []:
            if path.name.startswith("."):
                continue
            rel = f"objects/{path.parent.name}/{path.name}"
            hexdigest = path.parent.name + path.name
            if listed.get(rel) != path.stat().st_size or hexdigest in corrupt:
                if _file_hex(path) != hexdigest:
                    raise CorruptCache(f"local object {hexdigest} is corrupt; not pushed")
                todo.append((path, rel))
        self._transfer(todo)
        store.clear_remote_corrupt({rel.replace("/", "")[len("objects"):] for _, rel in todo})
        listed_runs = self._listing("runs")
        runs = [(path, f"runs/{path.name}") for path in sorted((store.folder / "runs").glob(
            "*.json")) if listed_runs.get(f"runs/{path.name}") != path.stat().st_size]
        self._transfer(runs)
        return len(todo), len(runs)

    def _transfer(self, todo: list[tuple[Path, str]]) -> None:
        if self.jobs == 1 or len(todo) < 2:
            for path, rel in todo:
                self._upload(path, rel)
            return
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(self.jobs) as pool:
            for _ in pool.map(lambda item: self._upload(*item), todo):
                pass

    def verify(self, store: Store, *, repair: bool) -> list[str]:
        """Download every remote object and check it against its name: the corrupt ones (as
        `objects/xx/...`), replaced from the local cache when `repair` and it holds them."""
        bad = []
        for rel in sorted(self._listing("objects")):
            hexdigest = rel[len("objects/"):].replace("/", "")
            if not is_hex_digest(hexdigest):
                continue
            tmp = store.folder / f".verify.{os.getpid()}.{threading.get_ident()}"
            make_dirs(store.root, store.folder)
            try:
                self._download(rel, tmp)
                ok = _file_hex(tmp) == hexdigest
            finally:
                tmp.unlink(missing_ok=True)
            if not ok:
                bad.append(rel)
                local = store._object(hexdigest)
                if repair and local.is_file() and _file_hex(local) == hexdigest:
                    self._upload(local, rel)
        return bad

    def pull(self, store: Store, signatures: list[str] | None = None) -> int:
        """Bring run entries (all, or those of `signatures`) and their objects; how many."""
        names = self._runs() if signatures is None else [_hex(s) for s in signatures]
        return sum(self.fetch_run("sha256:" + name, store) for name in names
                   if not store._run("sha256:" + name).is_file())

    def pull_checked(self, store: Store, warn: Any) -> int:
        """`pull`, entry by entry: a malformed entry is reported through `warn` and skipped."""
        count = 0
        for name in self._runs():
            if store._run("sha256:" + name).is_file():
                continue
            try:
                count += self.fetch_run("sha256:" + name, store)
            except MalformedEntry as e:
                warn(str(e))
        return count
