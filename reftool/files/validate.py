"""Validation: version gate, schema errors with positions, semantic checks. SPEC [tool.validate].

Every check reports every problem it finds ([errors.all]); a problem in one file does not stop
the checks of another. Nothing named in any file is executed ([pipeline.no-exec]).
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import graph
from .documents import Document, DocumentCache, Format, JsonPath, load, located, parse
from .errors import Diagnostic, SpecError, diagnostic
from .load import VarsContext, build_lock, build_pipeline
from .model import Lock, Pipeline, Stage, canonical_json
from .schemas import validator
from .spec import (
    ERROR_CODES,
    MAX_LOCK_FILE_BYTES,
    MAX_NAME_BYTES,
    MAX_PATH_BYTES,
    MAX_STAGES,
    MAX_TEXT_FILE_BYTES,
    MAX_WARNINGS_PER_CODE,
    ADDED_IN,
    ADDED_VALUES,
    NEWEST_MINOR,
    PARAMS_EXTENSIONS,
    FileKind,
    reserved_conflict,
)
from .ignore import IGNORE_FILE, PatternError, compile_pattern, parse_ignore_text, \
    read_ignore_file
from .safe_io import NotRegularFile, is_inside, kind_of
from .values import pointer_for, resolve_pointer, type_name

_VERSION = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")

_TYPE_WORDS = {
    "null": "null", "bool": "a boolean", "int": "an integer", "float": "a number",
    "str": "a string", "list": "a list", "map": "a mapping",
}
_SCHEMA_TYPE_WORDS = {
    "string": "a string", "integer": "an integer", "number": "a number", "boolean": "a boolean",
    "array": "a list", "object": "a mapping", "null": "null",
}


@dataclass(slots=True)
class Report:
    """What validation found: the files checked (with their kinds) and the diagnostics."""

    files: list[tuple[str, FileKind]] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # said in text, never a failure

    def add_file(self, path: str, kind: FileKind) -> None:
        if (path, kind) not in self.files:
            self.files.append((path, kind))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]


# ---------------------------------------------------------------------------------- versions

def check_version(doc: Document, *, what: str) -> Diagnostic | None:
    """[version.declared], [version.major], [version.minor]"""
    value = doc.value
    if not isinstance(value, dict):
        return located(doc, "schema", "type", (), f"the {what} must be a mapping, "
                       f"not {_TYPE_WORDS.get(_safe_type(value), 'this')}",
                       expected="a mapping with a 'version' key")
    if "version" not in value:
        return located(doc, "version", "version_missing", (),
                       f"the {what} has no 'version'", expected='version: "1.0"',
                       hint='add  version: "1.0"  at the top', anchor="version.declared")
    version = value["version"]
    m = _VERSION.fullmatch(version) if isinstance(version, str) else None
    if m is None:
        hint = f'write it as a string: version: "{version}"' \
            if isinstance(version, (int, float)) and not isinstance(version, bool) else None
        return located(doc, "version", "version_invalid", ("version",),
                       f"version {version!r} is not a string \"MAJOR.MINOR\"",
                       expected='a string such as "1.0"', hint=hint,
                       anchor="version.declared")
    major, minor = int(m.group(1)), int(m.group(2))
    newest = NEWEST_MINOR.get(major)
    known = ", ".join(f"{k}.0 to {k}.{v}" for k, v in NEWEST_MINOR.items())
    if newest is None:
        return located(doc, "version", "major_unsupported", ("version",),
                       f"spec version {version} is not supported; this tool reads {known}",
                       expected=f"a version in {known}", anchor="version.major")
    if minor > newest:
        return located(doc, "version", "minor_newer", ("version",),
                       f"spec version {version} is newer than this tool, which reads "
                       f"{known}; upgrade reftool to read it",
                       expected=f"a version in {known}", hint="upgrade reftool",
                       anchor="version.minor")
    return None


def newer_features(doc: Document, schema: str) -> list[Diagnostic]:
    """SPEC [version.features]: a key added in 1.M, in a file declaring an older version, is
    refused as that version's reader refuses an unknown key (`schema/additionalProperties`)."""
    declared = _VERSION.fullmatch(str(doc.value.get("version"))) \
        if isinstance(doc.value, dict) else None
    if declared is None:
        return []
    version = (int(declared.group(1)), int(declared.group(2)))
    keys = [(p, added) for (name, p), added in sorted(ADDED_IN.items())
            if name == schema and version < added]
    values = [(p, value, added) for (name, p, value), added in sorted(ADDED_VALUES.items())
              if name == schema and version < added]
    found = matching_all(doc.value, [p for p, _ in keys] + [p for p, _, _ in values])
    out = []
    for pattern, added in keys:
        for path in found[pattern]:
            if len(path) >= 3 and path[-3] in ("deps", "env") and isinstance(path[-2], int):
                # a 1.0 reader meets a mapping where a path or a name goes
                what = "a dep" if path[-3] == "deps" else "an env entry"
                out.append(located(doc, "schema", "type", path[:-1],
                                   message=f"{what} written as a mapping was added in spec "
                                   f"version {added[0]}.{added[1]}; this file declares "
                                   f"{doc.value['version']}", anchor="version.features",
                                   expected=f'version: "{added[0]}.{added[1]}" to use it'))
                continue
            out.append(located(doc, "schema", "additionalProperties", path, key=True,
                               message=f"'{path[-1]}' was added in spec version "
                               f"{added[0]}.{added[1]}; this file declares {doc.value['version']}",
                               expected=f'version: "{added[0]}.{added[1]}" to use it',
                               anchor="version.features"))
    for pattern, value, added in values:
        for path in found[pattern]:
            if _value_at(doc.value, path) == value:
                out.append(located(doc, "schema", "enum", path,
                                   message=f"{value!r} was added in spec version "
                                   f"{added[0]}.{added[1]}; this file declares "
                                   f"{doc.value['version']}",
                                   expected=f'version: "{added[0]}.{added[1]}" to use it',
                                   anchor="version.features"))
    return out


def _value_at(value: Any, path: JsonPath) -> Any:
    for key in path:
        value = value[key]
    return value


