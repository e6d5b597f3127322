"""Experiments to run: params set from the command line (`-S`), grids of them, and the queue
of experiments waiting to run, kept as plain files. SPEC [experiments.set], [experiments.queue].

An *entry* is one experiment to run: an id (the id its record will take), an optional name and
the params it sets, `{file: {pointer: typed value}}` as in a record. Queued entries are the
files `.reftool/queue/<id>.json`, each written atomically and removed once its record exists.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files.documents import parse
from ..files.errors import SpecError
from ..files.model import canonical_json
from ..files.safe_io import is_inside, make_dirs, refuse_links, write_atomic
from ..files.values import from_typed_tree, pointer_for, pointer_tokens, resolve_pointer
from ..files.values import typed_tree

QUEUE = ".reftool/queue"
ENTRY_VERSION = "1.1"  # [version.write]: the queue entry is a file kind 1.1 adds


class SetError(ValueError):
    """A `-S` that cannot be used; the message says which and what was expected."""


@dataclass(frozen=True)
class Setting:
    """One `-S`: a params file, a pointer in it, and the values to try (more than one: a
    grid axis)."""
    file: str
    pointer: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Entry:
    id: str
    name: str | None
    created: str
    params: Mapping[str, Mapping[str, Any]]  # file -> pointer -> typed value tree
    status: str = "queued"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": ENTRY_VERSION, "id": self.id, "name": self.name,
                               "created": self.created,
                               "params": {f: dict(p) for f, p in self.params.items()}}
        if self.status != "queued":
            out["status"] = self.status
        return out

    def settings_text(self) -> str:
        """`file:/pointer=value` for each param it sets, in a stable order."""
        return " ".join(f"{file}:{pointer}={json.dumps(from_typed_tree(tree))}"
                        for file, pointers in sorted(self.params.items())
                        for pointer, tree in sorted(pointers.items()))


# ------------------------------------------------------------------------------ -S parsing

def split_values(text: str) -> list[str]:
    """[experiments.set]: the values of a grid axis are separated by commas that are not
    inside brackets, braces or quotes (`[1,2]` is one list value)."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def yaml_value(text: str, where: str) -> Any:
    """[experiments.set]: a value typed as YAML 1.2 ([values.yaml-core]): `0.1` a float,
    `1e-4` a float, `010` the int 10, `true` a bool, `'1'` a string."""
    if not text.strip():
        raise SetError(f"{where}: no value after '='; expected a YAML 1.2 value "
                       "(use '' for an empty string)")
    try:
        return parse(text, display=where, fmt="yaml").value
    except SpecError as e:
        d = e.diagnostics[0]
        raise SetError(f"{where}: {d.message}; expected a YAML 1.2 value") from None


def dotted_pointer(key: str) -> str:
    """`train.lr` (DVC's form) as the JSON Pointer `/train/lr`; a key that starts with `/`
    is already a pointer ([params.pointer])."""
    if key.startswith("/"):
        return key
    return pointer_for(*key.split("."))


def parse_set(text: str, params_files: Mapping[str, Any]) -> Setting:
    """One `-S [FILE:]KEY=VALUE[,VALUE...]`. `params_files` maps each params file the
    pipeline names to its current value (a mapping); a KEY without FILE is looked up in
    them and MUST be found in exactly one ([experiments.set])."""
    where = f"-S {text}"
    key, eq, values_text = text.partition("=")
    if not eq or not key:
        raise SetError(f"{where}: expected [FILE:]KEY=VALUE, e.g. params.yaml:/train/lr=0.1 "
                       "or train.lr=0.1")
    file, colon, rest = key.rpartition(":")
    if colon and file:
        key = rest
    else:
        file = ""
    pointer = dotted_pointer(key)
    values = tuple(yaml_value(v, where) for v in split_values(values_text))
    if file:
        if file not in params_files:
            known = ", ".join(sorted(params_files)) or "none"
            raise SetError(f"{where}: {file} is not a params file of the pipeline "
                           f"(its params files: {known})")
        _check_settable(params_files[file], pointer, f"{where}: {file}")
        return Setting(file, pointer, values)
    found = [f for f, doc in params_files.items() if _resolves(doc, pointer)]
    if len(found) > 1:
        raise SetError(f"{where}: {pointer} is in {' and '.join(sorted(found))}; name the "
                       f"file, e.g. -S {sorted(found)[0]}:{pointer}={values_text}")
    if not found:
        known = ", ".join(sorted(params_files)) or "none"
        raise SetError(f"{where}: no params file of the pipeline has {pointer} (its params "
                       f"files: {known}); to add a key, name the file: FILE:{pointer}=VALUE")
    return Setting(found[0], pointer, values)


