"""Reading files into values with positions: SPEC section 3 and [values.yaml-core].

A `Document` holds the parsed value (None, bool, int, float, str, list, dict with str keys) and
an index from JSON paths to 1-based (line, column) positions. YAML is read from parser events,
never through a constructor, so that aliases, nesting depth, tags, duplicate and merge keys are
all under this module's control and bounded ([read.aliases], [read.depth]).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import Diagnostic, SpecError, diagnostic
from .safe_io import NotRegularFile, open_regular, write_atomic
from .spec import MAX_ALIAS_NODES, MAX_DEPTH, MAX_INT_DIGITS

JsonPath = tuple[str | int, ...]
Loc = tuple[int, int]
Format = Literal["yaml", "json", "toml"]


def pointer_of(path: JsonPath) -> str:
    """The JSON Pointer (RFC 6901) text of a path."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


@dataclass(slots=True)
class Positions:
    """Positions of values and of mapping keys, by JSON path."""

    values: dict[JsonPath, Loc] = field(default_factory=dict)
    keys: dict[JsonPath, Loc] = field(default_factory=dict)

    def locate(self, path: JsonPath, *, key: bool = False) -> Loc | None:
        """The position of `path` (its key when `key`), else of its nearest located ancestor."""
        if key and path in self.keys:
            return self.keys[path]
        while True:
            if path in self.values:
                return self.values[path]
            if not path:
                return None
            path = path[:-1]


@dataclass(slots=True)
class Document:
    file: str
    format: Format
    value: Any
    text: str
    _positions: Positions | None = None
    digest: str = ""  # sha256 of the file's bytes, when read from a file

    @property
    def positions(self) -> Positions:
        if self._positions is None:  # found only when an error needs one
            if self.format == "json":
                self._positions = _json_positions(self.text)[0]
            elif self.format == "yaml":  # a value taken from the document cache
                self._positions = _YamlBuilder(self.file).build(self.text)[1]
            else:
                self._positions = Positions()
        return self._positions

    def locate(self, path: JsonPath, *, key: bool = False) -> Loc | None:
        return self.positions.locate(path, key=key)


# ---------------------------------------------------------------------------------- raw bytes

def read_bytes(path: str | os.PathLike[str], *, display: str, limit: int) -> bytes:
    """The bytes of a file, refusing files over `limit` before reading them ([read.size])."""
    try:  # [security.special-files]: a FIFO or device is refused before it is opened
        with open_regular(path, display) as f:
            st = os.fstat(f.fileno())
            if st.st_size > limit:
                raise SpecError([diagnostic(
                    "parse", "too_large", display,
                    f"file is {st.st_size:,} bytes; the limit is {limit:,} bytes",
                    anchor="read.size")])
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise SpecError([diagnostic("io", "file_not_found", display, "file not found")]) from None
    except IsADirectoryError:
        raise SpecError([diagnostic("io", "not_a_file", display,
                                    "is a directory, expected a file")]) from None
    except NotRegularFile as e:
        raise SpecError([diagnostic("io", "not_a_file", display, str(e).split(": ", 1)[-1],
                                    anchor="security.special-files")]) from None
    except OSError as e:
        raise SpecError([diagnostic("io", "read_error", display,
                                    f"cannot read: {e.strerror}")]) from None
    if len(data) > limit:  # grew while being read
        raise SpecError([diagnostic("parse", "too_large", display,
                                    f"file is over the limit of {limit:,} bytes",
                                    anchor="read.size")])
    return data


