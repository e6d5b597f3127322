"""The local content-addressed cache of outputs, keyed by input signature. SPEC [exec.cache].

    .reftool/cache/objects/ab/cdef...   file contents, and directory manifests, by SHA-256
    .reftool/cache/runs/<signature>.json  what a stage with that input signature produced

Objects are written beside their final name and renamed into place once their digest was
verified, so a partial object is never visible. Everything read back is verified again: a
corrupt object is reported, deleted and never restored.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..files.model import FileState, OutState

RUNS_FORMAT = "reftool-run-cache"


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


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1]


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder = root / ".reftool" / "cache"

    def _object(self, hexdigest: str) -> Path:
        return self.folder / "objects" / hexdigest[:2] / hexdigest[2:]

    def _run(self, signature: str) -> Path:
        return self.folder / "runs" / (_hex(signature) + ".json")

    # ------------------------------------------------------------------------------ lookups

    def lookup(self, signature: str) -> dict[str, OutState] | None:
        """The outputs recorded under an input signature, when all their objects are there."""
        try:
            data = json.loads(self._run(signature).read_text(encoding="utf-8"))
            if data.get("format") != RUNS_FORMAT or data.get("signature") != signature:
                return None
            outs = {p: OutState(state=FileState(digest=o["digest"], size=o["size"],
                                                files=o.get("files")),
                                cache=o["cache"], persist=o["persist"])
                    for p, o in data["outs"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        if not all(self._object(_hex(o.state.digest)).is_file() for o in outs.values()):
            return None
        return outs

    # ------------------------------------------------------------------------------ saving

    def save(self, signature: str, outs: Mapping[str, OutState]) -> None:
        """Store the outputs of a stage that just ran, then the entry naming them."""
        for path, out in outs.items():
            target = self.root / path.rstrip("/")
            if path.endswith("/"):
                self._save_dir(target, out.state.digest)
            else:
                self._save_file(target, out.state.digest)
        entry = {"format": RUNS_FORMAT, "signature": signature, "outs": {
            p: {"digest": o.state.digest, "size": o.state.size, "cache": o.cache,
                "persist": o.persist, **({"files": o.state.files}
                                         if o.state.files is not None else {})}
            for p, o in outs.items()}}
        self._write(self._run(signature), json.dumps(entry, sort_keys=True).encode())

    def _write(self, final: Path, data: bytes) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, final)

    def _save_file(self, source: Path, digest: str) -> None:
        final = self._object(_hex(digest))
        if final.is_file():
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        got = _copy_hashing(source, tmp)
        if got != _hex(digest):  # it changed after it was hashed: do not keep it
            tmp.unlink()
            raise CorruptCache(f"{source} changed while it was stored")
        os.replace(tmp, final)

    def _save_dir(self, source: Path, digest: str) -> None:
        from .hashing import manifest
        rows = []
        for folder, _, files in os.walk(source):
            for name in files:
                full = Path(folder) / name
                real = full.resolve() if full.is_symlink() else full
                rel = full.relative_to(source).as_posix()
                st = os.stat(real)
                hexdigest = _file_hex(real)
                self._save_file(real, "sha256:" + hexdigest)
                rows.append((rel, hexdigest, st.st_size, bool(st.st_mode & stat.S_IXUSR)))
        data = manifest(rows)
        if hashlib.sha256(data).hexdigest() != _hex(digest):
            raise CorruptCache(f"{source} changed while it was stored")
        self._write(self._object(_hex(digest)), data)

    # ------------------------------------------------------------------------------ restoring

    def restore(self, outs: Mapping[str, OutState]) -> None:
        """Put each output in place from the cache, verified; raises CorruptCache (after
        deleting the bad object) when an object does not hold what its name says."""
        for path, out in outs.items():
            target = self.root / path.rstrip("/")
            if path.endswith("/"):
                self._restore_dir(target, _hex(out.state.digest))
            else:
                self._restore_file(target, _hex(out.state.digest), executable=False)

    def _checked_object(self, hexdigest: str) -> Path:
        obj = self._object(hexdigest)
        if _file_hex(obj) != hexdigest:
            obj.unlink(missing_ok=True)
            raise CorruptCache(f"cache object {hexdigest[:12]} is corrupt (removed)")
        return obj

    def _restore_file(self, target: Path, hexdigest: str, *, executable: bool) -> None:
        obj = self._object(hexdigest)
        target.parent.mkdir(parents=True, exist_ok=True)
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
        manifest = self._checked_object(hexdigest).read_bytes()
        staging = target.with_name(f".{target.name}.{os.getpid()}.restore")
        _remove(staging)
        staging.mkdir(parents=True)
        try:
            for line in manifest.decode("utf-8").split("\n")[:-1]:
                file_hex, _, mode, rel = line.split(" ", 3)
                self._restore_file(staging / rel, file_hex, executable=mode == "x")
        except BaseException:
            _remove(staging)
            raise
        _remove(target)
        os.replace(staging, target)


def _file_hex(path: Path) -> str:
    from .hashing import hash_file
    return hash_file(path)


def _copy_hashing(source: Path, dest: Path) -> str:
    h = hashlib.sha256()
    with open(source, "rb") as src, open(dest, "wb") as out:
        while chunk := src.read(1 << 20):
            h.update(chunk)
            out.write(chunk)
    shutil.copymode(source, dest)
    return h.hexdigest()


def _remove(path: Path) -> None:
    """Remove a file, link or directory, if there."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def remove_output(root: Path, path: str) -> None:
    """[exec.outputs-before]"""
    _remove(root / path.rstrip("/"))