def matching_all(value: Any, patterns: list[tuple[str, ...]]
                 ) -> dict[tuple[str, ...], list[JsonPath]]:
    """The paths in `value` that each pattern names ("*": any key or index; "x-*": any key
    beginning `x-`), each pattern's in document order, from one walk of `value` (issue 18: a
    walk a pattern, 23 of them, was 13% of validating a 10,000-stage pipeline)."""
    root = _Node()
    for pattern in patterns:
        node = root
        for head in pattern:
            node = node.child(head)
        node.end = pattern
    found: dict[tuple[str, ...], list[JsonPath]] = {p: [] for p in patterns}
    _walk(value, root, (), found)
    return found


class _Node:
    """A node of the patterns' trie: the pattern it ends, and where each kind of key leads."""

    __slots__ = ("end", "keys", "star", "ext")

    def __init__(self) -> None:
        self.end: tuple[str, ...] | None = None
        self.keys: dict[str, _Node] = {}  # a key named as it is
        self.star: _Node | None = None  # "*"
        self.ext: _Node | None = None  # "x-*"

    def child(self, head: str) -> _Node:
        if head == "*":
            self.star = self.star or _Node()
            return self.star
        if head == "x-*":
            self.ext = self.ext or _Node()
            return self.ext
        return self.keys.setdefault(head, _Node())


def _walk(value: Any, node: _Node, at: JsonPath,
          found: dict[tuple[str, ...], list[JsonPath]]) -> None:
    if node.end is not None:
        found[node.end].append(at)
    keys, star, ext = node.keys, node.star, node.ext
    if isinstance(value, dict):
        if star is None and ext is None:  # named keys only: looked up, not searched for
            for name, named in keys.items():
                if name in value:
                    _visit(value[name], named, (*at, name), found)
            return
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list) and star is not None:  # an index matches "*" alone
        items = enumerate(value)
    else:
        return
    for key, child in items:
        if star is not None:
            _visit(child, star, (*at, key), found)
        if isinstance(key, str):
            sub = keys.get(key)
            if sub is not None:
                _visit(child, sub, (*at, key), found)
            if ext is not None and key.startswith("x-"):
                _visit(child, ext, (*at, key), found)


def _visit(value: Any, node: _Node, at: JsonPath,
           found: dict[tuple[str, ...], list[JsonPath]]) -> None:
    """`_walk`, unless `value` is a scalar that ends no pattern here (it leads nowhere)."""
    if node.end is not None or isinstance(value, (dict, list)):
        _walk(value, node, at, found)


def _safe_type(value: Any) -> str:
    try:
        return type_name(value)
    except TypeError:
        return "?"


# ---------------------------------------------------------------------------------- schemas

def schema_diagnostics(doc: Document, schema: str, *, instance: Any = None,
                       pointer: str = "", base: JsonPath = ()) -> list[Diagnostic]:
    """Schema errors of `instance` (default: the document's value) with positions.

    `base` is the path of `instance` inside the document, for locating errors. A value the
    compiled schema passes is valid without jsonschema (`schemacheck`); any other is explained
    by jsonschema, whose errors these are.
    """
    from .schemacheck import passes  # here: a plan whose files are cached checks no schema
    value = doc.value if instance is None else instance
    if passes(schema, value, pointer=pointer):
        return []
    out: list[Diagnostic] = []
    for err in validator(schema, pointer).iter_errors(value):
        out.extend(_explain(doc, err, base))
    return sorted(set(out), key=Diagnostic.sort_key)


def _context(path: JsonPath) -> str:
    if len(path) >= 2 and path[0] == "stages":
        return f" in stage {path[1]!r}"
    return ""


def _explain(doc: Document, err: Any, base: JsonPath) -> Iterator[Diagnostic]:
    path: JsonPath = base + tuple(err.absolute_path)
    where = _context(path)
    kw = err.validator
    schema = err.schema if isinstance(err.schema, dict) else {}
    expected = schema.get("description")
    title = schema.get("title") or expected
    if kw in ("anyOf", "oneOf") and err.context:
        branch = _best_branch(err)
        if branch:
            for sub in branch:
                yield from _explain(doc, sub, base)
            return
        yield located(doc, "schema", kw, path,
                      f"{_show(err.instance)}{where} is not {title or 'valid here'}",
                      expected=expected)
        return
    if "propertyNames" in err.schema_path:
        key = err.instance
        names = _subschema_at(err, "propertyNames")
        yield located(doc, "schema", "propertyNames", path + (key,),
                      f"invalid name {key!r}{where}", key=True,
                      expected=(names or {}).get("description") or expected)
        return
    if kw == "additionalProperties":
        yield from _unknown_keys(doc, err, path, schema)
        return
    if kw == "required":
        for key in err.validator_value:
            if isinstance(err.instance, dict) and key not in err.instance:
                what = where.strip().removeprefix("in ") or "the file"
                yield located(doc, "schema", kw, path,
                              f"{what} is missing the required key {key!r}",
                              key=bool(path), expected=expected)
        return
    if kw == "type":
        wanted = err.validator_value
        words = " or ".join(_SCHEMA_TYPE_WORDS.get(str(t), str(t)) for t in (
            wanted if isinstance(wanted, list) else [wanted]))
        got = _TYPE_WORDS.get(_safe_type(err.instance), "something else")
        yield located(doc, "schema", kw, path,
                      f"expected {expected or words}{where}, got {got}",
                      expected=expected or words)
        return
    if kw == "not" and isinstance(err.validator_value, dict):
        yield located(doc, "schema", kw, path,
                      f"{err.validator_value.get('description', 'not allowed here')}{where}",
                      expected=err.validator_value.get("description"))
        return
    message = f"{_show(err.instance)}{where} is not {title}" if title else \
        f"{err.message}{where}"
    yield located(doc, "schema", kw if kw in _SCHEMA_CODES else "format", path, message,
                  expected=expected)


def _unknown_keys(doc: Document, err: Any, path: JsonPath,
                  schema: dict[str, Any]) -> Iterator[Diagnostic]:
    """One `additionalProperties` error for each unknown key, with a "did you mean"."""
    allowed = sorted(schema.get("properties", {}))
    for key in err.instance:
        if key in schema.get("properties", {}):
            continue
        guess = did_you_mean(key, allowed)
        hint = f"did you mean {guess!r}?" if guess else None
        yield located(doc, "schema", "additionalProperties", path + (key,),
                      f"unknown key {key!r}{_context(path)}", key=True,
                      expected="one of " + ", ".join(map(repr, allowed)), hint=hint)


