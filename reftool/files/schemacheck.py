"""A fast yes/no for the JSON Schemas of `schemas/`: SPEC [files.kinds], [tool.validate].

`jsonschema` builds an error object for every keyword it visits; for a valid file, the common
case, all that work is thrown away. This module compiles a Draft 2020-12 schema once into a
predicate made of closures that answers exactly `not any(validator(name, pointer).iter_errors(v))`
with the tool's own validator (`schemas.validator`), keyword for keyword as jsonschema applies
them, and nothing else. It never explains: when it says "not valid" (or cannot tell), the caller
asks jsonschema, whose errors are the ones reported.

A keyword, type or format this module does not mirror raises `NotCompilable` at compile time;
callers then use jsonschema alone. Standard library only.
"""

from __future__ import annotations

import functools
import itertools
import numbers
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

from .schemas import SCHEMA_FILES, is_rfc3339, schema, validator

Predicate = Callable[[Any], bool]

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

# Keywords jsonschema does not check: annotations, and `$defs`, reached only through `$ref`.
_ANNOTATIONS = frozenset({"title", "description", "$comment", "default", "examples",
                          "$schema", "$id", "$defs"})


class NotCompilable(ValueError):
    """A schema uses a keyword, type, format or reference this module does not mirror."""


# ---------------------------------------------------------------------------------- public

@functools.cache
def compile_schema(name: str, pointer: str = "") -> Predicate:
    """The predicate of schema `name` (of its sub-schema at JSON Pointer `pointer`), equal to
    `not any(validator(name, pointer).iter_errors(instance))`. Raises `NotCompilable`."""
    root = schema(name)
    return _Compiler().reference(root["$id"] + "#" + pointer, base="")


def compile_node(node: Any, *, base: str = "") -> Predicate:
    """The predicate of a schema given as a value, with the project validator's semantics;
    `$ref`s resolve against `base` and the `$id`s of the files of `schemas/`."""
    return _Compiler().compile(node, base=base)


def passes(name: str, instance: Any, *, pointer: str = "") -> bool:
    """True when `instance` is valid for sure; False when it is not, or when this module cannot
    tell (a schema it does not mirror, a value jsonschema itself would fail on)."""
    check = _compiled_or_none(name, pointer)
    if check is None:
        return False
    try:
        return check(instance)
    except (TypeError, ValueError, RecursionError):  # jsonschema meets the same: it reports
        return False


def is_valid(name: str, instance: Any, *, pointer: str = "") -> bool:
    """`not any(validator(name, pointer).iter_errors(instance))`, by the fast path when it can
    say yes; a "no" is always jsonschema's own."""
    return passes(name, instance, pointer=pointer) or \
        not any(validator(name, pointer).iter_errors(instance))


@functools.cache
def _compiled_or_none(name: str, pointer: str) -> Predicate | None:
    try:
        return compile_schema(name, pointer)
    except NotCompilable:
        return None


# ---------------------------------------------------------------------------------- equality

