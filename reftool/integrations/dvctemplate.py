"""DVC's `${}` templating context, as `dvc.yaml` sees it, for `import-dvc`.

DVC (3.x, `dvc/parsing`) looks names up in: `params.yaml` of the folder holding `dvc.yaml`
(read without being listed), the top-level `vars` (files, `file:key,key` selections, inline
mappings), a stage's own `vars`, and `item`/`key` of a `foreach`/`matrix`. This module finds a
name's value and says where it came from, so that the converter can keep a `${}` that this
spec's templating resolves the same way ([template.context]) and write out every other value.
"""

from __future__ import annotations

import math
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files.documents import load
from ..files.errors import SpecError
from ..files.spec import MAX_TEXT_FILE_BYTES, PARAMS_EXTENSIONS

TEMPLATE = re.compile(r"\$\{([^}]*)\}")
_ACCESSOR = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(0|[1-9][0-9]*)\]|\[\"([^\"]*)\"\]")
_HEAD = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class Source:
    """Where a top-level name was defined: `file` (root-relative) when it came from a whole
    vars file that may be listed under the pipeline's `vars`, else None (inline values,
    `file:key` selections, stage vars)."""

    file: str | None
    what: str  # for messages: "params.yaml", "inline vars", "vars 'a.yaml:x'"


@dataclass
class Context:
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def child(self) -> "Context":
        return Context(dict(self.values), dict(self.sources), [])

    def merge(self, values: dict[str, Any], source: Source) -> None:
        for key, value in values.items():
            if key in self.values and self.sources[key].what != source.what:
                self.problems.append(f"{key!r} is defined by both {self.sources[key].what} "
                                     f"and {source.what} (DVC refuses this too)")
                continue
            self.values[key] = value
            self.sources[key] = source


class Undefined(Exception):
    pass


def parse_expr(expr: str) -> tuple[str, list[str | int]] | None:
    """`name.a[0]["b.c"]` as (name, accessors), or None when it is not this spec's grammar
    ([template.syntax])."""
    head = _HEAD.match(expr)
    if head is None:
        return None
    pos, accessors = head.end(), []
    while pos < len(expr):
        m = _ACCESSOR.match(expr, pos)
        if m is None:
            return None
        accessors.append(m.group(1) if m.group(1) is not None else
                         int(m.group(2)) if m.group(2) is not None else m.group(3))
        pos = m.end()
    return head.group(), accessors


def dvc_tokens(expr: str) -> list[str | int]:
    """DVC's looser reading of an expression: dots and `[n]` indexes, spaces trimmed."""
    out: list[str | int] = []
    for part in re.split(r"\.|\[|\]", expr.strip()):
        part = part.strip().strip("'\"")
        if part:
            out.append(int(part) if part.isdigit() else part)
    return out


def lookup(values: dict[str, Any], tokens: list[str | int]) -> Any:
    value: Any = values
    for token in tokens:
        if isinstance(value, dict) and str(token) in value:
            value = value[str(token)]
        elif isinstance(value, list) and isinstance(token, int) and token < len(value):
            value = value[token]
        else:
            raise Undefined(".".join(map(str, tokens)))
    return value


def scalar_text(value: Any) -> str:
    """A scalar as DVC writes it into a string (and as [template.typed] does for these)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value) and value == int(value) and \
            abs(value) < 1e16:
        return repr(value)
    return str(value)


def cmd_text(value: Any) -> str:
    """A mapping put into `cmd`, as DVC 3 renders it (`dvc/parsing/interpolate.py`, default
    config): nested keys joined by `.`, `--key value` with strings shell-quoted, `true` as a
    bare `--key`, `false` left out, a list as `--key a b`."""
    import shlex
    parts: list[str] = []
    for key, item in _flatten(value).items():
        if isinstance(item, bool):
            if item:
                parts.append(f"--{key}")
        elif isinstance(item, str):
            parts.append(f"--{key} {shlex.quote(item)}")
        elif isinstance(item, list):
            texts = [shlex.quote(i) if isinstance(i, str) else scalar_text(i) for i in item]
            parts.append(" ".join([f"--{key} {texts[0]}", *texts[1:]]) if texts else "")
        else:
            parts.append(f"--{key} {item}")
    return " ".join(p for p in parts if p)


def _flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict) and item:
            out.update(_flatten(item, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = item
    return out


def read_values(root: Path, rel: str) -> dict[str, Any]:
    """A params/vars file's top-level mapping (raises Undefined with the reason)."""
    fmt = PARAMS_EXTENSIONS.get(posixpath.splitext(rel)[1].lower())
    if fmt is None:
        raise Undefined(f"{rel}: not a YAML, JSON or TOML file")
    if not (root / rel).is_file():
        raise Undefined(f"{rel} does not exist")
    try:
        doc = load(root / rel, display=rel, fmt=fmt, limit=MAX_TEXT_FILE_BYTES)  # type: ignore[arg-type]
    except SpecError as e:
        raise Undefined(f"{rel}: {e.diagnostics[0].message}") from None
    if not isinstance(doc.value, dict):
        raise Undefined(f"{rel}: not a mapping")
    return doc.value