_SCHEMA_CODES = ERROR_CODES["schema"]  # SPEC [errors.phase-code]: the closed list


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate nearest to a misspelt word, by edit distance counting transpositions."""
    best: tuple[int, float, str] | None = None
    for c in candidates:
        d = _edit_distance(word.lower(), c.lower())
        if d <= max(1, len(c) // 3):
            rank = (d, -difflib.SequenceMatcher(None, word, c).ratio(), c)
            best = rank if best is None or rank < best else best
    return best[2] if best else None


def _edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent transpositions)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _subschema_at(err: Any, keyword: str) -> dict[str, Any] | None:
    """The sub-schema under `keyword` of the schema the error came from, when reachable."""
    parent = err.parent
    while parent is not None:
        if isinstance(parent.schema, dict) and keyword in parent.schema:
            found = parent.schema[keyword]
            return found if isinstance(found, dict) else None
        parent = parent.parent
    return None


def _best_branch(err: Any) -> list[Any] | None:
    """Of an anyOf/oneOf error, the errors of the one branch whose type fits the value."""
    branches: dict[int, list[Any]] = {}
    for sub in err.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [errs for errs in branches.values()
               if not any(e.validator in ("type", "const", "enum") and not e.relative_path
                          and len(e.relative_schema_path) <= 2 for e in errs)]
    if len(fitting) == 1:
        return fitting[0]
    return None


# ---------------------------------------------------------------------------------- one file

def _parse_file(path: Path, display: str, fmt: Format, report: Report,
                limit: int = MAX_TEXT_FILE_BYTES,
                cache: DocumentCache | None = None) -> Document | None:
    try:
        return load(path, display=display, fmt=fmt, limit=limit, cache=cache)
    except SpecError as e:
        report.diagnostics.extend(e.diagnostics)
        return None


def _pipeline_document(root: Path, name: str, report: Report, cache: DocumentCache | None,
                       text: str | None) -> Document | None:
    display = _display(root, name)
    report.add_file(display, "pipeline")
    escape = _escape(root, name, display)
    if escape is not None:
        report.diagnostics.append(escape)
        return None
    if text is not None:
        return _parse_text(text, display, report)
    return _parse_file(root / name, display, "yaml", report, cache=cache)


def _parse_text(text: str, display: str, report: Report) -> Document | None:
    try:
        return parse(text, display=display, fmt="yaml")
    except SpecError as e:
        report.diagnostics.extend(e.diagnostics)
        return None


def _format_of(path: str) -> Format | None:
    fmt = PARAMS_EXTENSIONS.get(os.path.splitext(path)[1].lower())
    return fmt  # type: ignore[return-value]


def _versioned(doc: Document, schema: str, what: str, report: Report,
               cache: DocumentCache | None = None) -> bool:
    """Version gate, then schema: True when the document passed both."""
    problem = check_version(doc, what=what)
    if problem is not None:
        report.diagnostics.append(problem)
        return False
    found = _schema_check(doc, schema, cache)
    report.diagnostics.extend(found)
    return not found


def _schema_check(doc: Document, schema: str, cache: DocumentCache | None) -> list[Diagnostic]:
    """Schema errors of a whole document; files whose bytes passed before are not checked
    again (the verdict is a function of the bytes, the schemas and the tool version)."""
    if cache is not None and doc.digest and cache.is_valid(doc.digest, schema):
        return []
    found = schema_diagnostics(doc, schema) + newer_features(doc, schema)
    if not found and cache is not None and doc.digest:
        cache.mark_valid(doc.digest, schema)
    return found


def validate_metrics_file(path: Path, display: str, report: Report) -> None:
    """[metrics.summary], [metrics.nonfinite]"""
    report.add_file(display, "metrics")
    doc = _parse_file(path, display, "json", report)
    if doc is not None:
        _versioned(doc, "metrics", "metrics file", report)


def validate_plain_metrics_file(path: Path, display: str, report: Report) -> None:
    """[metrics.plain]: a JSON or YAML mapping written by the user's code, no version; its
    leaves that are not numbers are not metrics, and are named in a note."""
    from .documents import load, plain_metrics_format
    from .values import plain_metrics
    report.add_file(display, "metrics")
    fmt = plain_metrics_format(display)
    if fmt is None:
        return  # the pipeline's schema refuses the path ([metrics.plain])
    try:
        doc = load(path, display=display, fmt=fmt, limit=MAX_TEXT_FILE_BYTES, nonfinite=True)
    except SpecError as e:
        report.diagnostics.extend(e.diagnostics)
        return
    if not isinstance(doc.value, dict):
        report.diagnostics.append(located(
            doc, "schema", "type", (), "a plain metrics file must be a mapping, not "
            f"{_TYPE_WORDS.get(_safe_type(doc.value), 'this')}",
            expected='a mapping of metric names to numbers, e.g. {"acc": 0.9}',
            anchor="metrics.plain"))
        return
    ignored: list[tuple[str, str]] = []
    plain_metrics(doc.value, ignored)
    if ignored:
        shown = ", ".join(f"{p} ({t})" for p, t in ignored[:10])
        more = f" and {len(ignored) - 10} more" if len(ignored) > 10 else ""
        report.notes.append(f"{display}: not metrics (only numbers are), ignored: "
                            f"{shown}{more}")


def validate_experiment_file(path: Path, display: str, report: Report) -> None:
    """[experiments.record]"""
    report.add_file(display, "experiment")
    doc = _parse_file(path, display, "json", report)
    if doc is not None:
        _versioned(doc, "experiment", "experiment record", report)


def validate_queue_entry_file(path: Path, display: str, report: Report) -> None:
    """[experiments.queue]"""
    report.add_file(display, "queue-entry")
    doc = _parse_file(path, display, "json", report)
    if doc is not None:
        _versioned(doc, "queue-entry", "queue entry", report)


def validate_series_file(path: Path, display: str, report: Report) -> None:
    """[metrics.series]: a header line, then records; a torn last line is ignored."""
    report.add_file(display, "series")
    try:
        from .documents import decode, read_bytes
        text = decode(read_bytes(path, display=display, limit=MAX_TEXT_FILE_BYTES),
                      display=display)
    except SpecError as e:
        report.diagnostics.extend(e.diagnostics)
        return
    lines = text.split("\n")
    # the text after the last LF is being written: ignored, even when it is the header, so a
    # file with no complete line is an empty series, not an invalid one
    complete = lines[:-1]
    for number, line in enumerate(complete, start=1):
        problems: list[Diagnostic] = []
        if line.endswith("\r"):  # [metrics.series]: lines end with LF alone
            report.diagnostics.append(diagnostic(
                "parse", "syntax", display, "line ends with CR LF; series lines end with LF",
                line=number, column=len(line), expected="LF line endings",
                anchor="metrics.series"))
            continue
        try:
            doc = parse(line, display=display, fmt="json")
        except SpecError as e:
            problems = e.diagnostics
        else:
            if number == 1:
                sub = Report()
                _versioned(doc, "series-header", "series header", sub)
                problems = sub.diagnostics
                if problems and problems[0].phase == "version":
                    problems = [_on_line(p, 1) for p in problems]
                    report.diagnostics.extend(problems)
                    return
            else:
                problems = schema_diagnostics(doc, "series-record")
        report.diagnostics.extend(_on_line(p, number) for p in problems)


def _on_line(d: Diagnostic, line: int) -> Diagnostic:
    from dataclasses import replace
    return replace(d, line=line, column=d.column if d.column is not None else 1)


def validate_params_file(path: Path, display: str, report: Report,
                         cache: DocumentCache | None = None) -> Document | None:
    """[files.params-format]: a YAML, JSON or TOML file whose top level is a mapping."""
    report.add_file(display, "params")
    fmt = _format_of(display)
    if fmt is None:
        report.diagnostics.append(diagnostic(
            "semantic", "params_format", display,
            f"unknown params file extension {os.path.splitext(display)[1]!r}",
            expected=".yaml, .yml, .json or .toml", anchor="files.params-format"))
        return None
    doc = _parse_file(path, display, fmt, report, cache=cache)
    if doc is not None and not isinstance(doc.value, dict):
        report.diagnostics.append(located(
            doc, "schema", "type", (), f"a params file must be a mapping, not "
            f"{_TYPE_WORDS.get(_safe_type(doc.value), 'this')}", expected="a mapping",
            anchor="files.params-format"))
        return None
    return doc


# ---------------------------------------------------------------------------------- projects

@dataclass(slots=True)
class Project:
    """A pipeline file with what validation learnt of its project."""

    root: Path
    pipeline_file: str  # relative to root
    pipeline: Pipeline | None = None
    document: Document | None = None
    params: dict[str, Document | None] = field(default_factory=dict)  # None: unreadable
    lock: Lock | None = None
    cache: DocumentCache | None = None  # parsed values and schema verdicts, for `plan`
    partial: bool = False  # stages with schema errors were left out of `pipeline`
    replayed: int = 0  # journal lines of an unfinished run applied to `lock`
    recovered: int = 0  # of those, the ones that recorded a stage


def _without_invalid_stages(doc: Document, found: list[Diagnostic]) -> Document | None:
    """The document without the stages that schema errors point into ([errors.all]).

    None when an error lies outside every stage: then nothing can be checked further.
    """
    from .values import pointer_tokens
    bad: set[str] = set()
    for d in found:
        tokens = pointer_tokens(d.pointer) if d.pointer else []
        if len(tokens) < 2 or tokens[0] != "stages":
            return None
        bad.add(tokens[1])
    if not bad:
        return doc
    value = dict(doc.value)
    value["stages"] = {k: v for k, v in value["stages"].items() if k not in bad}
    return Document(doc.file, doc.format, value, doc.text, doc.positions)


def validate_pipeline(root: Path, name: str, report: Report, *,
                      with_lock: bool = True, with_metrics: bool = True,
                      lock_warnings: bool = True,
                      cache: DocumentCache | None = None,
                      text: str | None = None) -> Project:
    """The pipeline file `root/name` (or `text` in its place, read in memory: what
    `import-dvc` would write) and, optionally, its lock and metrics files."""
    project = Project(root=root, pipeline_file=name, cache=cache)
    doc = _pipeline_document(root, name, report, cache, text)
    if doc is None:
        return project
    problem = check_version(doc, what="pipeline file")
    if problem is not None:
        report.diagnostics.append(problem)
        return project
    found = _schema_check(doc, "pipeline", cache)
    report.diagnostics.extend(found)
    doc = _without_invalid_stages(doc, found)
    if doc is None:
        return project
    project.partial = bool(found)
    project.document = doc
    context = _vars_context(project, doc, report)

    def revalidate(stage: dict[str, Any], path: JsonPath) -> list[Diagnostic]:
        return schema_diagnostics(doc, "pipeline", instance=stage, pointer="/$defs/stage",
                                  base=path)

    pipeline, problems = build_pipeline(doc, context, revalidate)
    report.diagnostics.extend(problems)
    project.partial = project.partial or bool(problems)
    project.pipeline = pipeline
    report.diagnostics.extend(semantic_diagnostics(project, report))
    if with_lock and not project.partial:
        lock_name = str(Path(name).with_suffix(".lock"))  # [files.lock-name]
        escape = _escape(root, lock_name, _display(root, lock_name))
        if escape is not None and os.path.lexists(root / lock_name):
            report.diagnostics.append(escape)
        elif (root / lock_name).exists():
            project.lock = validate_lock_file(root / lock_name, _display(root, lock_name),
                                              report, project=project, cache=cache,
                                              warnings=lock_warnings)
    if with_metrics:
        for stage in pipeline.stages.values():
            for out in stage.outputs:
                target = root / out.path
                if out.section == "metrics" and target.is_file():
                    disp = _display(root, out.path)
                    if out.kind == "series":
                        validate_series_file(target, disp, report)
                    elif out.kind == "plain":
                        validate_plain_metrics_file(target, disp, report)
                    else:
                        validate_metrics_file(target, disp, report)
    return project


def _display(root: Path, name: str) -> str:
    """How a project file is named in diagnostics: under the root as the user gave it."""
    return os.path.normpath(os.path.join(root, name))


def _params_doc(project: Project, file: str, report: Report) -> Document | None:
    """A params file, read and checked once however many stages name it; never read when it
    resolves outside the project ([paths.symlinks], [security.symlinks])."""
    if file not in project.params:
        display = _display(project.root, file)
        escape = _escape(project.root, file, display)
        if escape is not None:
            report.add_file(display, "params")
            report.diagnostics.append(escape)
            project.params[file] = None
        else:
            project.params[file] = validate_params_file(
                project.root / file, display, report, cache=project.cache)
    return project.params[file]


def _escape(root: Path, rel: str, display: str) -> Diagnostic | None:
    """`semantic/path_escapes` for a project file whose links resolve outside the project."""
    if is_inside(root, root / rel):
        return None
    return diagnostic("semantic", "path_escapes", display,
                      f"{rel!r} resolves outside the project (to "
                      f"{os.path.realpath(root / rel)}); it is not read",
                      anchor="security.symlinks")


def _vars_context(project: Project, doc: Document, report: Report) -> VarsContext:
    """[template.context]"""
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    listed = doc.value.get("vars", [])
    for i, file in enumerate(listed):
        if file in listed[:i]:
            continue  # [template.context]: a file listed twice is one file, read once
        if not (project.root / file).exists():
            report.diagnostics.append(located(
                doc, "semantic", "params_file_missing", ("vars", i),
                f"vars file {file!r} does not exist", anchor="params.missing"))
            continue
        pdoc = _params_doc(project, file, report)
        if pdoc is None:
            continue
        for key, value in pdoc.value.items():
            if key in values:
                report.diagnostics.append(located(
                    doc, "semantic", "template_conflict", ("vars", i),
                    f"top-level key {key!r} is defined by both {source[key]!r} and {file!r}",
                    anchor="template.context"))
                continue
            values[key], source[key] = value, file
    return VarsContext(values, source)


def semantic_diagnostics(project: Project, report: Report) -> list[Diagnostic]:
    """What a schema cannot express: SPEC sections 5 and 6."""
    assert project.pipeline is not None and project.document is not None
    pipeline, doc, out = project.pipeline, project.document, []
    out += _duplicate_paths(pipeline, doc)
    out += _path_text_checks(pipeline, doc)
    out += _output_overlaps(pipeline, doc)
    deps = graph.dependencies(pipeline)
    for cycle in graph.find_cycles(deps):
        first = pipeline.stages[cycle[0]]
        out.append(located(doc, "semantic", "cycle", first.source,
                           "cycle in the stage graph: " + " -> ".join(cycle + [cycle[0]]),
                           key=True, hint="a stage cannot depend, even indirectly, on its "
                           "own outputs", anchor="pipeline.graph"))
    out += _reserved_outputs(project)
    out += _disk_checks(project)
    out += _wdir_checks(project)
    out += _params_checks(project, report)
    out += _exclude_checks(project)
    return out


def _exclude_checks(project: Project) -> list[Diagnostic]:
    """[digest.ignore], [digest.ignore-syntax]: `exclude` names directories' patterns, each
    valid; the project's `.reftoolignore` (read under 1.1 only) has valid lines."""
    assert project.pipeline is not None and project.document is not None
    doc, out = project.document, []
    for stage in project.pipeline.stages.values():
        items = [(d.path, d.exclude, ("deps", d.index)) for d in stage.deps]
        items += [(o.path, o.exclude, (o.section, o.index)) for o in stage.outputs]
        for path, exclude, where in items:
            if exclude and not path.endswith("/"):
                out.append(located(doc, "semantic", "exclude_not_directory",
                                   stage.source + where + ("exclude",),
                                   f"stage {stage.name!r}: {path!r} is a file; only a "
                                   "directory (a path ending in '/') has entries to exclude",
                                   key=True, anchor="digest.ignore"))
            for j, pattern in enumerate(exclude):
                try:
                    compile_pattern(pattern, "exclude")
                except PatternError as e:
                    out.append(located(doc, "semantic", "exclude_pattern",
                                       stage.source + where + ("exclude", j),
                                       f"stage {stage.name!r}: pattern {pattern!r} {e}",
                                       anchor="digest.ignore-syntax"))
    if ignore_applies(project.pipeline.version):
        out += ignore_file_diagnostics(project.root)
    return out