# ---------------------------------------------------------------------------------- remotes

class Remote:
    """A shared cache: a folder (a network file system) or object storage (`s3://bucket/prefix`
    and anything else fsspec reaches, with `pip install 'reftool[remote]'`), in the local
    cache's layout. Everything copied is verified against its digest and never visible half
    written: a folder's files are written beside their name and renamed; an object store makes
    an upload visible only once it is complete. Objects go up before the run entries that name
    them. Credentials come from the storage library's own environment and configuration
    (`AWS_*` for S3), never from project files.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        path = url[len("file://"):] if url.startswith("file://") else url
        self.fs: Any = None
        if "://" in path:
            try:
                import fsspec
            except ImportError:
                raise ValueError(f"remote {url!r} needs fsspec and its driver: "
                                 "pip install 'reftool[remote]'") from None
            try:
                self.fs, self.base = fsspec.core.url_to_fs(url)
            except (ImportError, ValueError) as e:
                raise ValueError(f"remote {url!r}: {e}") from None
            self.base = self.base.rstrip("/")
        else:
            self.folder = Path(path).expanduser().resolve()

    # -- where things are, and the four things a backend does

    def _key(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    def _exists(self, rel: str) -> bool:
        if self.fs is not None:
            return bool(self.fs.exists(self._key(rel)))
        return (self.folder / rel).is_file()

    def _read(self, rel: str) -> bytes:
        if self.fs is not None:
            return bytes(self.fs.cat_file(self._key(rel)))
        return (self.folder / rel).read_bytes()

    def _download(self, rel: str, local: Path) -> None:
        if self.fs is not None:
            self.fs.get_file(self._key(rel), str(local))
        else:
            shutil.copyfile(self.folder / rel, local)

    def _upload(self, local: Path, rel: str) -> None:
        if self.fs is not None:
            self.fs.put_file(str(local), self._key(rel))  # visible once complete
            return
        target = self.folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
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
            return sorted(Path(p).name[:-5] for p in found if p.endswith(".json"))
        return sorted(p.name[:-5] for p in (self.folder / "runs").glob("*.json"))

    # -- what the tool asks

    def has_run(self, signature: str) -> bool:
        try:
            return self._exists(f"runs/{_hex(signature)}.json")
        except remote_errors():  # a remote out of reach holds nothing for this run
            return False

    def fetch_run(self, signature: str, store: Store) -> bool:
        """Bring a run entry and every object it needs into the local cache; False when the
        remote does not have them all, or one is corrupt (it is then not used)."""
        try:
            raw = self._read(f"runs/{_hex(signature)}.json")
            outs = json.loads(raw)["outs"]
            for out in outs.values():
                hexdigest = _hex(out["digest"])
                self._fetch_object(hexdigest, store)
                if out.get("files") is not None:  # a directory: its manifest names its files
                    manifest = store._object(hexdigest).read_text(encoding="utf-8")
                    for line in manifest.split("\n")[:-1]:
                        self._fetch_object(line.split(" ", 1)[0], store)
        except remote_errors():  # unreachable, missing or corrupt: not used
            return False
        store._write(store._run(signature), raw)
        return True

    def _fetch_object(self, hexdigest: str, store: Store) -> None:
        local = store._object(hexdigest)
        if local.is_file():
            return
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.{os.getpid()}.download")
        try:
            self._download(f"objects/{hexdigest[:2]}/{hexdigest[2:]}", tmp)
            if _file_hex(tmp) != hexdigest:
                raise CorruptCache(f"object {hexdigest[:12]} is corrupt")
            os.replace(tmp, local)
        finally:
            tmp.unlink(missing_ok=True)

    def push(self, store: Store) -> tuple[int, int]:
        """Copy the local objects and run entries the remote lacks: objects first, so that a
        run entry is never visible before what it names. Returns (objects, runs) copied."""
        objects = runs = 0
        root = store.folder / "objects"
        for path in sorted(root.glob("*/*")) if root.is_dir() else []:
            if path.name.startswith("."):
                continue
            rel = f"objects/{path.parent.name}/{path.name}"
            if not self._exists(rel):
                if _file_hex(path) != path.parent.name + path.name:
                    raise CorruptCache(f"local object {path.parent.name + path.name} is "
                                       "corrupt; not pushed")
                self._upload(path, rel)
                objects += 1
        for path in sorted((store.folder / "runs").glob("*.json")):
            if not self._exists(f"runs/{path.name}"):
                self._upload(path, f"runs/{path.name}")
                runs += 1
        return objects, runs

    def pull(self, store: Store, signatures: list[str] | None = None) -> int:
        """Bring run entries (all, or those of `signatures`) and their objects; how many."""
        names = self._runs() if signatures is None else [_hex(s) for s in signatures]
        return sum(self.fetch_run("sha256:" + name, store) for name in names
                   if not store._run("sha256:" + name).is_file())
