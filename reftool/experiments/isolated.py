"""Running an experiment in its own workspace, and setting params in files.
SPEC [experiments.isolated], [experiments.set].

Each experiment runs in a temporary copy of the project under `.reftool/tmp/` (the project's
files but its outputs, its records and the tool's folder), with its params written into the
copy. The copy restores outputs from the project's cache, used as a folder remote, rather than
recomputing them; what it computes is pushed back into that cache, and its record is written
into the project's `experiments/` only after the run completed. The workspace's own files are
never touched. A runner killed at any moment leaves records that are whole or absent, and the
queue entries of unfinished experiments where they were.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files.documents import parse
from ..files.errors import SpecError
from ..files.safe_io import make_dirs, refuse_links, write_atomic
from ..files.values import canonical_equal, from_typed_tree, pointer_tokens, resolve_pointer
from .queue import Entry, SetError

TMP = ".reftool/tmp"
NEVER_COPIED = (".git", ".reftool", "experiments")


@dataclass(frozen=True)
class Outcome:
    entry: Entry
    ok: bool
    record: Path | None
    log: Path
    message: str


# ------------------------------------------------------------------------------ params files

def set_params(root: Path, params: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Write each `{file: {pointer: typed value}}` into the params files under `root`,
    keeping a YAML file's comments and layout; each file replaced atomically. Returns the
    files changed. Raises SetError when a file cannot take a value."""
    changed = []
    for file, pointers in sorted(params.items()):
        path = root / file
        refuse_links(root, path)  # [security.symlinks]
        text = path.read_text(encoding="utf-8")
        suffix = path.suffix.lower()
        values = {p: from_typed_tree(t) for p, t in pointers.items()}
        if suffix in (".yaml", ".yml"):
            new_text = _yaml_with(text, values, file)
        elif suffix == ".json":
            new_text = _json_with(text, values, file)
        else:
            raise SetError(f"{file}: -S writes YAML and JSON params files; set {file} by hand")
        _check_written(new_text, values, file, "json" if suffix == ".json" else "yaml")
        if new_text != text:
            write_atomic(path, new_text.encode("utf-8"), base=root)
            changed.append(file)
    return changed


def _put(document: Any, pointer: str, value: Any, file: str) -> None:
    tokens = pointer_tokens(pointer)
    node = document
    for token in tokens[:-1]:
        node = node[int(token)] if isinstance(node, list) else node[token]
    last = tokens[-1]
    if isinstance(node, list):
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise SetError(f"{file}: {pointer} cannot be set: its parent is not a mapping")


def _yaml_with(text: str, values: Mapping[str, Any], file: str) -> str:
    import io

    from ruamel.yaml import YAML
    yaml = YAML()  # round trip: comments, key order and layout are kept
    yaml.preserve_quotes = True
    yaml.width = 4096
    document = yaml.load(text)
    _put_all(document, values, file)
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def _put_all(document: Any, values: Mapping[str, Any], file: str) -> None:
    """Each setting into the parsed params file; one that does not fit is a SetError."""
    for pointer, value in values.items():
        try:
            _put(document, pointer, value, file)
        except (KeyError, IndexError, ValueError, TypeError):
            raise SetError(f"{file}: {pointer} cannot be set in that file") from None


def _json_with(text: str, values: Mapping[str, Any], file: str) -> str:
    document = json.loads(text)
    _put_all(document, values, file)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _check_written(text: str, values: Mapping[str, Any], file: str, fmt: str) -> None:
    """The file as written reads back, under this spec's rules, with the values set."""
    document = parse(text, display=file, fmt=fmt).value  # type: ignore[arg-type]
    for pointer, value in values.items():
        if not canonical_equal(resolve_pointer(document, pointer), value):
            raise SetError(f"{file}: {pointer} would not read back as {value!r}; "
                           "set it by hand")


def current_params(root: Path, files: list[str]) -> dict[str, Any]:
    """Each params file's value (files that cannot be read map to {})."""
    from ..files.spec import PARAMS_EXTENSIONS
    out: dict[str, Any] = {}
    for file in files:
        fmt = PARAMS_EXTENSIONS.get(os.path.splitext(file)[1].lower())
        try:
            value = parse((root / file).read_text(encoding="utf-8"), display=file,
                          fmt=fmt).value if fmt else {}  # type: ignore[arg-type]
        except (OSError, ValueError, SpecError):  # the run's validation says why
            value = {}
        out[file] = value if isinstance(value, dict) else {}
    return out