def ignore_applies(version: str) -> bool:
    """[digest.ignore-file]: `.reftoolignore` is read for pipelines of version 1.1 and later."""
    found = _VERSION.fullmatch(version)
    return found is not None and (int(found.group(1)), int(found.group(2))) >= (1, 1)


def ignore_file_diagnostics(root: Path) -> list[Diagnostic]:
    """The problems of the project's `.reftoolignore` ([digest.ignore-file])."""
    problem = _escape(root, IGNORE_FILE, IGNORE_FILE)
    if problem is not None:
        return [problem]
    try:
        data = read_ignore_file(root)
    except NotRegularFile as e:
        return [diagnostic("io", "not_a_file", IGNORE_FILE, str(e),
                           anchor="security.special-files")]
    except OSError as e:
        return [diagnostic("io", "read_error", IGNORE_FILE, f"cannot read it: {e}")]
    if data is None:
        return []
    _, problems = parse_ignore_text(data)
    return [diagnostic("parse" if p.code == "invalid_utf8" else "semantic", p.code,
                       IGNORE_FILE, p.message, line=p.line, column=p.column,
                       anchor="digest.ignore-syntax") for p in problems]


def _reserved_outputs(project: Project) -> list[Diagnostic]:
    """[security.reserved]: no output is, contains or lies inside a reserved path."""
    assert project.pipeline is not None and project.document is not None
    extra = graph.reserved_of(project.pipeline, project.pipeline_file)
    out = []
    for stage in project.pipeline.stages.values():
        for o in stage.outputs:
            hit = reserved_conflict(o.path, extra)
            if hit is not None and hit in project.pipeline.vars:  # [template.vars-source]
                out.append(located(
                    project.document, "semantic", "vars_generated",
                    stage.source + (o.section, o.index),
                    f"output {o.path!r} of stage {stage.name!r} would write the vars file "
                    f"{hit!r}, but templating reads vars files before any stage runs",
                    hint="read the values a stage writes as params, not as vars",
                    anchor="template.vars-source"))
            elif hit is not None:
                out.append(located(
                    project.document, "semantic", "reserved_path",
                    stage.source + (o.section, o.index),
                    f"output {o.path!r} of stage {stage.name!r} would overwrite or remove "
                    f"{hit!r}, which is reserved", hint="write outputs to a folder of their "
                    "own; a reserved path may be a dep", anchor="security.reserved"))
    return out