def _resolves(document: Any, pointer: str) -> bool:
    try:
        resolve_pointer(document, pointer)
    except (KeyError, TypeError, ValueError, IndexError):
        return False
    return True


def _check_settable(document: Any, pointer: str, where: str) -> None:
    """The pointer resolves, or names a new key of a mapping that exists."""
    if _resolves(document, pointer):
        return
    tokens = pointer_tokens(pointer)
    parent = pointer_for(*tokens[:-1]) if len(tokens) > 1 else ""
    container = document if not parent else (
        resolve_pointer(document, parent) if _resolves(document, parent) else None)
    if not isinstance(container, dict):
        raise SetError(f"{where}: {pointer} cannot be set: {parent or '/'} is not a mapping "
                       "in that file")


def grid(settings: Sequence[Setting]) -> list[dict[str, dict[str, Any]]]:
    """[experiments.set]: every combination of the settings' values, the first `-S` varying
    slowest; each as `{file: {pointer: typed value}}`."""
    seen: set[tuple[str, str]] = set()
    for s in settings:
        if (s.file, s.pointer) in seen:
            raise SetError(f"-S: {s.file}:{s.pointer} is set twice; give its values once, "
                           "separated by commas")
        seen.add((s.file, s.pointer))
    out = []
    for combination in itertools.product(*(s.values for s in settings)):
        params: dict[str, dict[str, Any]] = {}
        for s, value in zip(settings, combination):
            params.setdefault(s.file, {})[s.pointer] = typed_tree(value)
        out.append(params)
    return out


def names_for(name: str | None, count: int) -> list[str | None]:
    """One name per experiment: NAME itself for one, NAME-1 ... NAME-N for a grid."""
    if name is None:
        return [None] * count
    return [name] if count == 1 else [f"{name}-{i}" for i in range(1, count + 1)]


def new_entries(params_list: Sequence[dict[str, dict[str, Any]]], name: str | None,
                now: _dt.datetime | None = None) -> list[Entry]:
    from .records import new_id
    now = now or _dt.datetime.now(_dt.timezone.utc)
    created = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ids: set[str] = set()
    entries = []
    for params, entry_name in zip(params_list, names_for(name, len(params_list))):
        ident = new_id(now)
        while ident in ids:
            ident = new_id(now)
        ids.add(ident)
        entries.append(Entry(ident, entry_name, created, params))
    return entries


# ------------------------------------------------------------------------------ queue files

def queue_folder(root: Path) -> Path:
    return root / QUEUE


def write_entry(root: Path, entry: Entry) -> Path:
    """[experiments.queue]: written beside and renamed, never half visible."""
    folder = queue_folder(root)
    make_dirs(root, folder)  # [security.symlinks]
    path = folder / f"{entry.id}.json"
    write_atomic(path, canonical_json(entry.to_json()).encode(), base=root, durable=True)
    return path


def remove_entry(root: Path, entry_id: str) -> None:
    path = queue_folder(root) / f"{entry_id}.json"
    refuse_links(root, path)
    path.unlink(missing_ok=True)


def read_entries(root: Path, skipped: dict[str, str] | None = None) -> list[Entry]:
    """The queue, oldest first; files that are not valid entries are named in `skipped`."""
    from .records import SourceError, checked_json
    folder = queue_folder(root)
    if not folder.is_dir() or not is_inside(root, folder):
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        display = f"{QUEUE}/{path.name}"
        try:
            refuse_links(root, path)
            value = checked_json(path.read_bytes(), display, "queue-entry", "queue entry")
        except (SourceError, OSError) as e:
            (skipped if skipped is not None else {})[display] = str(e)
            continue
        if value["id"] != path.name[:-len(".json")]:
            (skipped if skipped is not None else {})[display] = (
                f"{display}: its id {value['id']!r} is not its file name")
            continue
        found.append(Entry(value["id"], value.get("name"), value["created"], value["params"],
                           value.get("status", "queued")))
    return sorted(found, key=lambda e: (e.created, e.id))


def pick(entries: Iterable[Entry], refs: Iterable[str]) -> Iterator[tuple[str, Entry | None]]:
    """Each ref with the entry whose id or name it is (None when there is none)."""
    entries = list(entries)
    for ref in refs:
        yield ref, next((e for e in entries if ref in (e.id, e.name)), None)


def used_names(root: Path) -> set[str]:
    """Names of the records and of the queued experiments ([experiments.names])."""
    from .records import records
    names = {str(r.get("name")) for r in records(root)}
    return names | {e.name for e in read_entries(root) if e.name}


def taken(root: Path, names: Iterable[str | None]) -> list[str]:
    """The names among `names` already used, or used twice in `names`."""
    used = used_names(root)
    out = []
    for name in names:
        if name is None:
            continue
        if name in used:
            out.append(name)
        used.add(name)
    return out
