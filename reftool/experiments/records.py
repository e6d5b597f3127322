"""Experiments: snapshots of params and metrics from the workspace, a git revision or an
experiment record, and the records themselves. SPEC section 12 and [experiments.record].

A *snapshot* is what comparisons work on: every param of every stage (`file:/pointer`), the
summary metrics flattened to names (`accuracy`, `per_class/a/f1`), and the series. Snapshots are
read through a *source* that returns file bytes: the working tree, `git show REV:PATH` (nothing
is checked out), or the contents kept in a record.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import re
import secrets
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..files.documents import Document, Format, decode, parse
from ..files.errors import Diagnostic, SpecError
from ..files.load import VarsContext, build_pipeline
from ..files.model import MetricDeclaration, Pipeline, canonical_json
from ..files.safe_io import NotRegularFile, UnsafePath, is_inside, make_dirs, open_regular
from ..files.spec import MAX_TEXT_FILE_BYTES, PARAMS_EXTENSIONS
from ..files.validate import check_version, schema_diagnostics
from ..files.values import from_typed_tree, pointer_for, resolve_pointer, typed_tree

EXPERIMENTS = "experiments"
Reader = Callable[[str], bytes | None]


class SourceError(Exception):
    """A revision, experiment or file that cannot be read; the message says which."""


class VersionRefused(SourceError):
    """A metrics file or record of a version this tool does not read ([version.major],
    [version.minor]): invalid input, not a usage error."""


def version_refusal(data: bytes, display: str, what: str) -> Diagnostic | None:
    """[tool.experiments]: the version refusal of a JSON file every reader applies, or None.

    Files that are not JSON mappings are left to the caller (passed over as before)."""
    from ..files.validate import check_version
    try:
        doc = parse(decode(data, display=display), display=display, fmt="json")
    except SpecError:
        return None
    found = check_version(doc, what=what)
    # a file with no version or a malformed one is passed over as before; one that names a
    # version this tool does not read is refused, with the code saying why
    return found if found is not None and found.code in ("major_unsupported",
                                                         "minor_newer") else None


@dataclass
class Snapshot:
    label: str
    kind: Literal["workspace", "rev", "experiment"]
    params: dict[str, Any] = field(default_factory=dict)  # "file:/pointer" -> value
    metrics: dict[str, Any] = field(default_factory=dict)  # "name" -> number
    series: dict[str, dict[str, list[tuple[int, float]]]] = field(default_factory=dict)
    declarations: dict[str, MetricDeclaration] = field(default_factory=dict)
    created: str | None = None
    commit: str | None = None
    id: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # file -> why it was not read
    name: str | None = None
    branch: str | None = None
    dirty: bool | None = None
    duration: float | None = None  # seconds
    stale: list[str] = field(default_factory=list)  # [experiments.stale]: stages out of date


# ---------------------------------------------------------------------------------- sources

def workspace_reader(root: Path) -> Reader:
    def read(path: str) -> bytes | None:
        """[security.symlinks]: a file resolving outside the project is refused, never read;
        a FIFO or device too ([security.special-files])."""
        if os.path.lexists(root / path) and not is_inside(root, root / path):
            raise UnsafePath(f"{path}: resolves outside the project "
                             f"(to {os.path.realpath(root / path)}); it is not read")
        try:
            with open_regular(root / path, path) as f:
                return f.read(MAX_TEXT_FILE_BYTES + 1)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except NotRegularFile:
            if os.path.isdir(root / path):
                return None
            raise
    return read


def git(root: Path, *args: str) -> str | None:
    """Output of a git command in `root`, or None when it fails (no git, no repository)."""
    try:
        r = subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.decode("utf-8", "replace") if r.returncode == 0 else None


def git_reader(root: Path, rev: str) -> Reader:
    """Files as they are at a revision, read through git without touching the working tree."""
    commit = git(root, "rev-parse", "--verify", "--quiet", rev + "^{commit}")
    if not commit:
        raise SourceError(f"{rev!r} is not a git revision here")
    prefix = (git(root, "rev-parse", "--show-prefix") or "").strip()

    def read(path: str) -> bytes | None:
        try:
            r = subprocess.run(["git", "show", f"{commit.strip()}:{prefix}{path}"], cwd=root,
                               capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return r.stdout if r.returncode == 0 else None
    return read


# ---------------------------------------------------------------------------------- reading

def _doc(read: Reader, path: str, fmt: Format, label: str) -> Document | None:
    data = read(path)
    if data is None:
        return None
    try:
        return parse(decode(data, display=f"{label}:{path}"), display=f"{label}:{path}", fmt=fmt)
    except SpecError:
        return None


def read_pipeline(read: Reader, label: str, pipeline_file: str = "pipeline.yaml"
                  ) -> Pipeline | None:
    doc = _doc(read, pipeline_file, "yaml", label)
    if doc is None or not isinstance(doc.value, dict) or not isinstance(
            doc.value.get("stages"), dict):
        return None
    version = check_version(doc, what="pipeline file")
    if version is not None and version.code in ("major_unsupported", "minor_newer"):
        # [tool.experiments]: a pipeline of a version this tool does not read is not read as
        # if it were 1.0 (its params, its metrics and their declarations)
        raise VersionRefused(_problem([version]))
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    for file in doc.value.get("vars", []) if isinstance(doc.value.get("vars"), list) else []:
        fmt = PARAMS_EXTENSIONS.get(os.path.splitext(file)[1].lower())
        vdoc = _doc(read, file, fmt, label) if fmt else None  # type: ignore[arg-type]
        if vdoc is not None and isinstance(vdoc.value, dict):
            for k, v in vdoc.value.items():
                values.setdefault(k, v)
                source.setdefault(k, file)
    try:
        pipeline, _ = build_pipeline(doc, VarsContext(values, source))
    except (KeyError, TypeError, ValueError):
        return None
    return pipeline


def checked_json(data: bytes, display: str, schema: str, what: str) -> Any:
    """A metrics file or experiment record read as `validate` reads it (bounded depth, no bare
    NaN, version gate, schema): its value, or SourceError naming the file, the first problem
    and its (phase/code)."""
    try:
        doc = parse(decode(data, display=display), display=display, fmt="json")
    except SpecError as e:
        raise SourceError(_problem(e.diagnostics)) from None
    version = check_version(doc, what=what)
    if version is not None and version.code in ("major_unsupported", "minor_newer"):
        raise VersionRefused(_problem([version]))  # [tool.experiments]: exit 1, not skipped
    from ..files.validate import newer_features
    problems = [version] if version is not None else (
        schema_diagnostics(doc, schema) + newer_features(doc, schema))  # [version.features]
    errors = [d for d in problems if d.severity == "error"]
    if errors:
        raise SourceError(_problem(errors))
    return doc.value


def plain_file_metrics(data: bytes, display: str) -> dict[str, Any]:
    """[metrics.plain]: the number leaves of a plain metrics file (JSON with Python's bare
    NaN / Infinity, or YAML), by name; SourceError naming the first problem."""
    from ..files.documents import plain_metrics_format
    from ..files.values import plain_metrics
    fmt = plain_metrics_format(display)
    try:
        if fmt is None:
            raise SourceError(f"{display}: a plain metrics file is .json, .yaml or .yml")
        doc = parse(decode(data, display=display), display=display, fmt=fmt, nonfinite=True)
    except SpecError as e:
        raise SourceError(_problem(e.diagnostics)) from None
    if not isinstance(doc.value, dict):
        raise SourceError(f"{display}: schema/type: a plain metrics file must be a mapping")
    return {name: metric_value(v) for name, v in plain_metrics(doc.value).items()}


def _problem(diagnostics: list[Any]) -> str:
    d = diagnostics[0]
    more = f" (and {len(diagnostics) - 1} more)" if len(diagnostics) > 1 else ""
    return f"{d.location}: {d.phase}/{d.code}: {d.message}{more}"


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """[metrics.declarations]: nested metric keys joined by `/`."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "/"))
        else:
            out[name] = metric_value(value)
    return out