# ------------------------------------------------------------------------------ the copy

def copy_project(root: Path, dest: Path, outputs: set[str]) -> None:
    """The project's files into `dest`, but its outputs (restored from the cache), its
    records, the tool's folder, `.git`, virtual environments and `__pycache__`."""
    skip = {o.rstrip("/") for o in outputs} | set(NEVER_COPIED)

    def ignore(folder: str, names: list[str]) -> set[str]:
        rel = os.path.relpath(folder, root)
        out = set()
        for name in names:
            path = name if rel == "." else f"{rel}/{name}".replace(os.sep, "/")
            full = os.path.join(folder, name)
            if path in skip or name == "__pycache__" or (
                    os.path.isdir(full) and os.path.isfile(os.path.join(full, "pyvenv.cfg"))):
                out.add(name)
        return out
    shutil.copytree(root, dest, symlinks=True, ignore=ignore)


def temp_folder(root: Path, entry_id: str) -> Path:
    folder = root / TMP
    make_dirs(root, folder)
    path = folder / f"exp-{entry_id}"
    if path.exists():
        shutil.rmtree(path)
    return path


def clear_temp(root: Path) -> None:
    """Copies left by a runner that was killed."""
    folder = root / TMP
    if folder.is_dir() and not folder.is_symlink():
        for path in folder.glob("exp-*"):
            shutil.rmtree(path, ignore_errors=True)


def _die_with_parent() -> None:
    """The child gets SIGTERM when the runner dies, even by SIGKILL (Linux)."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_child(copy: Path, pipeline_file: str, cache: Path, log: Path,
              started: Callable[[subprocess.Popen[bytes]], None]) -> int:
    """`reftool run` in the copy, the project's cache as its remote; output into `log`."""
    env = {k: v for k, v in os.environ.items() if k != "REFTOOL_REMOTE"}
    command = [sys.executable, "-m", "reftool", "-C", str(copy), "run", "-f", pipeline_file,
               "--no-record", "--remote", str(cache.resolve())]
    with open(log, "wb") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                 stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        started(child)
        return child.wait()


def run_entry(root: Path, entry: Entry, pipeline_file: str, lock_file: str,
              started: Callable[[subprocess.Popen[bytes]], None],
              outputs: set[str]) -> Outcome:
    """One experiment, start to record ([experiments.isolated])."""
    from ..pipeline.store import Remote, Store
    from .records import RunFacts, SourceError, build_record, git, git_state, write_record
    logs = root / TMP / "logs"
    make_dirs(root, logs)
    log = logs / f"{entry.id}.log"
    copy = temp_folder(root, entry.id)
    try:
        copy_project(root, copy, outputs)
        set_params(copy, entry.params)
        cache = root / ".reftool" / "cache"
        make_dirs(root, cache)
        began = time.monotonic()
        code = run_child(copy, pipeline_file, cache, log, started)
        facts = RunFacts(duration=time.monotonic() - began)
        if code != 0:
            return Outcome(entry, False, None, log, f"the run exited {code}; see {log}")
        Remote(str(cache.resolve())).push(Store(copy))  # objects first, then run entries
        # series go to the project's store, not the copy's ([experiments.series-store])
        record = build_record(copy, entry.name, pipeline_file=pipeline_file,
                              lock_file=lock_file, facts=facts, store_root=root)
        record["id"] = entry.id  # the queue entry's id: a record there means it is done
        if "name" in record and entry.name is None:
            record["name"] = entry.id
        commit = git(root, "rev-parse", "--verify", "--quiet", "HEAD")
        record["git_commit"] = commit.strip() if commit else None  # the project's, not the copy's
        record.update(git_state(root))  # [experiments.run-facts]: the project's branch and tree
        path = write_record(root, record)
        summary = _summary(log)
        log.unlink(missing_ok=True)
        return Outcome(entry, True, path, log, summary)
    except (SetError, SourceError) as e:
        return Outcome(entry, False, None, log, str(e))
    except OSError as e:  # a full disk, a file in the way: this experiment fails, not the runner
        return Outcome(entry, False, None, log, f"{e.filename or ''}: {e.strerror or e}")
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def _summary(log: Path) -> str:
    """The run's last line: `ran N, restored from cache M, ...`."""
    lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
             if line.startswith("ran ")]
    return lines[-1] if lines else ""