def _wdir_checks(project: Project) -> list[Diagnostic]:
    """[security.symlinks]: a stage's working directory stays in the project."""
    assert project.pipeline is not None and project.document is not None
    out = []
    for stage in project.pipeline.stages.values():
        if stage.wdir != "." and not is_inside(project.root, project.root / stage.wdir):
            out.append(located(
                project.document, "semantic", "path_escapes", stage.source + ("wdir",),
                f"wdir {stage.wdir!r} of stage {stage.name!r} resolves outside the project "
                f"(to {os.path.realpath(project.root / stage.wdir)})",
                anchor="security.symlinks"))
    return out


def _all_paths(stage: Stage) -> Iterator[tuple[str, JsonPath]]:
    for d in stage.deps:
        yield d.path, stage.source + ("deps", d.index)
    for o in stage.outputs:
        yield o.path, stage.source + (o.section, o.index)
    for p in stage.params:
        if not p.from_template:
            yield p.file, stage.source + ("params", p.file)
    if stage.wdir != ".":
        yield stage.wdir, stage.source + ("wdir",)


def _duplicate_paths(pipeline: Pipeline, doc: Document) -> list[Diagnostic]:
    """[pipeline.duplicates]"""
    out = []
    for stage in pipeline.stages.values():
        for label, items in (("deps", [(d.path, ("deps", d.index)) for d in stage.deps]),
                             ("outputs", [(o.path, (o.section, o.index))
                                          for o in stage.outputs])):
            seen: set[str] = set()
            for p, where in items:
                if graph.bare(p) in seen:
                    out.append(located(doc, "semantic", "duplicate_path",
                                       stage.source + where,
                                       f"{p!r} is listed twice in the {label} of stage "
                                       f"{stage.name!r}", anchor="pipeline.duplicates"))
                seen.add(graph.bare(p))
        if len(set(stage.env)) != len(stage.env):  # a name in both forms: the schema can't see it
            twice = sorted({n for n in stage.env if stage.env.count(n) > 1})
            out.append(located(doc, "schema", "uniqueItems", stage.source + ("env",),
                               f"env name {twice[0]} is listed twice in stage {stage.name!r}",
                               anchor="pipeline.duplicates"))
    return out