def equal(one: Any, two: Any) -> bool:
    """jsonschema's `_utils.equal` (const, enum, uniqueItems): True is not 1, False is not 0,
    at any depth of lists and mappings; 1 == 1.0."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, Sequence) and isinstance(two, Sequence):
        return len(one) == len(two) and all(equal(i, j) for i, j in zip(one, two))
    if isinstance(one, Mapping) and isinstance(two, Mapping):
        return len(one) == len(two) and all(
            key in two and equal(value, two[key]) for key, value in one.items())
    return bool(_unbool(one) == _unbool(two))


_TRUE, _FALSE = object(), object()


def _unbool(element: Any) -> Any:
    if element is True:
        return _TRUE
    if element is False:
        return _FALSE
    return element


def unique(container: Iterable[Any]) -> bool:
    """jsonschema's `_utils.uniq`, step for step: sorted neighbours compared when the items
    sort, every pair otherwise (so its answers, quirks included, are ours)."""
    try:
        ordered = sorted(_unbool(i) for i in container)
        return not any(equal(i, j) for i, j in zip(ordered, itertools.islice(ordered, 1, None)))
    except (NotImplementedError, TypeError):
        seen: list[Any] = []
        for e in container:
            e = _unbool(e)
            if any(equal(i, e) for i in seen):
                return False
            seen.append(e)
    return True


# ---------------------------------------------------------------------------------- types

def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Number) and not isinstance(x, bool)


def _is_integer(x: Any) -> bool:
    """SPEC [values.strict-types]: an int, never a bool, never a float (`schemas._is_int`)."""
    return isinstance(x, int) and not isinstance(x, bool)


_TYPES: dict[str, Predicate] = {
    "array": lambda x: isinstance(x, list),
    "boolean": lambda x: isinstance(x, bool),
    "integer": _is_integer,
    "null": lambda x: x is None,
    "number": _is_number,
    "object": lambda x: isinstance(x, dict),
    "string": lambda x: isinstance(x, str),
}

# Formats the tool's format checker knows (`schemas._format_checker`).
_FORMATS: dict[str, Predicate] = {"date-time": is_rfc3339}


def _always(x: Any) -> bool:
    return True


def _never(x: Any) -> bool:
    return False


def _all_of(checks: list[Predicate]) -> Predicate:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]

    def check(x: Any) -> bool:
        for c in checks:
            if not c(x):
                return False
        return True
    return check


def _any_of(checks: list[Predicate]) -> Predicate:
    def check(x: Any) -> bool:
        for c in checks:
            if c(x):
                return True
        return False
    return check


# ---------------------------------------------------------------------------------- compiler

Keyword = Callable[["_Compiler", Any, dict[str, Any], str], Predicate | None]


class _Compiler:
    """Compiles the schemas reached from one root; a `$ref` met again (recursion) is bound to
    the predicate being built, looked up only when it runs."""

    def __init__(self) -> None:
        self._refs: dict[str, list[Predicate]] = {}

    def reference(self, ref: str, *, base: str) -> Predicate:
        """`$ref`: by `$id` across files, then a `#/...` JSON Pointer in the file found."""
        uri, fragment = urldefrag(urljoin(base, ref))
        key = uri + "#" + fragment
        cell = self._refs.get(key)
        if cell is None:
            cell = self._refs[key] = []
            cell.append(self.compile(_resolve(uri, fragment), base=uri))
        if cell:
            return cell[0]
        return lambda x: cell[0](x)  # a cycle: the predicate exists by the time it runs

    def compile(self, node: Any, *, base: str) -> Predicate:
        """A sub-schema: true, false, or a mapping of keywords all of which must hold."""
        if node is True:
            return _always
        if node is False:
            return _never
        if not isinstance(node, dict):
            raise NotCompilable(f"a schema must be a boolean or an object, not {node!r}")
        if node.get("$schema", DRAFT_2020_12) != DRAFT_2020_12:
            raise NotCompilable(f"only Draft 2020-12 is mirrored, not {node['$schema']!r}")
        checks: list[Predicate] = []
        for keyword, value in node.items():
            if keyword in _ANNOTATIONS:
                continue
            compiler = _KEYWORDS.get(keyword)
            if compiler is None:
                raise NotCompilable(f"keyword {keyword!r} is not mirrored by "
                                    "reftool/files/schemacheck.py")
            check = compiler(self, value, node, base)
            if check is not None:
                checks.append(check)
        return _all_of(checks)


def _resolve(uri: str, fragment: str) -> Any:
    """The schema at `uri` (a schema file's `$id`) and `fragment` (a JSON Pointer), as the
    `referencing` library finds it (percent-decoded, then ~1 and ~0)."""
    roots = {schema(n)["$id"]: schema(n) for n in SCHEMA_FILES}
    if uri not in roots:
        raise NotCompilable(f"$ref to an unknown schema {uri!r}")
    node: Any = roots[uri]
    if fragment and not fragment.startswith("/"):
        raise NotCompilable(f"$ref to an anchor {fragment!r}: only JSON Pointers are mirrored")
    for segment in unquote(fragment[1:]).split("/") if fragment else ():
        try:
            node = node[int(segment)] if isinstance(node, list) else \
                node[segment.replace("~1", "/").replace("~0", "~")]
        except (LookupError, ValueError):
            raise NotCompilable(f"$ref to nowhere: {uri}#{fragment}") from None
        if isinstance(node, dict) and "$id" in node:
            raise NotCompilable("a sub-schema with its own $id is not mirrored")
    return node


def _sub(c: _Compiler, node: Any, base: str) -> Predicate:
    if isinstance(node, dict) and "$id" in node:
        raise NotCompilable("a sub-schema with its own $id is not mirrored")
    return c.compile(node, base=base)


def _need(ok: bool, keyword: str, value: Any) -> None:
    if not ok:
        raise NotCompilable(f"{keyword}: {value!r} is not a value this module mirrors")


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _regex(keyword: str, pattern: Any) -> re.Pattern[str]:
    """A pattern as jsonschema applies it: Python's `re.search` on the text."""
    _need(isinstance(pattern, str), keyword, pattern)
    try:
        return re.compile(pattern)
    except re.error:
        raise NotCompilable(f"{keyword}: {pattern!r} is no Python regular expression") from None


# ---------------------------------------------------------------------------------- keywords
# Each returns the keyword's check, as in jsonschema's `_keywords.py`: an applicator checks
# only instances of its JSON type and lets every other value through.

def _type(c: _Compiler, value: Any, node: dict[str, Any], base: str) -> Predicate:
    names = [value] if isinstance(value, str) else value
    _need(_string_list(names) and bool(names) and all(n in _TYPES for n in names),
          "type", value)
    return _any_of([_TYPES[n] for n in names]) if len(names) > 1 else _TYPES[names[0]]


def _ref(c: _Compiler, value: Any, node: dict[str, Any], base: str) -> Predicate:
    _need(isinstance(value, str), "$ref", value)
    return c.reference(value, base=base)


def _properties(c: _Compiler, value: Any, node: dict[str, Any], base: str) -> Predicate:
    _need(isinstance(value, dict), "properties", value)
    subs = [(key, _sub(c, sub, base)) for key, sub in value.items()]

    def check(x: Any) -> bool:
        if not isinstance(x, dict):
            return True
        for key, sub in subs:
            if key in x and not sub(x[key]):
                return False
        return True
    return check


def _pattern_properties(c: _Compiler, value: Any, node: dict[str, Any],
                        base: str) -> Predicate:
    _need(isinstance(value, dict), "patternProperties", value)
    subs = [(_regex("patternProperties", p).search, _sub(c, sub, base))
            for p, sub in value.items()]

    def check(x: Any) -> bool:
        if not isinstance(x, dict):
            return True
        return all(sub(v) for search, sub in subs for k, v in x.items() if search(k))
    return check


def _additional_properties(c: _Compiler, value: Any, node: dict[str, Any],
                           base: str) -> Predicate | None:
    """The keys neither in `properties` nor matched by `patternProperties` (jsonschema joins
    those patterns with '|' and searches once: so do we)."""
    known = node.get("properties", {})
    _need(isinstance(known, dict), "properties", known)
    joined = "|".join(node.get("patternProperties", {}))
    search = _regex("patternProperties", joined).search if joined else None
    _need(isinstance(value, (bool, dict)), "additionalProperties", value)
    if value is True:
        return None
    sub = _never if value is False else _sub(c, value, base)

    def check(x: Any) -> bool:
        if not isinstance(x, dict):
            return True
        return all(sub(v) for k, v in x.items()
                   if k not in known and not (search is not None and search(k)))
    return check


def _required(c: _Compiler, value: Any, node: dict[str, Any], base: str) -> Predicate:
    _need(_string_list(value), "required", value)
    return lambda x: not isinstance(x, dict) or all(key in x for key in value)


def _property_names(c: _Compiler, value: Any, node: dict[str, Any], base: str) -> Predicate:
    sub = _sub(c, value, base)
    return lambda x: not isinstance(x, dict) or all(sub(key) for key in x)


def _min_properties(c: _Compiler, value: Any, node: dict[str, Any], base: str) -> Predicate:
    _need(_is_count(value), "minProperties", value)
    return lambda x: not isinstance(x, dict) or not len(x) < value


def _max_properties(c: _Compiler, value: Any, node: dict[str, Any], base: str) -> Predicate:
    _need(_is_count(value), "maxProperties", value)
    return lambda x: not isinstance(x, dict) or not len(x) > value


def _items(c: _Compiler, value: Any, node: dict[str, Any], base: str) -> Predicate:
    if value is False:  # no prefixItems (not mirrored): any item is one too many
        return lambda x: not isinstance(x, list) or not x
    sub = _sub(c, value, base)
    return lambda x: not isinstance(x, list) or all(sub(item) for item in x)


def _min_items(c: _Compiler, value: Any, node: dict[str, Any], base: str) -> Predicate:
    _need(_is_count(value), "minItems", value)
    return lambda x: not isinstance(x, list) or not len(x) < value


def _unique_items(c: _Compiler, value: Any, node: dict[str, Any],
                  base: str) -> Predicate | None:
    _need(isinstance(value, bool), "uniqueItems", value)
    return (lambda x: not isinstance(x, list) or unique(x)) if value else None


def _pattern(c: _Compiler, value: Any, node: dict[str, Any], base: str) -> Predicate:
    search = _regex("pattern", value).search
    return lambda x: not isinstance(x, str) or search(x) is not None


def _min_length(c: _Compiler, value: Any, node: dict[str, Any], base: str) -> Predicate:
    """Length in code points, as Python's `len`: jsonschema's own count."""
    _need(_is_count(value), "minLength", value)
    return lambda x: not isinstance(x, str) or not len(x) < value


def _format(c: _Compiler, value: Any, node: dict[str, Any], base: str) -> Predicate:
    """SPEC [metrics.series], [experiments.record]: `date-time` is `schemas.is_rfc3339`, on
    every value (it lets non-text through); a format the tool does not check is refused."""
    _need(value in _FORMATS, "format", value)
    conforms = _FORMATS[value]
    return lambda x: bool(conforms(x))


def _limit(keyword: str, value: Any) -> None:
    _need(isinstance(value, (int, float)) and not isinstance(value, bool), keyword, value)


def _minimum(c: _Compiler, value: Any, node: dict[str, Any], base: str) -> Predicate:
    _limit("minimum", value)
    return lambda x: not _is_number(x) or not x < value


def _exclusive_minimum(c: _Compiler, value: Any, node: dict[str, Any],
                       base: str) -> Predicate:
    _limit("exclusiveMinimum", value)
    return lambda x: not _is_number(x) or not x <= value


def _const(c: _Compiler, value: Any, node: dict[str, Any], base: str) -> Predicate:
    return lambda x: equal(x, value)


def _enum(c: _Compiler, value: Any, node: dict[str, Any], base: str) -> Predicate:
    _need(isinstance(value, list), "enum", value)
    return lambda x: any(equal(each, x) for each in value)


def _schema_list(c: _Compiler, keyword: str, value: Any, base: str) -> list[Predicate]:
    _need(isinstance(value, list) and bool(value), keyword, value)
    return [_sub(c, sub, base) for sub in value]


def _any_of_keyword(c: _Compiler, value: Any, node: dict[str, Any], base: str) -> Predicate:
    return _any_of(_schema_list(c, "anyOf", value, base))


def _all_of_keyword(c: _Compiler, value: Any, node: dict[str, Any], base: str) -> Predicate:
    return _all_of(_schema_list(c, "allOf", value, base))


def _not(c: _Compiler, value: Any, node: dict[str, Any], base: str) -> Predicate:
    sub = _sub(c, value, base)
    return lambda x: not sub(x)


def _if(c: _Compiler, value: Any, node: dict[str, Any], base: str) -> Predicate:
    """`if` with its `then` and `else` (which, without `if`, jsonschema does not apply)."""
    condition = _sub(c, value, base)
    then = _sub(c, node["then"], base) if "then" in node else _always
    otherwise = _sub(c, node["else"], base) if "else" in node else _always
    return lambda x: then(x) if condition(x) else otherwise(x)


def _applied_by_if(c: _Compiler, value: Any, node: dict[str, Any], base: str) -> None:
    return None


_KEYWORDS: dict[str, Keyword] = {
    "type": _type, "$ref": _ref, "const": _const, "enum": _enum, "format": _format,
    "properties": _properties, "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties, "required": _required,
    "propertyNames": _property_names, "minProperties": _min_properties,
    "maxProperties": _max_properties, "items": _items, "minItems": _min_items,
    "uniqueItems": _unique_items, "pattern": _pattern, "minLength": _min_length,
    "minimum": _minimum, "exclusiveMinimum": _exclusive_minimum,
    "anyOf": _any_of_keyword, "allOf": _all_of_keyword, "not": _not,
    "if": _if, "then": _applied_by_if, "else": _applied_by_if,
}