def metric_value(value: Any) -> Any:
    """[metrics.nonfinite]: the strings NaN / Infinity / -Infinity read as floats; a metric is a
    binary64, so `1` and `1.0` are one value (a record writes `1.0` as `1`, [lock.canonical])."""
    if isinstance(value, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value, value)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return value
    return value


def read_series(data: bytes) -> dict[str, list[tuple[int, float]]]:
    """[metrics.series]: records by metric name; a torn last line, and lines that are not
    records, are passed over (a file being written is read as far as it is complete)."""
    lines = data.decode("utf-8", "replace").split("\n")[:-1]
    out: dict[str, list[tuple[int, float]]] = {}
    for line in lines[1:]:
        try:  # read like every file ([read.depth], [read.json]): no deep nesting, no bare NaN
            record = parse(line, display="series", fmt="json").value
            step = record["step"]
            metrics = record["metrics"]
        except (SpecError, KeyError, TypeError):
            continue
        if not isinstance(step, int) or not isinstance(metrics, dict):
            continue
        for name, value in metrics.items():
            value = metric_value(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out.setdefault(name, []).append((step, float(value)))
    return out


def summarize(points: list[tuple[int, float]], rule: str, direction: str | None) -> float:
    """[metrics.declarations]: one value for a series: last, min, max or best."""
    values = [v for _, v in points]
    if rule == "best":
        rule = "min" if direction == "lower" else "max"
    if rule == "min":
        return min(values, key=lambda v: (math.isnan(v), v))
    if rule == "max":
        return max(values, key=lambda v: (not math.isnan(v), v))
    return points[-1][1]


def _in_stage_order(pipeline: Pipeline) -> list[Any]:
    """[experiments.metrics]: "stage order" is the run order of [stale.order]."""
    from ..files.graph import dependencies, topological_order
    try:
        names = topological_order(dependencies(pipeline))
    except ValueError:  # a cycle: validate reports it; keep the file's order meanwhile
        names = list(pipeline.stages)
    return [pipeline.stages[n] for n in names]


def snapshot(read: Reader, label: str, kind: Literal["workspace", "rev"],
             pipeline_file: str = "pipeline.yaml") -> Snapshot:
    pipeline = read_pipeline(read, label, pipeline_file)
    if pipeline is None:
        raise SourceError(f"no readable {pipeline_file} in {label}")
    snap = Snapshot(label=label, kind=kind, declarations=dict(pipeline.metrics))
    params_docs: dict[str, Any] = {}
    found_in: dict[str, dict[str, Any]] = {}  # metrics file -> its metrics, in stage order
    for stage in _in_stage_order(pipeline):
        for ref in stage.params:
            if ref.file not in params_docs:
                fmt = PARAMS_EXTENSIONS.get(os.path.splitext(ref.file)[1].lower())
                pdoc = _doc(read, ref.file, fmt, label) if fmt else None  # type: ignore[arg-type]
                params_docs[ref.file] = pdoc.value if pdoc is not None and isinstance(
                    pdoc.value, dict) else {}
            document = params_docs[ref.file]
            pointers = [pointer_for(k) for k in document] if ref.whole else ref.pointers
            for pointer in pointers:
                try:
                    snap.params[f"{ref.file}:{pointer}"] = resolve_pointer(document, pointer)
                except KeyError:
                    continue
        for out in stage.outputs:
            if out.section != "metrics":
                continue
            data = read(out.path)
            if data is None:
                continue
            _gate(data, f"{label}:{out.path}", out.kind)
            if out.kind == "series":
                snap.series[out.path] = read_series(data)
                continue
            try:
                found = plain_file_metrics(data, f"{label}:{out.path}") if out.kind == "plain" \
                    else flatten(checked_json(data, f"{label}:{out.path}", "metrics",
                                              "metrics file").get("metrics", {}))
            except SourceError as e:
                snap.skipped[out.path] = str(e)
                continue
            found_in[out.path] = found
    snap.metrics = keyed_by_file(found_in)
    _add_series_summaries(snap)
    return snap


def keyed_by_file(found_in: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """[experiments.metrics-collision] (1.1): a metric name defined by one file keeps its name;
    a name defined by two or more files is kept once per file, as `PATH:NAME`, so no value is
    ever dropped and no file wins silently."""
    counts: dict[str, int] = {}
    for metrics in found_in.values():
        for name in metrics:
            counts[name] = counts.get(name, 0) + 1
    out: dict[str, Any] = {}
    for path, metrics in found_in.items():
        for name, value in metrics.items():
            out[name if counts[name] == 1 else f"{path}:{name}"] = value
    return out


def declaration_of(name: str, declarations: Mapping[str, MetricDeclaration]
                   ) -> MetricDeclaration | None:
    """The declaration of a metric, also when it is keyed by file (`PATH:NAME`)."""
    if name in declarations:
        return declarations[name]
    path, sep, bare = name.rpartition(":")
    return declarations.get(bare) if sep and path else None


def _add_series_summaries(snap: Snapshot) -> None:
    """Declared metrics found only in a series get the value their `summary` rule says."""
    for name, decl in snap.declarations.items():
        if name in snap.metrics:
            continue
        for series in snap.series.values():
            if series.get(name):
                snap.metrics[name] = summarize(series[name], decl.summary, decl.direction)
                break


# ---------------------------------------------------------------------------------- records

def new_id(now: _dt.datetime) -> str:
    return now.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


SERIES_STORE = f"{EXPERIMENTS}/series"  # [experiments.series-store] (1.1)


@dataclass(frozen=True)
class RunFacts:
    """What a record says of the run that made it ([experiments.run-facts], 1.1)."""
    duration: float | None = None  # seconds, or None (exp save ran nothing)
    commands: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (stage, its commands) as run
    stale: tuple[str, ...] = ()  # [experiments.stale]: metrics stages out of date


def build_record(root: Path, name: str | None, *, pipeline_file: str = "pipeline.yaml",
                 lock_file: str = "pipeline.lock", facts: RunFacts = RunFacts(),
                 store_root: Path | None = None) -> dict[str, Any]:
    """[experiments.record] of the workspace as it is now; its series are put in the series
    store ([experiments.series-store]) of `store_root` (the project the record goes to; by
    default `root`) and referenced by digest."""
    snap = snapshot(workspace_reader(root), "workspace", "workspace", pipeline_file)
    now = _dt.datetime.now(_dt.timezone.utc)
    ident = new_id(now)
    params: dict[str, dict[str, Any]] = {}
    for column, value in snap.params.items():
        file, _, pointer = column.partition(":")
        params.setdefault(file, {})[pointer] = typed_tree(value)
    series = {path: {"digest": store_series(store_root or root, (root / path).read_bytes()),
                     "stored": True}
              for path in snap.series}
    commit = git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    lock = root / lock_file
    lock_bytes = lock.read_bytes() if lock.is_file() else None
    return {
        "version": "1.1", "id": ident, "name": name or ident,
        "created": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "git_commit": commit.strip() if commit else None,
        **git_state(root),
        "params": params,
        "metrics": _unflatten_metrics(snap.metrics),
        "series": series,
        "lock_digest": "sha256:" + hashlib.sha256(lock_bytes).hexdigest()
        if lock_bytes is not None else None,
        "deps": source_deps(lock_bytes),
        "duration": round(facts.duration, 3) if facts.duration is not None else None,
        "commands": [{"stage": stage, "cmd": list(cmd)} for stage, cmd in facts.commands],
        "stale": sorted(facts.stale),
    }


def git_state(root: Path) -> dict[str, Any]:
    """[experiments.run-facts]: the branch (null when detached or without git) and whether
    tracked files differ from the commit (null without git)."""
    if git(root, "rev-parse", "--verify", "--quiet", "HEAD") is None:
        return {"git_branch": None, "git_dirty": None}
    branch = (git(root, "symbolic-ref", "--short", "-q", "HEAD") or "").strip() or None
    status = git(root, "status", "--porcelain", "--untracked-files=no")
    return {"git_branch": branch, "git_dirty": None if status is None else bool(status.strip())}


def source_deps(lock_bytes: bytes | None) -> dict[str, str]:
    """[experiments.run-facts]: every dep no stage writes (the data and code the run read),
    with its digest as the lock records it."""
    try:
        stages = json.loads(lock_bytes or b"{}").get("stages", {})
    except (ValueError, AttributeError):
        return {}
    outs = {path for entry in stages.values() for path in (entry.get("outs") or {})}
    return {path: dep["digest"] for entry in stages.values()
            for path, dep in sorted((entry.get("deps") or {}).items())
            if path not in outs and isinstance(dep, dict) and isinstance(dep.get("digest"), str)}


def store_series(root: Path, data: bytes) -> str:
    """[experiments.series-store]: the series file's bytes kept once, under their digest,
    written atomically; its digest."""
    from ..files.safe_io import write_atomic
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = root / SERIES_STORE / (digest.partition(":")[2] + ".jsonl")
    if not path.is_file():
        make_dirs(root, path.parent)  # [security.symlinks]: never through a link
        write_atomic(path, data, base=root, durable=True)
    return digest


def stored_series(root: Path | None, digest: str) -> bytes | None:
    """A stored series by digest, verified; None when it is not there or does not match."""
    hexdigest = digest.partition(":")[2]
    if root is None or not re.fullmatch(r"[0-9a-f]{64}", hexdigest):
        return None
    path = root / SERIES_STORE / f"{hexdigest}.jsonl"
    if not is_inside(root, path):
        return None
    try:
        with open_regular(path, str(path)) as f:
            data = f.read()
    except (OSError, NotRegularFile):
        return None
    return data if hashlib.sha256(data).hexdigest() == hexdigest else None


def _unflatten_metrics(flat: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, value in flat.items():
        node = tree
        *parents, leaf = name.split("/")
        for p in parents:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            if isinstance(value, float) and not math.isfinite(value):
                value = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
            node.setdefault(leaf, value)
    return tree


def _gate(data: bytes, display: str, kind: str) -> None:
    """[tool.experiments] for a metrics output: its header line for a series (a torn header is
    an empty series), the whole file for summary metrics."""
    if kind == "plain":
        return  # [metrics.plain]: written by the user's code, with no version
    if kind == "series":
        lines = data.split(b"\n")
        if len(lines) < 2:
            return
        data = lines[0]
    refused = version_refusal(data, display, "series header" if kind == "series"
                              else "metrics file")
    if refused is not None:
        raise VersionRefused(f"{display}: {refused.message}")


def write_record(root: Path, record: Mapping[str, Any]) -> Path:
    """Write a record once, atomically, canonically ([experiments.record])."""
    from ..pipeline.lockfile import atomic_write_text
    folder = root / EXPERIMENTS
    make_dirs(root, folder)  # [security.symlinks]: never through a link
    path = folder / f"{record['id']}.json"
    if os.path.lexists(path):
        raise FileExistsError(path)
    atomic_write_text(path, canonical_json(record), base=root)
    return path


def records(root: Path, skipped: dict[str, str] | None = None,
            refused: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """The experiment records of a project, oldest first, each read as `validate` reads it;
    the invalid ones are passed over, with why, in `skipped`, and those of a version this tool
    does not read are also named in `refused` ([tool.experiments])."""
    from ..files.documents import read_bytes
    folder = root / EXPERIMENTS
    if not folder.is_dir() or not is_inside(root, folder):  # [security.symlinks]
        return
    found = []
    for path in sorted(folder.glob("*.json")):
        display = f"{EXPERIMENTS}/{path.name}"
        if not is_inside(root, path):  # [security.symlinks]: a link out of the project
            (skipped if skipped is not None else {})[display] = "links outside the project"
            continue
        try:
            data = checked_json(read_bytes(path, display=display, limit=MAX_TEXT_FILE_BYTES),
                                display, "experiment", "experiment record")
        except SpecError as e:
            (skipped if skipped is not None else {})[display] = _problem(e.diagnostics)
            continue
        except SourceError as e:
            (skipped if skipped is not None else {})[display] = str(e)
            if isinstance(e, VersionRefused) and refused is not None:
                refused.append(display)
            continue
        found.append(data)
    yield from sorted(found, key=lambda r: (str(r.get("created")), str(r.get("id"))))


def record_snapshot(record: Mapping[str, Any], declarations: Mapping[str, MetricDeclaration],
                    root: Path | None = None) -> Snapshot:
    """A record as a row: its series copied in (1.0) or from the series store (1.1)."""
    duration = record.get("duration")
    snap = Snapshot(label=str(record.get("name") or record["id"]), kind="experiment",
                    declarations=dict(declarations), created=record.get("created"),
                    commit=record.get("git_commit"), id=record["id"],
                    name=record.get("name"), branch=record.get("git_branch"),
                    dirty=record.get("git_dirty"),
                    duration=float(duration) if isinstance(duration, (int, float)) else None,
                    stale=list(record.get("stale") or []))
    for file, values in (record.get("params") or {}).items():
        for pointer, tree in values.items():
            try:
                snap.params[f"{file}:{pointer}"] = from_typed_tree(tree)
            except (ValueError, TypeError, KeyError):
                continue
    snap.metrics = flatten(record.get("metrics") or {})
    for path, entry in (record.get("series") or {}).items():
        if "records" in entry:
            lines = [json.dumps({"version": "1.0", "kind": "series"})] + [
                json.dumps(r) for r in entry.get("records", [])]
            snap.series[path] = read_series(("\n".join(lines) + "\n").encode())
            continue
        data = stored_series(root, str(entry.get("digest")))
        if data is None:
            snap.skipped[path] = (f"{EXPERIMENTS}/{record['id']}.json: series {path}: "
                                  f"{entry.get('digest')} is not in {SERIES_STORE}/")
            continue
        snap.series[path] = read_series(data)
    _add_series_summaries(snap)
    return snap


def resolve(root: Path, ref: str, declarations: Mapping[str, MetricDeclaration],
            pipeline_file: str = "pipeline.yaml", skipped: dict[str, str] | None = None,
            refused: list[str] | None = None) -> Snapshot:
    """A snapshot by reference: `workspace`, an experiment's id or name, or a git revision.
    Records of a version this tool does not read are named in `refused`; naming one is
    VersionRefused ([tool.experiments]), not "no such revision"."""
    if ref in ("workspace", "ws", "."):
        return snapshot(workspace_reader(root), "workspace", "workspace", pipeline_file)
    passed: list[str] = []
    matches = [r for r in records(root, skipped, passed) if ref in (r.get("id"), r.get("name"))]
    if refused is not None:
        refused.extend(p for p in passed if p not in refused)
    if matches:
        return record_snapshot(matches[-1], declarations, root)
    for display in passed:
        if ref in _names_of(root / display):
            raise VersionRefused(f"experiment {ref!r} ({display}) is of a spec version this "
                                 "tool does not read; upgrade reftool to compare it")
    return snapshot(git_reader(root, ref), ref, "rev", pipeline_file)


def _names_of(path: Path) -> tuple[str, ...]:
    """The id and name of a record that was refused for its version, read only to say so."""
    try:
        data = json.loads(path.read_bytes()[:MAX_TEXT_FILE_BYTES])
    except (OSError, ValueError):
        return ()
    if not isinstance(data, dict):
        return ()
    return tuple(str(data[k]) for k in ("id", "name") if isinstance(data.get(k), str))