def _path_text_checks(pipeline: Pipeline, doc: Document) -> list[Diagnostic]:
    """[paths.length], [paths.nfc], [paths.case]"""
    out = []
    by_fold: dict[str, str] = {}
    not_nfc: set[str] = set()
    collisions: set[tuple[str, str]] = set()
    passed: set[str] = set()  # a path named again adds nothing once it passed
    for stage in pipeline.stages.values():
        for p, where in _all_paths(stage):
            if p in passed:
                continue
            too_long = _too_long(p)
            if too_long:
                out.append(located(doc, "semantic", "path_unrepresentable", where,
                                   f"path {p[:60]!r}... {too_long}", anchor="paths.length"))
                continue
            if unicodedata.normalize("NFC", p) != p:
                if p not in not_nfc:
                    out.append(located(doc, "semantic", "path_not_nfc", where,
                                       f"path {p!r} is not in Unicode NFC",
                                       hint="retype the path, or normalize it to NFC",
                                       anchor="paths.nfc"))
                    not_nfc.add(p)
                continue
            clean = True
            for prefix in _prefixes(graph.bare(p)):
                other = by_fold.setdefault(prefix.casefold(), prefix)
                if other != prefix:
                    clean = False
                    if (other, prefix) not in collisions:
                        collisions.add((other, prefix))
                        out.append(located(doc, "semantic", "path_case_collision", where,
                                           f"{prefix!r} and {other!r} differ only by case",
                                           hint="use one spelling", anchor="paths.case"))
            if clean:
                passed.add(p)
    return out


def _too_long(path: str) -> str | None:
    """[paths.length]: what no common file system stores, else None."""
    size = len(path.encode("utf-8", "surrogatepass"))
    if size > MAX_PATH_BYTES:
        return f"is {size:,} bytes of UTF-8; a path has at most {MAX_PATH_BYTES:,}"
    longest = max(len(s.encode("utf-8", "surrogatepass")) for s in path.split("/"))
    if longest > MAX_NAME_BYTES:
        return f"has a name of {longest:,} bytes of UTF-8; a name has at most {MAX_NAME_BYTES}"
    return None


def _prefixes(path: str) -> Iterator[str]:
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        yield "/".join(parts[:i])


def _output_overlaps(pipeline: Pipeline, doc: Document) -> list[Diagnostic]:
    """[pipeline.one-producer]"""
    out = []
    owner: dict[str, str] = {}
    dirs: dict[str, str] = {}
    for stage in pipeline.stages.values():
        for o in stage.outputs:
            key = graph.bare(o.path)
            if key in owner and owner[key] != stage.name:
                out.append(located(doc, "semantic", "output_conflict",
                                   stage.source + (o.section, o.index),
                                   f"{o.path!r} is an output of both stage {owner[key]!r} "
                                   f"and stage {stage.name!r}", anchor="pipeline.one-producer"))
            owner.setdefault(key, stage.name)
            if o.is_dir:
                dirs.setdefault(key, stage.name)
    for stage in pipeline.stages.values():
        for o in stage.outputs:
            parts = graph.bare(o.path).split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d in dirs:
                    out.append(located(doc, "semantic", "output_nested",
                                       stage.source + (o.section, o.index),
                                       f"output {o.path!r} of stage {stage.name!r} lies inside "
                                       f"the directory output {d + '/'!r} of stage "
                                       f"{dirs[d]!r}", anchor="pipeline.one-producer"))
                    break
    return out


@dataclass(frozen=True, slots=True)
class _OnDisk:
    exists: bool  # the path, links followed, exists
    is_dir: bool
    real: str | None  # where it resolves, when that lies outside the project
    special: str | None = None  # "is a FIFO" and the like ([security.special-files])