def decode(data: bytes, *, display: str) -> str:
    """UTF-8 text without a byte-order mark ([read.encoding])."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise SpecError([diagnostic(
            "parse", "bom", display, "file starts with a byte-order mark (BOM)",
            line=1, column=1, expected="UTF-8 without a BOM",
            hint="save the file as UTF-8 without BOM", anchor="read.encoding")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        line_start = data.rfind(b"\n", 0, e.start) + 1
        column = len(data[line_start:e.start].decode("utf-8", "replace")) + 1
        raise SpecError([diagnostic(
            "parse", "invalid_utf8", display,
            f"invalid UTF-8: byte 0x{data[e.start]:02x} at offset {e.start}",
            line=line, column=column, expected="UTF-8 text", anchor="read.encoding")]) from None


def plain_metrics_format(path: str) -> Format | None:
    """[metrics.plain]: a plain metrics file is JSON or YAML by its extension."""
    lower = path.lower()
    return "json" if lower.endswith(".json") else \
        "yaml" if lower.endswith((".yaml", ".yml")) else None


def load(path: str | os.PathLike[str], *, display: str, fmt: Format, limit: int,
         cache: DocumentCache | None = None, nonfinite: bool = False) -> Document:
    """Read, decode and parse one file. Raises SpecError with every problem found.

    With a `cache`, a file whose bytes were parsed before is not parsed again.
    """
    data = read_bytes(path, display=display, limit=limit)
    text = decode(data, display=display)
    digest = hashlib.sha256(data).hexdigest()
    if nonfinite:
        cache = None  # a value read under another rule than the format's own
    if cache is not None:
        found = cache.value(digest, fmt)
        if found is not _NOT_CACHED:
            return Document(display, fmt, found, text, None, digest)
    doc = parse(text, display=display, fmt=fmt, nonfinite=nonfinite)
    doc.digest = digest
    if cache is not None:
        cache.remember(digest, fmt, doc.value, display)
    return doc


_NOT_CACHED: Any = object()


class DocumentCache:
    """Parsed values and schema verdicts of files, by the SHA-256 of their bytes.

    Kept in `.reftool/documents.json`; only an optimization (it saves `plan` the YAML parse
    and the schema validation of files that did not change). A corrupt or foreign cache, or
    one written by another version of the tool or of the schemas, is discarded.

    Each entry names the file it was read from, and holds only that file's latest bytes: an
    older version of a file (last run's lock) is dropped when a newer one is remembered. At
    most KEEP entries are kept, the least recently used going first; a hit counts as a use.
    """

    FORMAT = "reftool-document-cache"
    KEEP = 16

    def __init__(self, path: Path | None, stamp: str) -> None:
        self.path = path
        self.root: Path | None = None
        self.stamp = stamp
        self.entries: dict[str, dict[str, Any]] = {}  # least recently used first
        self.dirty = False
        self._order: list[str] = []  # the entries' order as read

    @classmethod
    def open(cls, root: Path, stamp: str) -> DocumentCache:
        cache = cls(root / ".reftool" / "documents.json", stamp)
        cache.root = root
        try:
            with open_regular(cache.path) as f:  # type: ignore[arg-type]
                data = json.loads(f.read())
            if isinstance(data, dict) and data.get("format") == cls.FORMAT and \
                    data.get("stamp") == stamp and isinstance(data.get("entries"), dict):
                cache.entries = {k: v for k, v in data["entries"].items()
                                 if isinstance(v, dict) and "value" in v and "format" in v
                                 and isinstance(v.get("valid"), list)}
                cache._order = list(cache.entries)
        except (OSError, ValueError, RecursionError):
            pass
        return cache

    def _use(self, digest: str) -> dict[str, Any] | None:
        """The entry of `digest`, made the most recently used."""
        entry = self.entries.pop(digest, None)
        if entry is not None:
            self.entries[digest] = entry
        return entry

    def value(self, digest: str, fmt: str) -> Any:
        entry = self._use(digest)
        if entry is None or entry["format"] != fmt:
            return _NOT_CACHED
        return entry["value"]

    def remember(self, digest: str, fmt: str, value: Any, file: str | None = None) -> None:
        """A parsed value; the older versions of the same `file` are forgotten."""
        if file is not None:
            self._forget_others(digest, file)
        self.entries.pop(digest, None)
        self.entries[digest] = {"format": fmt, "value": value, "valid": [], "file": file}
        self.dirty = True

    def remember_written(self, data: bytes, fmt: Format, schema: str, file: str) -> None:
        """A file this tool has just written from values it had validated, such as the lock
        a run ends with: its parse and its schema verdict, so that the next command does not
        read it again ([lock.canonical] output of an in-memory lock)."""
        digest = hashlib.sha256(data).hexdigest()
        try:
            value = parse(decode(data, display=file), display=file, fmt=fmt).value
        except SpecError:  # never expected; then the next command reads and reports it
            return
        self.remember(digest, fmt, value, file)
        self.mark_valid(digest, schema)

    def _forget_others(self, digest: str, file: str) -> None:
        for other in [k for k, v in self.entries.items() if v.get("file") == file
                      and k != digest]:
            del self.entries[other]
            self.dirty = True

    def is_valid(self, digest: str, schema: str) -> bool:
        entry = self.entries.get(digest)
        return entry is not None and schema in entry["valid"]

    def mark_valid(self, digest: str, schema: str) -> None:
        entry = self.entries.get(digest)
        if entry is not None and schema not in entry["valid"]:
            entry["valid"].append(schema)
            self.dirty = True

    def save(self) -> None:
        """Write the KEEP most recently used entries atomically, when anything changed (the
        order of use included); failures are ignored."""
        if self.path is None or not (self.dirty or list(self.entries) != self._order):
            return
        entries = dict(list(self.entries.items())[-self.KEEP:])
        data = {"format": self.FORMAT, "stamp": self.stamp, "entries": entries}
        try:  # [security.symlinks]: never through a link in `.reftool/`
            write_atomic(self.path, json.dumps(data, separators=(",", ":")).encode("utf-8"),
                         base=self.root or self.path.parent)
        except (OSError, ValueError):
            pass
        self.dirty = False
        self._order = list(self.entries)


def parse(text: str, *, display: str, fmt: Format, nonfinite: bool = False) -> Document:
    """`nonfinite`: the JSON tokens NaN, Infinity and -Infinity (Python's `json.dump` writes
    them) read as floats: for plain metrics files alone ([metrics.plain])."""
    if fmt == "yaml":
        value, positions = _YamlBuilder(display).build(text)
        return Document(display, "yaml", value, text, positions)
    if fmt == "json":
        return Document(display, "json", _parse_json(text, display, nonfinite), text)
    return Document(display, "toml", _parse_toml(text, display), text)


# ---------------------------------------------------------------------------------- YAML

# SPEC [values.yaml-core]: the core schema's resolution of plain scalars.
_NULL = re.compile(r"null|Null|NULL|~|")
_BOOL = re.compile(r"true|True|TRUE|false|False|FALSE")
_INT10 = re.compile(r"[-+]?[0-9]+")
_INT8 = re.compile(r"0o[0-7]+")
_INT16 = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?(\.inf|\.Inf|\.INF)")
_NAN = re.compile(r"\.nan|\.NaN|\.NAN")

_TAG = "tag:yaml.org,2002:"
# a %YAML directive: only in the prologue, where only comments, blank lines and other
# directives may come before it
_YAML_DIRECTIVE = re.compile(r"(?:(?:[ \t]*(?:#[^\n]*)?|%[^\n]*)\n)*%YAML[ \t]+([^\s#]+)")
_YAML11_BREAKS = re.compile("[\u0085\u2028\u2029]")


def _loc_of(text: str, index: int) -> Loc:
    return text.count("\n", 0, index) + 1, index - text.rfind("\n", 0, index)


def resolve_plain(text: str) -> Any:
    """The value of a plain YAML scalar under the YAML 1.2 core schema ([values.yaml-core])."""
    if _NULL.fullmatch(text):
        return None
    if _BOOL.fullmatch(text):
        return text[0] in "tT"
    if _INT10.fullmatch(text):
        return _int(text.lstrip("+-"), 10, negative=text.startswith("-"))
    if _INT8.fullmatch(text):
        return _int(text[2:], 8)
    if _INT16.fullmatch(text):
        return _int(text[2:], 16)
    if _FLOAT.fullmatch(text):
        return float(text)  # [values.float-parse]: Python's float() rounds correctly
    if _INF.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN.fullmatch(text):
        return math.nan
    return text


class IntTooLong(ValueError):
    pass


def _int(digits: str, base: int, *, negative: bool = False) -> int:
    """[values.int]: an integer of at most MAX_INT_DIGITS digits, exactly."""
    if len(digits.lstrip("0")) > MAX_INT_DIGITS:
        raise IntTooLong(f"an integer of {len(digits):,} digits; the limit is {MAX_INT_DIGITS:,}")
    value = int(digits.lstrip("0") or "0", base)
    return -value if negative else value


def _resolve_tagged(tag: str, text: str) -> Any:
    """A scalar with an explicit core-schema tag ([read.tags]); raises ValueError if malformed."""
    kind = tag[len(_TAG):]
    if kind == "str":
        return text
    value = resolve_plain(text)
    expected = {"int": int, "float": float, "bool": bool, "null": type(None)}[kind]
    if kind == "float" and type(value) is int and _FLOAT.fullmatch(text):
        return float(value)
    if type(value) is not expected:
        raise ValueError(kind)
    return value


@dataclass(slots=True)
class _Frame:
    container: dict[str, Any] | list[Any]
    path: JsonPath
    anchor: str | None
    start_count: int
    key: str | None = None  # mapping frames: the key awaiting its value
    key_loc: Loc | None = None
    skip_value: bool = False  # the value of a duplicate or merge key: parsed, then dropped


class _YamlBuilder:
    """Builds values from parser events with explicit stacks: no recursion, bounded work."""

    def __init__(self, display: str) -> None:
        self.display = display
        self.positions = Positions()
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.nodes = 0  # values built so far, aliases expanded
        self.added = 0  # values that aliases added beyond those written
        self.problems: list[Diagnostic] = []

    def fail(self, code: str, message: str, loc: Loc | None, path: JsonPath = (),
             **kw: Any) -> SpecError:
        line, column = loc if loc else (None, None)
        return SpecError(self.problems + [diagnostic(
            "parse", code, self.display, message, line=line, column=column,
            pointer=pointer_of(path), **kw)])

    def build(self, text: str) -> tuple[Any, Positions]:
        self._prescan(text)
        from ruamel.yaml.error import YAMLError  # the YAML library: a missing one is no verdict

        try:
            root = self._consume(_events(text))
        except YAMLError as e:  # only the parser's own errors are syntax errors ([read.yaml])
            raise self._syntax_error(e, text) from None
        if self.problems:
            raise SpecError(self.problems)
        return root, self.positions

    def _no_document(self) -> SpecError:
        """[read.yaml]: a stream with no document (empty, or comments only) holds no value."""
        return self.fail("syntax", "the file holds no YAML document", (1, 1),
                         expected="exactly one document", anchor="read.yaml")

    def _prescan(self, text: str) -> None:
        """[read.yaml]: checks the C parser (YAML 1.1 rules) would get wrong."""
        m = _YAML_DIRECTIVE.match(text)
        if m and m.group(1) != "1.2":
            raise self.fail("yaml_version", f"%YAML {m.group(1)} directive; only YAML 1.2 is "
                            "read", _loc_of(text, text.rfind("%YAML", 0, m.start(1))),
                            anchor="read.yaml")
        m = _YAML11_BREAKS.search(text)
        if m:
            raise self.fail("syntax", f"character U+{ord(m.group()):04X}, a line break in YAML "
                            "1.1 but not in 1.2; write it as an escape in a double-quoted string",
                            _loc_of(text, m.start()), anchor="read.yaml")

    def _syntax_error(self, e: Exception, text: str) -> SpecError:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        loc = (mark.line + 1, mark.column + 1) if mark is not None else None
        hint = None
        if mark is not None:
            lines = text.split("\n")
            row = lines[mark.line] if mark.line < len(lines) else ""
            if "\t" in row[: mark.column + 1]:
                problem = "a tab character where YAML allows only spaces for indentation"
                hint = "indent with spaces"
        context = getattr(e, "context", None)
        message = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
        return self.fail("syntax", message, loc, expected="valid YAML 1.2", hint=hint,
                         anchor="read.yaml")

    def _count(self, n: int, loc: Loc, *, by_alias: bool = False) -> None:
        self.nodes += n
        self.added += n if by_alias else 0
        if self.added > MAX_ALIAS_NODES:
            raise self.fail("alias_limit",
                            f"aliases expand the document by more than {MAX_ALIAS_NODES:,} "
                            "values", loc, anchor="read.aliases")

    def _consume(self, events: Iterator[Any]) -> Any:
        stack: list[_Frame] = []
        root: Any = None
        documents = 0
        for ev in events:
            name = type(ev).__name__
            loc = (ev.start_mark.line + 1, ev.start_mark.column + 1)
            if name == "DocumentStartEvent":
                documents += 1
                if documents > 1:
                    raise self.fail("syntax", "more than one YAML document in the file", loc,
                                    expected="exactly one document", anchor="read.yaml")
                version = getattr(ev, "version", None)
                if version is not None and tuple(version) != (1, 2):
                    raise self.fail("yaml_version",
                                    f"%YAML {version[0]}.{version[1]} directive; "
                                    "only YAML 1.2 is read", loc, anchor="read.yaml")
                continue
            if name == "StreamEndEvent" and documents == 0:
                raise self._no_document()
            if name in ("StreamStartEvent", "StreamEndEvent", "DocumentEndEvent"):
                continue
            if name in ("MappingEndEvent", "SequenceEndEvent"):
                frame = stack.pop()
                if frame.anchor is not None:
                    self.anchors[frame.anchor] = (frame.container,
                                                  self.nodes - frame.start_count + 1)
                if not stack:
                    root = frame.container
                continue
            parent = stack[-1] if stack else None
            if parent is not None and isinstance(parent.container, dict) and parent.key is None:
                self._take_key(parent, ev, name, loc)
                continue
            path = self._child_path(parent)
            self._count(1, loc)
            if name == "ScalarEvent":
                value = self._scalar(ev, loc, path)
                if ev.anchor is not None:
                    self.anchors[ev.anchor] = (value, 1)
            elif name == "AliasEvent":
                if ev.anchor not in self.anchors:
                    raise self.fail("syntax", f"alias *{ev.anchor} names no anchor", loc)
                value, size = self.anchors[ev.anchor]
                self._count(size - 1, loc, by_alias=True)
            else:  # MappingStartEvent / SequenceStartEvent
                self._check_collection_tag(ev, name, loc, path)
                if len(stack) >= MAX_DEPTH:
                    raise self.fail("depth_limit",
                                    f"nesting deeper than {MAX_DEPTH} levels", loc, path,
                                    anchor="read.depth")
                container: dict[str, Any] | list[Any] = (
                    {} if name == "MappingStartEvent" else [])
                self._attach(parent, container, path, loc)
                stack.append(_Frame(container, path, ev.anchor, self.nodes))
                continue
            self._attach(parent, value, path, loc)
            if parent is None:
                root = value
        return root

    def _child_path(self, parent: _Frame | None) -> JsonPath:
        if parent is None:
            return ()
        if isinstance(parent.container, dict):
            assert parent.key is not None
            return parent.path + (parent.key,)
        return parent.path + (len(parent.container),)

    def _attach(self, parent: _Frame | None, value: Any, path: JsonPath, loc: Loc) -> None:
        self.positions.values[path] = loc
        if parent is None:
            return
        if isinstance(parent.container, list):
            parent.container.append(value)
            return
        assert parent.key is not None
        if not parent.skip_value:
            parent.container[parent.key] = value
            if parent.key_loc is not None:
                self.positions.keys[path] = parent.key_loc
        parent.key, parent.key_loc, parent.skip_value = None, None, False

    def _take_key(self, frame: _Frame, ev: Any, name: str, loc: Loc) -> None:
        if name == "ScalarEvent":
            if ev.tag is not None and not ev.tag.startswith(_TAG):
                raise self.fail("unsupported_tag", f"unsupported tag {ev.tag} on a key", loc,
                                frame.path, anchor="read.tags")
            if ev.tag not in (None, _TAG + "str"):  # [read.keys]: !!int 1: is not a string key
                raise self.fail("complex_key", f"mapping key with tag {ev.tag}; keys are strings",
                                loc, frame.path, anchor="read.keys")
            key = ev.value
            if ev.anchor is not None:
                self.anchors[ev.anchor] = (key, 1)
            if key == "<<" and ev.style in ("", None) and ev.tag is None:
                self.problems.append(diagnostic(
                    "parse", "merge_key", self.display,
                    "merge key '<<' is YAML 1.1, not YAML 1.2", line=loc[0], column=loc[1],
                    pointer=pointer_of(frame.path), hint="write the keys out in full",
                    anchor="read.aliases"))
                frame.skip_value = True
        elif name == "AliasEvent" and isinstance(self.anchors.get(ev.anchor, (None,))[0], str):
            key = self.anchors[ev.anchor][0]
        else:
            raise self.fail("complex_key", "a mapping key must be a string, not a "
                            "mapping, sequence or alias of one", loc, frame.path,
                            anchor="read.keys")
        assert isinstance(frame.container, dict)
        if key in frame.container and not frame.skip_value:
            first = self.positions.keys.get(frame.path + (key,))
            where = f" (first at line {first[0]})" if first else ""
            self.problems.append(diagnostic(
                "parse", "duplicate_key", self.display, f"duplicate key {key!r}{where}",
                line=loc[0], column=loc[1], pointer=pointer_of(frame.path + (key,)),
                hint="remove one of the two", anchor="read.duplicate-keys"))
            frame.skip_value = True
        frame.key, frame.key_loc = key, loc

    def _check_collection_tag(self, ev: Any, name: str, loc: Loc, path: JsonPath) -> None:
        allowed = _TAG + ("map" if name == "MappingStartEvent" else "seq")
        if ev.tag not in (None, allowed):  # [read.tags]: the bare `!` is no core tag
            raise self.fail("unsupported_tag", f"unsupported tag {ev.tag}", loc, path,
                            expected="no tag, or a YAML 1.2 core schema tag",
                            anchor="read.tags")

    def _scalar(self, ev: Any, loc: Loc, path: JsonPath) -> Any:
        try:
            return self._scalar_value(ev, loc, path)
        except IntTooLong as e:
            raise self.fail("invalid_scalar", str(e), loc, path, anchor="values.int") from None

    def _scalar_value(self, ev: Any, loc: Loc, path: JsonPath) -> Any:
        tag = ev.tag
        if tag is None:
            return resolve_plain(ev.value) if ev.style in ("", None) else ev.value
        if not tag.startswith(_TAG) or tag[len(_TAG):] not in (
                "str", "int", "float", "bool", "null"):
            raise self.fail("unsupported_tag", f"unsupported tag {tag}", loc, path,
                            expected="!!str, !!int, !!float, !!bool or !!null",
                            anchor="read.tags")
        try:
            return _resolve_tagged(tag, ev.value)
        except IntTooLong:
            raise
        except ValueError:
            raise self.fail("invalid_scalar",
                            f"{ev.value!r} is not a valid !!{tag[len(_TAG):]}", loc, path,
                            anchor="read.tags") from None


def _events(text: str) -> Iterator[Any]:
    try:
        from ruamel.yaml.cyaml import CParser  # type: ignore[attr-defined]  # C, from clib
    except ImportError:  # pragma: no cover - pure-Python fallback
        import io

        from ruamel.yaml import YAML
        yield from YAML(typ="safe", pure=True).parse(io.StringIO(text))
        return
    parser = CParser(text)
    try:
        while parser.check_event():
            yield parser.get_event()
    finally:
        parser.dispose()


# ---------------------------------------------------------------------------------- TOML

_TOML_AT = re.compile(r"\(at line (\d+), column (\d+)\)")


def _parse_toml(text: str, display: str) -> Any:
    import tomllib  # here: `plan` on a project without TOML files never needs it (issue 18)
    try:
        value = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = _TOML_AT.search(str(e))
        line, column = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        message = _TOML_AT.sub("", str(e)).strip()
        code = "duplicate_key" if any(w in message.lower() for w in (
            "overwrite", "defined", "duplicate", "twice")) else "syntax"
        raise SpecError([diagnostic("parse", code, display, f"TOML error: {message}",
                                    line=line, column=column, expected="valid TOML 1.0",
                                    anchor="read.toml")]) from None
    except RecursionError:
        raise _too_deep(display) from None
    except ValueError as e:  # an integer beyond CPython's conversion limit
        raise SpecError([diagnostic("parse", "invalid_scalar", display, f"TOML error: {e}",
                                    expected=f"integers of at most {MAX_INT_DIGITS:,} digits",
                                    anchor="values.int")]) from None
    _check_depth(value, display)
    return _toml_times_as_text(value, text, display)


def _toml_times_as_text(value: Any, text: str, display: str) -> Any:
    """[read.toml]: date-times as the canonical form of their text (toml_datetime_text)."""
    if not _has_time(value):
        return value
    import secrets
    import tomllib
    marker = f"\x00reftool-time-{secrets.token_hex(8)}-"
    marked, texts = _toml_marked(text, marker)
    try:
        again = _toml_with_texts(tomllib.loads(marked), texts)
    except (tomllib.TOMLDecodeError, RecursionError, ValueError):
        again = None
    if again is None or _has_time(again) or _count_times(value) != len(texts):
        raise SpecError([diagnostic("parse", "syntax", display,
                                    "a TOML date-time could not be read as written",
                                    expected="valid TOML 1.0", anchor="read.toml")])
    return again


def _has_time(value: Any) -> bool:
    return _count_times(value) > 0


def _count_times(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_count_times(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_times(v) for v in value)
    import datetime
    return 1 if isinstance(value, (datetime.date, datetime.time)) else 0


# [read.toml]: a date-time is read as the text written, in one canonical form. Python's parser
# normalizes it (`.12` to `.120000`, nanoseconds cut), so the text is taken from the source: the
# date-time tokens in value positions become marker strings before a second parse.
_TOML_TIME = r"[0-9]{2}:[0-9]{2}:[0-9]{2}"
_TOML_DATETIME = re.compile(
    rf"(?P<date>[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}})(?:[Tt ](?P<time>{_TOML_TIME})"
    rf"(?:\.(?P<frac>[0-9]+))?(?P<off>[Zz]|[+-][0-9]{{2}}:[0-9]{{2}})?)?"
    rf"|(?P<ltime>{_TOML_TIME})(?:\.(?P<lfrac>[0-9]+))?")
_TOML_STRING = re.compile(r'"""(?:[^\\]|\\.)*?"""|\'\'\'.*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'',
                          re.S)
_TOML_BARE = re.compile(r"[A-Za-z0-9_+\-.:]+")


def toml_datetime_text(m: re.Match[str]) -> str:
    """[read.toml]: `T` between date and time; the fraction as written without trailing zeros
    (and without the dot when nothing is left); `Z` for `Z`, `z` and `+00:00`; any other offset
    as written (`-00:00` included)."""
    if m.group("ltime"):
        frac = (m.group("lfrac") or "").rstrip("0")
        return m.group("ltime") + ("." + frac if frac else "")
    text = m.group("date")
    if m.group("time"):
        frac = (m.group("frac") or "").rstrip("0")
        text += "T" + m.group("time") + ("." + frac if frac else "")
        off = m.group("off")
        if off:
            text += "Z" if off in ("Z", "z", "+00:00") else off
    return text


def _toml_marked(text: str, marker: str) -> tuple[str, dict[str, str]]:
    """The TOML text with each date-time value replaced by a marker string, and the markers'
    texts. Keys, table headers, strings and comments are left alone."""
    out: list[str] = []
    found: dict[str, str] = {}
    stack: list[str] = []  # brackets open inside a value: "[" array, "{" inline table
    expect_value, header, i = False, False, 0
    while i < len(text):
        c = text[i]
        if c == "#":
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            out.append(text[i:end])
            i = end
            continue
        m = _TOML_STRING.match(text, i) if c in "\"'" else None
        if m is not None:
            out.append(m.group())
            i, expect_value = m.end(), False
            continue
        if expect_value and not header and (m := _TOML_DATETIME.match(text, i)):
            key = f"{marker}{len(found)}"
            found[key] = toml_datetime_text(m)
            out.append(json.dumps(key))
            i, expect_value = m.end(), False
            continue
        expect_value, header = _toml_step(c, stack, expect_value, header)
        m = _TOML_BARE.match(text, i) if c not in "=[]{},\n" else None
        step = m.end() - i if m else 1
        out.append(text[i:i + step])
        i += step
    return "".join(out), found


def _toml_step(c: str, stack: list[str], expect_value: bool, header: bool) -> tuple[bool, bool]:
    """How one significant character changes where values are expected."""
    if c == "=":
        return True, header
    if c == "[":
        if expect_value or (stack and stack[-1] == "["):
            stack.append("[")
            return True, header
        return False, True  # a [table] or [[array]] header
    if c == "{":
        stack.append("{")
        return False, header
    if c in "]}":
        if stack:
            stack.pop()
        return False, header
    if c == ",":
        return bool(stack) and stack[-1] == "[", header
    if c == "\n":  # ends a header; a value may follow on the next line only inside an array
        return expect_value and bool(stack), False
    if c in " \t\r":
        return expect_value, header
    return False, header


def _toml_with_texts(value: Any, texts: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _toml_with_texts(v, texts) for k, v in value.items()}
    if isinstance(value, list):
        return [_toml_with_texts(v, texts) for v in value]
    if isinstance(value, str) and value in texts:
        return texts[value]
    return value


# ---------------------------------------------------------------------------------- JSON

class _DuplicateKey(Exception):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_int(text: str) -> int:
    return _int(text.lstrip("-"), 10, negative=text.startswith("-"))


def _parse_json(text: str, display: str, nonfinite: bool = False) -> Any:
    try:
        value = json.loads(text, object_pairs_hook=_pairs,
                           parse_constant=float if nonfinite else _no_constant,
                           parse_int=_json_int)
    except json.JSONDecodeError as e:
        raise SpecError([diagnostic("parse", "syntax", display, f"JSON syntax error: {e.msg}",
                                    line=e.lineno, column=e.colno, expected="valid JSON",
                                    anchor="read.json")]) from None
    except _DuplicateKey as e:
        dups = _json_positions(text)[1]
        raise SpecError([
            diagnostic("parse", "duplicate_key", display, f"duplicate key {k!r}",
                       line=loc[0], column=loc[1], pointer=pointer_of(p),
                       hint="remove one of the two", anchor="read.duplicate-keys")
            for p, k, loc in dups] or [
            diagnostic("parse", "duplicate_key", display, f"duplicate key {e.args[0]!r}",
                       anchor="read.duplicate-keys")]) from None
    except IntTooLong as e:
        raise SpecError([diagnostic("parse", "invalid_scalar", display, str(e),
                                    anchor="values.int")]) from None
    except ValueError as e:  # NaN / Infinity, which json.loads would otherwise accept
        name = str(e).split()[0]
        index = next((m.start() for m in _JSON_TOKEN.finditer(text)
                      if m.lastgroup == "atom" and m.group().lstrip("-") == name.lstrip("-")),
                     0)
        line, column = _loc_of(text, index)
        raise SpecError([diagnostic("parse", "syntax", display,
                                    f"JSON syntax error: {name} is not valid JSON",
                                    line=line, column=column, expected="a JSON number",
                                    anchor="read.json")]) from None
    except RecursionError:
        raise _too_deep(display) from None
    _check_depth(value, display)
    if _SURROGATE_ESCAPE.search(text):
        _check_scalar_values(value, display, text)
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


_ESCAPED_PAIR = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def _lone_surrogate_at(text: str) -> int:
    """Index of the first surrogate escape that is not half of a valid pair."""
    i = 0
    while (m := _SURROGATE_ESCAPE.search(text, i)) is not None:
        pair = _ESCAPED_PAIR.match(text, m.start())
        if pair is None:
            return m.start()
        i = pair.end()
    return 0


def _check_scalar_values(value: Any, display: str, text: str) -> None:
    """SPEC section 4: a str is a sequence of Unicode scalar values; a lone surrogate is not."""
    stack = [value]
    while stack:
        v = stack.pop()
        items = list(v.items()) if isinstance(v, dict) else (
            [(None, x) for x in v] if isinstance(v, list) else [(None, v)])
        for k, x in items:
            for s in (k, x):
                if isinstance(s, str):
                    try:
                        s.encode("utf-8")
                    except UnicodeEncodeError:
                        line, column = _loc_of(text, _lone_surrogate_at(text))
                        raise SpecError([diagnostic(
                            "parse", "syntax", display,
                            "JSON string holds a lone surrogate escape, which is no character",
                            line=line, column=column, expected="Unicode scalar values",
                            anchor="read.json")]) from None
            if isinstance(x, (dict, list)):
                stack.append(x)


def _too_deep(display: str) -> SpecError:
    """[read.depth]"""
    return SpecError([diagnostic("parse", "depth_limit", display,
                                 f"nesting deeper than {MAX_DEPTH} levels", anchor="read.depth")])


def _check_depth(value: Any, display: str) -> None:
    """[read.depth]: no mapping or list nested MAX_DEPTH deep. Level by level, holding
    only the containers of each (issue 18: a pair a value, scalars included, was half the
    cost of reading a 10,000-stage lock)."""
    level = [value] if isinstance(value, (dict, list)) else []
    depth = 0
    while level:
        if depth >= MAX_DEPTH:
            raise _too_deep(display)
        below: list[Any] = []
        for v in level:
            below.extend(c for c in (v.values() if isinstance(v, dict) else v)
                         if isinstance(c, (dict, list)))
        level, depth = below, depth + 1


_JSON_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<punct>[{}\[\]:,])
  | (?P<atom>[^ \t\r\n{}\[\]:,"]+)
""", re.VERBOSE)


