"""Typed values, their canonical forms and JSON Pointers: SPEC section 4.

Values are plain Python objects (None, bool, int, float, str, list, dict with str keys); Python
already keeps int and float apart, and bool is told from int explicitly everywhere here.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

TypedTree = dict[str, Any]


def utf16_key(key: str) -> bytes:
    """Sort key giving the order of UTF-16 code units ([values.jcs], [lock.canonical])."""
    return key.encode("utf-16-be", "surrogatepass")


def sorted_items(mapping: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The members in the order of UTF-16 code units. For ASCII keys that is the order of code
    points, which Python's own string order gives without encoding every key (isascii is a
    flag of the string: no scan)."""
    items = list(mapping.items())
    if all(k.isascii() for k in mapping):
        items.sort(key=_first)
        return items
    items.sort(key=lambda kv: utf16_key(kv[0]))
    return items


def _first(kv: tuple[str, Any]) -> str:
    return kv[0]


def type_name(value: Any) -> str:
    """The spec's name of a value's type (SPEC section 4)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    raise TypeError(f"not a spec value: {type(value).__name__}")


def int_text(value: int) -> str:
    """[values.int-text]"""
    return str(value)


def float_text(value: float) -> str:
    """[values.float-text]: ECMAScript Number::toString of a binary64."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exp_text = repr(abs(value)).partition("e")  # shortest round-trip digits
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    exponent = (int(exp_text) if exp_text else 0) - len(frac)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    k = len(digits)
    n = exponent + k  # value = 0.DIGITS x 10^n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    e_text = ("+" if e >= 0 else "-") + str(abs(e))
    if k == 1:
        return sign + digits + "e" + e_text
    return sign + digits[0] + "." + digits[1:] + "e" + e_text


def scalar_text(value: Any) -> str:
    """The text of a scalar as templating and generated names insert it ([template.typed])."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int_text(value)
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, str):
        return value
    raise TypeError(type_name(value))


def typed_tree(value: Any) -> TypedTree:
    """[values.typed-tree]"""
    kind = type_name(value)
    if kind == "null":
        return {"null": None}
    if kind == "bool":
        return {"bool": value}
    if kind == "int":
        return {"int": int_text(value)}
    if kind == "float":
        return {"float": float_text(value)}
    if kind == "str":
        return {"str": value}
    if kind == "list":
        return {"list": [typed_tree(v) for v in value]}
    return {"map": {k: typed_tree(v) for k, v in sorted_items(value)}}


def from_typed_tree(tree: TypedTree) -> Any:
    """The value a typed value tree stands for (the inverse of `typed_tree`)."""
    (kind, payload), = tree.items()
    if kind == "null":
        return None
    if kind == "bool":
        return bool(payload)
    if kind == "int":
        return int(payload)
    if kind == "float":
        return float(payload.replace("Infinity", "inf"))
    if kind == "str":
        return payload
    if kind == "list":
        return [from_typed_tree(v) for v in payload]
    return {k: from_typed_tree(v) for k, v in payload.items()}


def canonical_equal(a: Any, b: Any) -> bool:
    """[values.strict-types], [values.float-equality]: equal types and equal canonical text.

    Two scalars of one exact type are compared directly, which gives the same answer without
    building their typed trees (issue 18: every params key of every stage is compared on
    each plan): two floats have equal canonical text exactly when they are equal as numbers
    (shortest round-trip digits; 0 and -0 both read `0`) or both NaN."""
    kind = type(a)
    if kind is type(b):
        if kind is str or kind is int or kind is bool or a is None:
            return bool(a == b)
        if kind is float:
            return bool(a == b or (a != a and b != b))
    return typed_tree(a) == typed_tree(b)


def jcs(value: Any) -> bytes:
    """[values.jcs]: RFC 8785 bytes of a JSON value without floats."""
    return _jcs_text(value).encode("utf-8")


# What json.dumps(text, ensure_ascii=False) returns, without building an encoder per call
# (issue 18: a stage's input signature made 44 of them, 0.5 ms)
_string = json.encoder.encode_basestring


def _jcs_text(value: Any) -> str:
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dict):
        return "{" + ",".join(
            _string(k) + ":" + _jcs_text(v) for k, v in sorted_items(value)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_jcs_text(v) for v in value) + "]"
    if isinstance(value, float):
        raise TypeError("floats have no place in canonical bytes: use a typed value tree")
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        raise TypeError("negative integers have no place in canonical bytes")
    return json.dumps(value, ensure_ascii=False)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def params_digest(value: Any) -> str:
    """[params.digest]: the digest of the JCS bytes of the value's typed tree."""
    return sha256_digest(_typed_jcs_text(value).encode("utf-8"))


def _typed_jcs_text(value: Any) -> str:
    """`_jcs_text(typed_tree(value))`, without building the tree and sorting each mapping
    twice (issue 18: a stage's input signature, twice a stage run, was a tenth of the tool's
    own time in a 1,000-stage run). The kinds are tested in `type_name`'s order."""
    if value is None:
        return '{"null":null}'
    if isinstance(value, bool):
        return '{"bool":true}' if value else '{"bool":false}'
    if isinstance(value, int):
        return '{"int":' + _string(int_text(value)) + "}"
    if isinstance(value, float):
        return '{"float":' + _string(float_text(value)) + "}"
    if isinstance(value, str):
        return '{"str":' + _string(value) + "}"
    if isinstance(value, list):
        return '{"list":[' + ",".join(_typed_jcs_text(v) for v in value) + "]}"
    if isinstance(value, dict):
        return '{"map":{' + ",".join(
            _string(k) + ":" + _typed_jcs_text(v) for k, v in sorted_items(value)) + "}}"
    raise TypeError(f"not a spec value: {type(value).__name__}")


# ---------------------------------------------------------------------------------- pointers

def pointer_tokens(pointer: str) -> list[str]:
    """[params.pointer]: the reference tokens of a JSON Pointer."""
    if not pointer.startswith("/"):
        raise ValueError(f"a JSON Pointer starts with '/': {pointer!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def pointer_for(*tokens: str | int) -> str:
    return "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


_INDEX = re.compile(r"0|[1-9][0-9]*")  # RFC 6901 array-index: ASCII digits only


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value at `pointer`, or raises KeyError naming the first token that did not resolve."""
    value = document
    for token in pointer_tokens(pointer):
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif isinstance(value, list) and _INDEX.fullmatch(token) and int(token) < len(value):
            value = value[int(token)]
        else:
            raise KeyError(token)
    return value




def plain_metrics(tree: Mapping[str, Any], ignored: list[tuple[str, str]] | None = None,
                  keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """SPEC [metrics.plain]: the metrics of a plain metrics file, by their keys joined with
    `/`, in the file's order: its leaves that are numbers (int or float, NaN and infinities
    included; a bool is not a number). Every other leaf (str, bool, null, list, empty mapping)
    is not a metric: it is appended to `ignored` as (JSON Pointer, type name) when a list is
    given. Nesting is bounded by [read.depth]."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        at = (*keys, key)
        if isinstance(value, Mapping) and value:
            out.update(plain_metrics(value, ignored, at))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out["/".join(at)] = value
        elif ignored is not None:
            ignored.append((pointer_for(*at), type_name(value)))
    return out