class _Disk:
    """What the disk says of project paths, each asked once ([paths.symlinks])."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.real_root = os.path.realpath(root)
        self._dirs: dict[str, str] = {}  # parent folder -> its real path
        self._seen: dict[str, _OnDisk] = {}

    def _real_dir(self, folder: str) -> str:
        if folder not in self._dirs:
            self._dirs[folder] = os.path.realpath(os.path.join(self.root, folder))
        return self._dirs[folder]

    def inspect(self, path: str) -> _OnDisk:
        if path in self._seen:
            return self._seen[path]
        bare = graph.bare(path)
        folder, _, name = bare.rpartition("/")
        real_folder = self._real_dir(folder)
        try:
            st: os.stat_result | None = os.lstat(os.path.join(real_folder, name))
        except OSError:
            found = _OnDisk(False, False, None)
        else:  # one lstat for a path that is no link (issue 18: it was four stat calls)
            real = os.path.join(real_folder, name)
            if st is not None and stat.S_ISLNK(st.st_mode):
                real = os.path.realpath(real)
                try:
                    st = os.stat(real)
                except OSError:
                    st = None
            inside = real == self.real_root or real.startswith(self.real_root + os.sep)
            mode = 0 if st is None else st.st_mode
            special = None if st is None or stat.S_ISREG(mode) or stat.S_ISDIR(mode) \
                else kind_of(mode)
            found = _OnDisk(st is not None, stat.S_ISDIR(mode), None if inside else real,
                            special)
        self._seen[path] = found
        return found


def _disk_checks(project: Project) -> list[Diagnostic]:
    """[paths.directory], [paths.symlinks], [security.special-files] for the paths that are
    there; one that is not is no error ([pipeline.deps-exist])."""
    assert project.pipeline is not None and project.document is not None
    pipeline, doc = project.pipeline, project.document
    disk = _Disk(project.root)
    out = []
    for stage in pipeline.stages.values():
        checks = [(d.path, stage.source + ("deps", d.index), "dep") for d in stage.deps]
        checks += [(o.path, stage.source + (o.section, o.index), "output")
                   for o in stage.outputs]
        for p, where, role in checks:
            found = disk.inspect(p)
            if found.real is not None:
                out.append(located(doc, "semantic", "path_escapes", where,
                                   f"{p!r} resolves outside the project (to {found.real})",
                                   anchor="paths.symlinks"))
                continue
            if found.special is not None:
                out.append(located(doc, "io", "not_a_file", where,
                                   f"{role} {p!r} {found.special}, expected a regular file",
                                   anchor="security.special-files"))
                continue
            if found.exists and found.is_dir != p.endswith("/"):
                declared = "directory" if p.endswith("/") else "file"
                out.append(located(
                    doc, "semantic", "path_kind", where,
                    f"{role} {p!r} is declared as a {declared}"
                    f" but is a {'directory' if found.is_dir else 'file'}",
                    hint=f"write it as {graph.bare(p) + '/' if found.is_dir else graph.bare(p)!r}",
                    anchor="paths.directory"))
                continue
            # [pipeline.deps-exist] (1.1): a source dep that is not there is no error of the
            # project's files (a clone without its data); `plan` names it as dep_missing
    return out


def _params_checks(project: Project, report: Report) -> list[Diagnostic]:
    """[files.params-format], [params.missing]"""
    assert project.pipeline is not None and project.document is not None
    doc, out = project.document, []
    sub = Report()
    index = graph.output_index(project.pipeline)
    for stage in project.pipeline.stages.values():
        for ref in stage.params:
            if ref.from_template or index.producers(ref.file):
                continue  # [pipeline.params-edge]: checked when the stage is to run
            where = stage.source + ("params", ref.file)
            if not os.path.exists(project.root / ref.file):
                out.append(located(doc, "semantic", "params_file_missing", where,
                                   f"params file {ref.file!r} of stage {stage.name!r} does "
                                   "not exist", key=True, anchor="params.missing"))
                continue
            pdoc = _params_doc(project, ref.file, sub)
            if pdoc is None:
                continue
            for i, pointer in enumerate(ref.pointers):
                try:
                    resolve_pointer(pdoc.value, pointer)
                except KeyError as e:
                    out.append(located(doc, "semantic", "params_key_missing", where + (i,),
                                       f"params key {pointer!r} of stage {stage.name!r} is not "
                                       f"in {ref.file!r} (no {e.args[0]!r})",
                                       hint=_key_hint(pdoc.value, pointer),
                                       anchor="params.missing"))
    for f in sub.files:
        report.add_file(*f)
    seen = {(d.file, d.code, d.line, d.message) for d in out}
    out.extend(d for d in sub.diagnostics if (d.file, d.code, d.line, d.message) not in seen)
    return out


def _key_hint(document: Any, pointer: str) -> str | None:
    """Suggest a pointer for a dotted key written where a JSON Pointer is expected."""
    from .values import pointer_tokens
    tokens = pointer_tokens(pointer)
    if len(tokens) == 1 and "." in tokens[0]:
        candidate = pointer_for(*tokens[0].split("."))
        try:
            resolve_pointer(document, candidate)
            return f"keys are JSON Pointers: did you mean {candidate!r}?"
        except KeyError:
            return None
    return None


# ---------------------------------------------------------------------------------- the lock

def _too_many_entries(doc: Document, report: Report) -> bool:
    """[security.bounds]: a lock with more stage entries than a pipeline may have is refused
    before its entries are checked one by one."""
    stages = doc.value.get("stages") if isinstance(doc.value, dict) else None
    if not isinstance(stages, dict) or len(stages) <= MAX_STAGES:
        return False
    at = doc.text.find('"stages"')  # not doc.locate: indexing every position costs seconds
    line = doc.text.count("\n", 0, at) + 1 if at >= 0 else None
    column = at - doc.text.rfind("\n", 0, at) if at >= 0 else None
    report.diagnostics.append(diagnostic(
        "parse", "too_large", doc.file,
        f"lock has {len(stages):,} stage entries; a pipeline has at most {MAX_STAGES:,}",
        line=line, column=column, pointer="/stages", anchor="security.bounds"))
    return True


def validate_lock_file(path: Path, display: str, report: Report, *,
                       project: Project | None = None, cache: DocumentCache | None = None,
                       warnings: bool = True) -> Lock | None:
    """[lock.contents], [lock.read-canonical], [errors.warnings]"""
    report.add_file(display, "lock")
    doc = _parse_file(path, display, "json", report, limit=MAX_LOCK_FILE_BYTES, cache=cache)
    if doc is None or _too_many_entries(doc, report) or \
            not _versioned(doc, "lock", "lock file", report, cache):
        return None
    lock = build_lock(doc)
    if not warnings:
        return lock
    # [lock.read-canonical]: the bytes of the value as read, `x-` and `meta` keys kept
    if canonical_json(doc.value) != doc.text:
        report.diagnostics.append(diagnostic(
            "semantic", "lock_not_canonical", display,
            "lock file is not in canonical form; the next write will rewrite it",
            anchor="lock.canonical"))
    if project is not None and project.pipeline is not None:
        report.diagnostics.extend(_lock_against_pipeline(project, lock, doc))
    return lock


def _lock_against_pipeline(project: Project, lock: Lock, doc: Document) -> list[Diagnostic]:
    assert project.pipeline is not None
    out: list[Diagnostic] = []
    unknown = 0
    for name, entry in lock.stages.items():
        stage = project.pipeline.stages.get(name)
        if stage is None:
            unknown += 1
            if unknown > MAX_WARNINGS_PER_CODE:  # [security.bounds]: counted, not listed
                continue
            out.append(located(doc, "semantic", "lock_stage_unknown", ("stages", name),
                               f"lock has an entry for stage {name!r}, which is not in the "
                               "pipeline; the next run drops it", key=True,
                               anchor="lock.prune"))
            continue
        out.extend(_secrets_in_lock(doc, name, stage, entry))
        if stage.frozen:  # [stale.frozen-lock]: no run will correct its entry
            continue
        differs = list(_declaration_differences(project, stage, entry))
        if differs:
            out.append(located(doc, "semantic", "lock_out_of_date", ("stages", name),
                               f"lock entry of stage {name!r} differs from the pipeline: "
                               + "; ".join(differs), key=True, anchor="errors.warnings"))
    if unknown > MAX_WARNINGS_PER_CODE:
        out.append(diagnostic("semantic", "lock_stage_unknown", doc.file,
                              f"and {unknown - MAX_WARNINGS_PER_CODE:,} more entries for "
                              "stages not in the pipeline (not listed)",
                              anchor="security.bounds"))
    return out


def _secrets_in_lock(doc: Document, name: str, stage: Stage, entry: Any) -> list[Diagnostic]:
    """[security.secrets]: a lock entry holding the value of a variable the stage records by
    digest (written before it was so recorded) is a warning: the next lock written holds its
    digest instead, but the value is in the file's history already."""
    return [located(doc, "semantic", "secret_in_lock", ("stages", name, "env", var, "str"),
                    f"stage {name!r}: the lock holds the value of {var}, which is recorded by "
                    "its digest; the next `reftool run` writes the digest instead",
                    hint=f"the value is in this file's git history: rotate {var}; to record "
                    f"its value on purpose, write  env: [{{name: {var}, record: value}}]",
                    anchor="security.secrets")
            for var in sorted(stage.env_digest)
            if isinstance(entry.env.get(var), str)]