def _json_positions(text: str) -> tuple[Positions, list[tuple[JsonPath, str, Loc]]]:
    """Positions of every value and key of a JSON text, and its duplicate keys.

    Only called to locate an error, so it favours clarity over speed.
    """
    pos = Positions()
    dups: list[tuple[JsonPath, str, Loc]] = []
    # stack entries: [path, is_object, next_index, pending_key, seen_keys]
    stack: list[list[Any]] = []
    line, line_start = 1, 0
    expect_key = False
    for m in _JSON_TOKEN.finditer(text):
        kind, tok, start = m.lastgroup, m.group(), m.start()
        if kind == "ws":
            nl = tok.count("\n")
            if nl:
                line += nl
                line_start = start + tok.rfind("\n") + 1
            continue
        loc = (line, start - line_start + 1)
        top = stack[-1] if stack else None
        if tok in ("}", "]"):
            stack.pop()
            continue
        if tok == ",":
            expect_key = bool(top and top[1])
            continue
        if tok == ":":
            continue
        if top is not None and top[1] and expect_key:
            key = json.loads(tok) if kind == "str" else tok
            if key in top[4]:
                dups.append((top[0] + (key,), key, loc))
            top[4].add(key)
            top[3] = key
            pos.keys[top[0] + (key,)] = loc
            expect_key = False
            continue
        if top is None:
            path: JsonPath = ()
        elif top[1]:
            path = top[0] + (top[3],)
        else:
            path = top[0] + (top[2],)
            top[2] += 1
        pos.values.setdefault(path, loc)
        if tok == "{":
            stack.append([path, True, 0, None, set()])
            expect_key = True
        elif tok == "[":
            stack.append([path, False, 0, None, set()])
    return pos, dups


def located(doc: Document, phase: str, code: str, path: JsonPath, message: str, *,
            key: bool = False, **kw: Any) -> Diagnostic:
    """A diagnostic about the value (or key) at `path` of `doc`, with its position."""
    loc = doc.locate(path, key=key)
    line, column = loc if loc else (None, None)
    return diagnostic(phase, code, doc.file, message, line=line, column=column,  # type: ignore[arg-type]
                      pointer=pointer_of(path), **kw)
