"""Helpers shared by the classifier stages (Python standard library + numpy).

* ``param(pointer)`` reads one value of ``params.yaml`` by the JSON Pointer that
  ``pipeline.yaml`` declares for the stage (SPEC [params.pointer]), so the code
  and the declaration name each param the same way.
* ``write_summary`` / ``SeriesWriter`` write the metrics files of SPEC section 12.
* ``save_npz`` writes a byte-reproducible ``.npz`` so that a stage re-run on the
  same inputs produces identical bytes (and downstream stages can be skipped).

The params reader understands the subset of YAML 1.2 that ``params.yaml`` uses:
block mappings, comments, and scalars resolved by the core schema of SPEC 4.1
(so ``1e-4`` is a float, as in YAML 1.2, and not a string as in YAML 1.1).
Anything else is rejected with an error rather than guessed.
"""

from __future__ import annotations

import datetime
import io
import json
import math
import os
import re
import zipfile

import numpy as np

PARAMS_FILE = "params.yaml"

# --------------------------------------------------------------------------- params

_NULL = re.compile(r"null|Null|NULL|~|")
_BOOL = re.compile(r"true|True|TRUE|false|False|FALSE")
_INT10 = re.compile(r"[-+]?[0-9]+")
_INT8 = re.compile(r"0o[0-7]+")
_INT16 = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?(\.inf|\.Inf|\.INF)")
_NAN = re.compile(r"\.nan|\.NaN|\.NAN")


def _scalar(text: str, where: str):
    """Resolve one YAML scalar by the core schema (SPEC [values.yaml-core])."""
    if text[:1] == '"':
        return json.loads(text)  # the JSON escapes are a subset of YAML's
    if text[:1] == "'":
        if len(text) < 2 or text[-1] != "'":
            raise ValueError(f"{where}: unterminated quoted scalar")
        return text[1:-1].replace("''", "'")
    if text[:1] in "[{&*!|>%@`":
        raise ValueError(f"{where}: unsupported YAML construct {text!r}")
    if _NULL.fullmatch(text):
        return None
    if _BOOL.fullmatch(text):
        return text.lower() == "true"
    if _INT10.fullmatch(text):
        return int(text, 10)
    if _INT8.fullmatch(text):
        return int(text[2:], 8)
    if _INT16.fullmatch(text):
        return int(text[2:], 16)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF.fullmatch(text):
        return -math.inf if text[0] == "-" else math.inf
    if _NAN.fullmatch(text):
        return math.nan
    return text


def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'" and (i == 0 or line[i - 1] in " :"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] == " "):
            return line[:i]
    return line


def load_params(path: str = PARAMS_FILE) -> dict:
    """Read a params file made of nested block mappings of scalars."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise SystemExit(f"{path} not found: run the stage commands from the project root "
                         "(the directory of pipeline.yaml)") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raise ValueError(f"{path}: byte-order mark")
    root: dict = {}
    stack = [(-1, root)]  # (indent, mapping)
    pending = None  # (indent, parent, key) of a key whose value is a nested mapping
    for n, line in enumerate(raw.decode("utf-8").split("\n"), start=1):
        where = f"{path}:{n}"
        body = _strip_comment(line).rstrip()
        if not body.strip():
            continue
        if "\t" in line[: len(line) - len(line.lstrip())]:
            raise ValueError(f"{where}: tab used as indentation")
        indent = len(body) - len(body.lstrip(" "))
        body = body.strip()
        if indent == 0 and body in ("---", "..."):
            raise ValueError(f"{where}: document markers are not supported")
        if pending is not None:
            p_indent, parent, key = pending
            pending = None
            if indent > p_indent:
                child: dict = {}
                parent[key] = child
                stack.append((indent, child))
            else:
                parent[key] = None  # `key:` with nothing after it is null
        while indent < stack[-1][0]:
            stack.pop()
        if indent != stack[-1][0] and stack[-1][1] is not root:
            raise ValueError(f"{where}: bad indentation")
        if stack[-1][1] is root and indent != 0:
            raise ValueError(f"{where}: bad indentation")
        m = re.fullmatch(r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*'|[^\s\"'#][^:]*?)\s*:(?:\s+(.*))?", body)
        if not m:
            raise ValueError(f"{where}: expected `key: value`, got {body!r}")
        key = m.group(1)
        key = _scalar(key, where) if key[0] in "\"'" else key  # plain keys are strings
        mapping = stack[-1][1]
        if key in mapping:
            raise ValueError(f"{where}: duplicate key {key!r}")
        if m.group(2) is None:
            mapping[key] = None
            pending = (indent, mapping, key)
        else:
            mapping[key] = _scalar(m.group(2).strip(), where)
    return root


def resolve_pointer(doc, pointer: str):
    """Resolve an RFC 6901 JSON Pointer (SPEC [params.pointer])."""
    if not pointer.startswith("/"):
        raise ValueError(f"JSON Pointer must start with '/': {pointer!r}")
    value = doc
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, list) and token.isdigit():
            value = value[int(token)]
        elif isinstance(value, dict) and token in value:
            value = value[token]
        else:
            raise KeyError(f"{PARAMS_FILE}: pointer {pointer} does not resolve")
    return value


_PARAMS_CACHE: dict = {}


def param(pointer: str, path: str = PARAMS_FILE):
    if path not in _PARAMS_CACHE:
        _PARAMS_CACHE[path] = load_params(path)
    return resolve_pointer(_PARAMS_CACHE[path], pointer)


# --------------------------------------------------------------------------- metrics


def _finite_or_text(value):
    """SPEC [metrics.nonfinite]: NaN and the infinities are written as strings."""
    if isinstance(value, dict):
        return {k: _finite_or_text(v) for k, v in value.items()}
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
    return value


def write_summary(path: str, metrics: dict) -> None:
    """Write a summary metrics file (SPEC [metrics.summary])."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    doc = {"version": "1.0", "metrics": _finite_or_text(metrics)}
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")


def utc_now() -> str:
    """The current time as an RFC 3339 UTC timestamp, e.g. 2024-05-01T12:00:00.123Z."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SeriesWriter:
    """Write a series metrics file (SPEC [metrics.series]) one flushed line at a time."""

    def __init__(self, path: str):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._f = open(path, "w", encoding="utf-8", newline="\n")
        self._write({"version": "1.0", "kind": "series"})

    def _write(self, obj) -> None:
        self._f.write(json.dumps(obj, allow_nan=False) + "\n")
        self._f.flush()

    def log(self, step: int, metrics: dict) -> None:
        self._write({"step": int(step), "time": utc_now(), "metrics": _finite_or_text(metrics)})

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------- arrays


def save_npz(path: str, **arrays) -> None:
    """Like numpy.savez, but byte-reproducible: fixed member order and timestamps."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def load_npz(path: str) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