def declared_pointers(project: Project, stage: Stage) -> dict[str, set[str]]:
    """Each params file of a stage with the pointers it reads ([params.whole-file])."""
    found: dict[str, set[str]] = {}
    for ref in stage.params:
        pointers = found.setdefault(ref.file, set())
        if ref.whole:
            doc = project.params.get(ref.file)
            if doc is not None:
                pointers.update(pointer_for(k) for k in doc.value)
        else:
            pointers.update(ref.pointers)
    return found


def _declaration_differences(project: Project, stage: Stage, entry: Any) -> Iterable[str]:
    if tuple(entry.cmd) != stage.cmd:
        yield "cmd"
    if entry.wdir != stage.wdir:
        yield "wdir"
    if set(entry.deps) != {d.path for d in stage.deps}:
        yield "deps"
    declared = declared_pointers(project, stage)
    if {f: set(v) for f, v in entry.params.items()} != declared:
        yield "params"
    if set(entry.env) != set(stage.env):
        yield "env"
    outs = {o.path: (o.cache, o.persist) for o in stage.outputs}
    if {p: (o.cache, o.persist) for p, o in entry.outs.items()} != outs:
        yield "outs"


# ---------------------------------------------------------------------------------- by path

def detect_kind(path: Path) -> FileKind:
    """[tool.validate]: the kind of a file named on the command line."""
    name = path.name
    if name.endswith(".lock"):
        return "lock"
    if name.endswith(".jsonl"):
        return "series"
    if name.endswith(("pipeline.yaml", "pipeline.yml")):  # train-pipeline.yaml too
        return "pipeline"
    if path.parent.name == "experiments" and name.endswith(".json"):
        return "experiment"
    if path.parent.name == "queue" and path.parent.parent.name == ".reftool" and \
            name.endswith(".json"):
        return "queue-entry"  # [experiments.queue]
    fmt = _format_of(name)
    if fmt is not None:
        try:
            doc = load(path, display=name, fmt=fmt, limit=MAX_TEXT_FILE_BYTES)
        except SpecError:
            return "params"
        if isinstance(doc.value, dict):
            if "stages" in doc.value or _misspelt_pipeline(doc.value):
                return "pipeline"
            if "version" in doc.value and "metrics" in doc.value and fmt == "json":
                return "metrics"
    return "params"


def _misspelt_pipeline(value: dict[str, Any]) -> bool:
    """[tool.validate]: `version` beside a misspelling of `stages` (`stagse:`) is a pipeline
    file with a typo, not a valid params file."""
    return "version" in value and any(
        did_you_mean(key, ["stages"]) == "stages" for key in value if isinstance(key, str))


def validate_paths(paths: Iterable[Path]) -> Report:
    report = Report()
    for path in paths:
        display = str(path)
        if not path.exists():
            report.diagnostics.append(diagnostic("io", "file_not_found", display,
                                                 "file not found"))
            continue
        if path.is_dir():
            report.diagnostics.append(diagnostic("io", "not_a_file", display,
                                                 "is a directory; name a file"))
            continue
        kind = detect_kind(path)
        if kind == "pipeline":
            validate_pipeline(path.parent, path.name, report, with_lock=False,
                              with_metrics=False)
        elif kind == "lock":
            validate_lock_file(path, display, report)
        elif kind == "series":
            validate_series_file(path, display, report)
        elif kind == "metrics":
            validate_metrics_file(path, display, report)
        elif kind == "experiment":
            validate_experiment_file(path, display, report)
        elif kind == "queue-entry":
            validate_queue_entry_file(path, display, report)
        else:
            validate_params_file(path, display, report)
    return report


def validate_project(root: Path, pipeline_file: str) -> Report:
    report = Report()
    if not (root / pipeline_file).exists():
        report.diagnostics.append(diagnostic(
            "io", "file_not_found", _display(root, pipeline_file),
            "no pipeline file here", hint="run in a project's root, or name files to check"))
        return report
    validate_pipeline(root, pipeline_file, report)
    report.diagnostics.sort(key=Diagnostic.sort_key)
    return report
