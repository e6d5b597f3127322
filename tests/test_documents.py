"""Unit tests of reftool.files.documents and reftool.files.values against SPEC.md sections 3 and 4.

Every test names the SPEC anchor it checks (`# SPEC [area.rule]` or in the test name); each rule
has a passing case (the value read) and a failing case (the input rejected, with its phase/code).
Tests marked `xfail(strict=True, reason="BUG: ...")` pin behaviour of reftool that contradicts the
spec; they start to XPASS (and so fail) once the package is fixed, and the mark is then removed.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from reftool.files.documents import (
    Document,
    decode,
    load,
    parse,
    pointer_of,
    read_bytes,
    resolve_plain,
)
from reftool.files.errors import Diagnostic, SpecError
from reftool.files.spec import MAX_ALIAS_NODES, MAX_DEPTH, MAX_INT_DIGITS
from reftool.files.values import (
    canonical_equal,
    float_text,
    from_typed_tree,
    int_text,
    jcs,
    params_digest,
    pointer_for,
    pointer_tokens,
    resolve_pointer,
    sha256_digest,
    typed_tree,
)

INF, NAN = math.inf, math.nan
DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=300,
                         suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------- helpers

def value_of(text: str, fmt: str = "yaml") -> Any:
    doc = parse(text, display="f", fmt=fmt)  # type: ignore[arg-type]
    assert isinstance(doc, Document)
    return doc.value


def problems(text: str, fmt: str = "yaml") -> list[Diagnostic]:
    with pytest.raises(SpecError) as info:
        parse(text, display="f", fmt=fmt)  # type: ignore[arg-type]
    found = info.value.diagnostics
    assert found, "a SpecError must carry at least one diagnostic"
    for d in found:
        assert d.file == "f"
    return found


def codes(found: list[Diagnostic]) -> list[tuple[str, str]]:
    return [(d.phase, d.code) for d in found]


def same(actual: Any, expected: Any) -> bool:
    """Strict equality: same Python type at every level (bool is not int), NaN equals NaN,
    and the sign of zeros and infinities matters."""
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, float):
        if math.isnan(expected):
            return math.isnan(actual)
        return actual == expected and math.copysign(1, actual) == math.copysign(1, expected)
    if isinstance(expected, list):
        return len(actual) == len(expected) and all(map(same, actual, expected))
    if isinstance(expected, dict):
        return list(actual) == list(expected) and all(same(actual[k], v)
                                                      for k, v in expected.items())
    return bool(actual == expected)


# ---------------------------------------------------------------------------------- [values.yaml-core]

# (plain scalar text, expected value): the type is checked strictly by `same`.
YAML_CORE_TABLE: list[tuple[str, Any]] = [
    # null: null|Null|NULL|~ or the empty scalar
    ("", None), ("~", None), ("null", None), ("Null", None), ("NULL", None),
    ("nULL", "nULL"), ("none", "none"), ("None", "None"),
    # bool: only these six spellings
    ("true", True), ("True", True), ("TRUE", True),
    ("false", False), ("False", False), ("FALSE", False),
    ("tRUE", "tRUE"), ("fAlse", "fAlse"),
    # YAML 1.1 booleans are strings in YAML 1.2
    ("on", "on"), ("On", "On"), ("ON", "ON"), ("off", "off"), ("yes", "yes"), ("Yes", "Yes"),
    ("no", "no"), ("NO", "NO"), ("y", "y"), ("Y", "Y"), ("n", "n"),
    # int: decimal (leading zeros allowed, sign allowed), 0o octal, 0x hexadecimal
    ("0", 0), ("-0", 0), ("+1", 1), ("-17", -17), ("010", 10), ("0777", 777),
    ("0o17", 15), ("0o0", 0), ("0x1F", 31), ("0xff", 255), ("0xDEADbeef", 0xDEADBEEF),
    ("9007199254740993", 9007199254740993),
    ("123456789012345678901234567890", 123456789012345678901234567890),
    # not ints in YAML 1.2
    ("1_000", "1_000"), ("0b101", "0b101"), ("0x", "0x"), ("0o", "0o"), ("0o8", "0o8"),
    ("0xG", "0xG"), ("+0x1F", "+0x1F"), ("-0x1F", "-0x1F"), ("-0o17", "-0o17"),
    ("0X1F", "0X1F"), ("0O17", "0O17"),
    # float
    ("1e-3", 0.001), ("1E3", 1000.0), ("1e+3", 1000.0), (".5", 0.5), ("-.5", -0.5),
    ("+.5", 0.5), ("1.", 1.0), ("1.0", 1.0), ("1.5", 1.5), ("-1.5e-2", -0.015),
    ("+1.5E+3", 1500.0), ("0.0", 0.0), ("-0.0", -0.0), ("1e400", INF), ("-1e400", -INF),
    (".inf", INF), (".Inf", INF), (".INF", INF), ("+.inf", INF),
    ("-.inf", -INF), ("-.Inf", -INF), ("-.INF", -INF),
    (".nan", NAN), (".NaN", NAN), (".NAN", NAN),
    # not floats
    (".Nan", ".Nan"), (".iNf", ".iNf"), ("inf", "inf"), ("-inf", "-inf"), ("nan", "nan"),
    ("NaN", "NaN"), ("Infinity", "Infinity"), ("-.nan", "-.nan"), ("+.nan", "+.nan"),
    ("1e", "1e"), ("e3", "e3"), (".", "."), ("1.2.3", "1.2.3"), (".e3", ".e3"),
    ("1,000", "1,000"), ("1 000", "1 000"),
    # YAML 1.1 timestamps and sexagesimals are strings
    ("2024-01-31", "2024-01-31"), ("2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"),
    ("12:30", "12:30"), ("190:20:30", "190:20:30"),
    # anything else
    ("hello", "hello"), ("=", "="), ("<<x", "<<x"),
]


@pytest.mark.parametrize("text,expected", YAML_CORE_TABLE,
                         ids=[repr(t) for t, _ in YAML_CORE_TABLE])
def test_values_yaml_core_plain_scalar(text: str, expected: Any) -> None:
    # SPEC [values.yaml-core]: the first matching row of the table decides the type.
    assert same(resolve_plain(text), expected)
    value = value_of(f"a: {text}\n")["a"]
    assert same(value, expected), (text, value)


@pytest.mark.parametrize("text,expected", [
    ('"1"', "1"), ("'1'", "1"), ('"true"', "true"), ("'null'", "null"), ('""', ""),
    ("''", ""), ('"~"', "~"), ("'0x1F'", "0x1F"), ('".inf"', ".inf"), ('"1e-3"', "1e-3"),
    ("|\n  1\n", "1\n"), ("|-\n  true\n", "true"), (">\n  null\n", "null\n"),
    (">-\n  1.5\n", "1.5"), ("|+\n  ~\n\n", "~\n\n"),
])
def test_values_yaml_core_quoted_and_block_scalars_are_strings(text: str,
                                                               expected: str) -> None:
    # SPEC [values.yaml-core]: "Quoted and block scalars are strings."
    assert same(value_of(f"a: {text}")["a"], expected)


def test_values_yaml_core_in_sequences_and_flow() -> None:
    # SPEC [values.yaml-core]: resolution does not depend on the collection style.
    got = value_of("block:\n  - 1\n  - 1.0\n  - true\n  - ~\n  - yes\nflow: [1, 1.0, true, ~, yes, ]\n")
    expected = [1, 1.0, True, None, "yes"]
    assert same(got["block"], expected) and same(got["flow"], expected)
    assert same(value_of("{a: , b: .5}"), {"a": None, "b": 0.5})


def test_values_yaml_core_syntax_error_is_rejected() -> None:
    # SPEC [values.yaml-core] failing case: text that is not YAML at all is parse/syntax.
    assert codes(problems("a: [1, 2\n")) == [("parse", "syntax")]


# ---------------------------------------------------------------------------------- [read.keys]

@pytest.mark.parametrize("text,key", [
    ("1: x", "1"), ("true: x", "true"), ("True: x", "True"), ("null: x", "null"),
    ("~: x", "~"), ("1.5: x", "1.5"), ("0x1F: x", "0x1F"), ("010: x", "010"),
    (".inf: x", ".inf"), ("'1': x", "1"), ('"true": x', "true"), ("? 2\n: x", "2"),
    ("? |\n  block\n: x", "block\n"), ("!!str 3: x", "3"), ("{7: x}", "7"),
])
def test_read_keys_plain_keys_are_the_string_they_spell(text: str, key: str) -> None:
    # SPEC [read.keys]: a plain key such as 1, true or null is read as "1", "true", "null".
    value = value_of(text + "\n")
    assert same(value, {key: "x"})


def test_read_keys_spelled_the_same_are_duplicates() -> None:
    # SPEC [read.keys] + [read.duplicate-keys]: plain 1 and quoted "1" are the same key.
    found = problems('1: a\n"1": b\n')
    assert codes(found) == [("parse", "duplicate_key")]
    assert (found[0].line, found[0].column) == (2, 1)


@pytest.mark.parametrize("text,loc", [
    ("[1]: x\n", (1, 1)),
    ("{a: 1}: x\n", (1, 1)),
    ("? [1, 2]\n: x\n", (1, 3)),
    ("? {a: 1}\n: x\n", (1, 3)),
    ("? - 1\n  - 2\n: x\n", (1, 3)),
    ("a: &s [1]\n*s : x\n", (2, 1)),
    ("outer:\n  [x]: 1\n", (2, 3)),
])
def test_read_keys_complex_key_rejected(text: str, loc: tuple[int, int]) -> None:
    # SPEC [read.keys]: a key that is a mapping or sequence is parse/complex_key.
    found = problems(text)
    assert codes(found) == [("parse", "complex_key")]
    assert (found[0].line, found[0].column) == loc


# ---------------------------------------------------------------------------------- [values.float-parse]

FLOAT_PARSE = [
    ("0.1", 0.1),
    ("9007199254740993.0", 9007199254740992.0),  # tie: rounds to the even significand
    ("9007199254740995.0", 9007199254740996.0),  # tie: rounds to the even significand
    ("9007199254740993.0000000001", 9007199254740994.0),  # just above the tie: rounds up
    ("2.4703282292062328e-324", 5e-324),  # just above half the smallest subnormal
    ("2.4703282292062327e-324", 0.0),  # just below it
    ("1e-400", 0.0),
    ("-1e-400", -0.0),
    ("1.7976931348623157e308", 1.7976931348623157e308),
    ("1.7976931348623158e308", 1.7976931348623157e308),  # still rounds to the max finite
    ("1.7976931348623159e308", INF),  # beyond the range: infinity
    ("1e400", INF),
    ("-1e400", -INF),
    ("0.30000000000000004", 0.30000000000000004),
    ("3.141592653589793238462643383279", math.pi),
]


@pytest.mark.parametrize("fmt,template", [
    ("yaml", "a: {}\n"), ("json", '{{"a": {}}}'), ("toml", "a = {}\n"),
])
@pytest.mark.parametrize("text,expected", FLOAT_PARSE, ids=[t for t, _ in FLOAT_PARSE])
def test_values_float_parse_nearest_binary64(fmt: str, template: str, text: str,
                                             expected: float) -> None:
    # SPEC [values.float-parse]: nearest binary64, ties to even, out of range -> infinity.
    assert same(value_of(template.format(text), fmt)["a"], expected)


@pytest.mark.parametrize("text", ["!!float 1e", "!!float abc", "!!float 1.2.3", "!!float ''"])
def test_values_float_parse_not_a_float_rejected(text: str) -> None:
    # SPEC [values.float-parse] / [read.tags] failing case: text that is not a float.
    found = problems(f"a: {text}\n")
    assert codes(found) == [("parse", "invalid_scalar")]
    assert (found[0].line, found[0].column) == (1, 4)


# ---------------------------------------------------------------------------------- [values.int]

BIG_INTS = [9007199254740993, -9007199254740993, 2**64, -(2**63) - 1, 10**100 + 1,
            int("9" * 1000), -int("1" + "0" * 4000 + "1")]


@pytest.mark.parametrize("fmt,template", [
    ("yaml", "a: {}\n"), ("json", '{{"a": {}}}'), ("toml", "a = {}\n"),
])
@pytest.mark.parametrize("n", BIG_INTS, ids=lambda n: f"{len(str(n))}digits")
def test_values_int_exact(fmt: str, template: str, n: int) -> None:
    # SPEC [values.int]: integers are never rounded through a binary64.
    value = value_of(template.format(n), fmt)["a"]
    assert type(value) is int and value == n
    assert typed_tree(value) == {"int": str(n)}
    assert int_text(value) == str(n)


def test_values_int_9007199254740993_is_not_its_float() -> None:
    # SPEC [values.int]: 9007199254740993 stays 9007199254740993 (the float would be ...992).
    value = value_of("a: 9007199254740993\n")["a"]
    assert value != int(float(value))
    assert params_digest(value) != params_digest(9007199254740992)
    assert not canonical_equal(value, float(value))


def test_values_int_text() -> None:
    # SPEC [values.int-text]: base 10, '-' for negatives, no '+', no leading zeros, zero is 0.
    assert [int_text(v) for v in (0, -0, 7, -7, 10**30)] == ["0", "0", "7", "-7", "1" + "0" * 30]
    assert value_of("a: +007\n")["a"] == 7 and typed_tree(value_of("a: +007\n")["a"]) == {
        "int": "7"}


INT_FORMATS = [("yaml", "a: {}\n"), ("json", '{{"a": {}}}'), ("toml", "a = {}\n")]


@pytest.mark.parametrize("fmt,template", INT_FORMATS)
@pytest.mark.parametrize("sign", ["", "-"])
def test_values_int_at_the_bound_read_exactly(fmt: str, template: str, sign: str) -> None:
    # SPEC [values.int]: the reference tool's bound is 4,300 digits; at the bound, exact.
    assert MAX_INT_DIGITS == 4300
    n = int(sign + "8" * 4300)
    value = value_of(template.format(n), fmt)["a"]
    assert type(value) is int and value == n


@pytest.mark.parametrize("fmt,template", INT_FORMATS)
@pytest.mark.parametrize("digits", [4301, 5000, 100_000])
def test_values_int_over_the_bound_refused(fmt: str, template: str, digits: int) -> None:
    # SPEC [values.int]: "A reader MAY refuse an integer of more decimal digits than a bound of
    # its own (parse/invalid_scalar), and MUST then not read it as anything else".
    found = problems(template.format("7" * digits), fmt)
    assert codes(found) == [("parse", "invalid_scalar")]


@pytest.mark.parametrize("text", ["a: 0x" + "f" * 4301, "a: !!int " + "7" * 4301,
                                  "a: -" + "7" * 4301, "a: [1, " + "7" * 4301 + "]"])
def test_values_int_over_the_bound_refused_yaml_located(text: str) -> None:
    # SPEC [values.int] in YAML, with the position of the scalar.
    found = problems(text + "\n")
    assert codes(found) == [("parse", "invalid_scalar")]
    assert found[0].line == 1 and found[0].column is not None


def test_values_int_long_float_text_is_still_a_float() -> None:
    # SPEC [values.int] bounds integers only; [values.float-parse]: out of range -> infinity.
    assert same(value_of("a: " + "1" * 5000 + ".0\n")["a"], INF)


def test_values_int_leading_zeros_beyond_the_bound() -> None:
    # SPEC [values.int]: either the value 1 (leading zeros are allowed by [values.yaml-core])
    # or parse/invalid_scalar at the scalar; never another code.
    try:
        assert same(value_of("a: " + "0" * 5000 + "1\n")["a"], 1)
    except SpecError as e:
        [d] = e.diagnostics
        assert (d.code, d.line, d.column) == ("invalid_scalar", 1, 4)


# ---------------------------------------------------------------------------------- [read.json]

@pytest.mark.parametrize("text,expected", [
    ('{"a": 1.0}', {"a": 1.0}), ('{"a": 1}', {"a": 1}), ('{"a": -0}', {"a": 0}),
    ('{"a": -0.0}', {"a": -0.0}), ('{"a": 1E2}', {"a": 100.0}), ('{"a": 1e-3}', {"a": 0.001}),
    ('{"a": 10e0}', {"a": 10.0}), ('{"a": 9007199254740993}', {"a": 9007199254740993}),
    ('{"a": true, "b": null, "c": "x"}', {"a": True, "b": None, "c": "x"}),
    ('[1, 1.5, "1"]', [1, 1.5, "1"]), ('"top"', "top"), ("  {}  \n", {}),
    ('{"\\u00e9\\ud83d\\ude00": "\\u0041"}', {"\u00e9\U0001F600": "A"}),
])
def test_read_json_numbers_and_values(text: str, expected: Any) -> None:
    # SPEC [read.json]: a number with a fraction or exponent is a float, otherwise an int.
    assert same(value_of(text, "json"), expected)


@pytest.mark.parametrize("text,loc", [
    ('{"a": NaN}', (1, 7)),
    ('{"a": Infinity}', (1, 7)),
    ('{"a": -Infinity}', (1, 7)),
    ('{\n  "a": 1,\n  "b": NaN\n}', (3, 8)),
    ('{"a": 1,}', (1, 9)),
    ("[1, 2,]", (1, 7)),
    ('{"a": 1} // comment', (1, 10)),
    ('/* c */ {"a": 1}', (1, 1)),
    ('{"a": 1 /* c */}', (1, 9)),
    ('# c\n{"a": 1}', (1, 1)),
    ('{"a": 01}', None), ('{"a": .5}', None), ('{"a": +1}', None), ('{"a": 1.}', None),
    ("{a: 1}", None), ("{'a': 1}", None), ('{"a": "x\ty"}', None), ("", None),
    ('{"a": 1} {"b": 2}', None), ('{"a": true', None),
])
def test_read_json_strict_rfc8259_syntax(text: str, loc: tuple[int, int] | None) -> None:
    # SPEC [read.json]: NaN, Infinity, comments and trailing commas are parse/syntax.
    found = problems(text, "json")
    assert codes(found) == [("parse", "syntax")]
    if loc is not None:
        assert (found[0].line, found[0].column) == loc
    assert found[0].line is not None and found[0].line >= 1
    assert found[0].column is not None and found[0].column >= 1


@pytest.mark.parametrize("text,loc", [
    ('{"a": "\\ud800"}', (1, 8)),
    ('{"\\uD800": 1}', (1, 3)),
    ('[1,\n "x\\udbff"]', (2, 4)),
    ('{"a": "\\ud800x\\ud83d\\ude00"}', (1, 8)),
])
def test_read_json_lone_surrogate_escape_rejected(text: str, loc: tuple[int, int]) -> None:
    # SPEC section 4: "str (a sequence of Unicode scalar values)"; a lone surrogate is none.
    found = problems(text, "json")
    assert codes(found) == [("parse", "syntax")]
    assert (found[0].line, found[0].column) == loc


def test_read_json_surrogate_pair_escape_passes() -> None:
    # SPEC section 4 passing case: a surrogate pair escape is one character.
    assert value_of('{"\\ud83d\\ude00": "\\uD800\\uDC00"}', "json") == {
        "\U0001F600": "\U00010000"}
    assert value_of('["\\\\ud800"]', "json") == ["\\ud800"]  # an escaped backslash


@pytest.mark.parametrize("text", ['{"a": "\\udc00"}', '{"\\uDFFF": 1}', '["\\ude00x"]'])
def test_read_json_lone_low_surrogate_escape_rejected(text: str) -> None:
    # SPEC section 4: a lone low surrogate is no Unicode scalar value either (first fixed for
    # high surrogates only, when `validate --format json` then still exited 70 on '\\udc00').
    assert codes(problems(text, "json")) == [("parse", "syntax")]


def test_read_json_lone_surrogate_located_after_a_valid_pair() -> None:
    # SPEC [errors.phase-code]: the error carries the line and column at fault.
    found = problems('{"a": "\\ud83d\\ude00", "b": "\\ud800"}', "json")
    assert (found[0].code, found[0].line, found[0].column) == ("syntax", 1, 29)


@pytest.mark.parametrize("text,loc", [
    ('{"note": "NaN here", "x": NaN}', (1, 27)),
    ('{"Infinity": 1, "x": Infinity}', (1, 22)),
    ('{"a": "-Infinity",\n "b": -Infinity}', (2, 7)),
])
def test_read_json_nan_located_outside_strings(text: str, loc: tuple[int, int]) -> None:
    # SPEC [read.json] + [errors.phase-code]: the error carries the line and column at fault.
    found = problems(text, "json")
    assert codes(found) == [("parse", "syntax")]
    assert (found[0].line, found[0].column) == loc


def test_read_json_lone_surrogate_in_yaml_and_toml_rejected() -> None:
    # SPEC section 4: the same escape in YAML and TOML is rejected (the consistent behaviour).
    assert codes(problems('a: "\\ud800"\n', "yaml")) == [("parse", "syntax")]
    assert codes(problems('a = "\\ud800"\n', "toml")) == [("parse", "syntax")]


# ---------------------------------------------------------------------------------- [read.toml]

@pytest.mark.parametrize("text,expected", [
    ("a = 1979-05-27T07:32:00Z", "1979-05-27T07:32:00Z"),
    ("a = 1979-05-27T07:32:00z", "1979-05-27T07:32:00Z"),
    ("a = 1979-05-27 07:32:00Z", "1979-05-27T07:32:00Z"),
    ("a = 1979-05-27T07:32:00+00:00", "1979-05-27T07:32:00Z"),
    ("a = 1979-05-27T00:32:00-07:00", "1979-05-27T00:32:00-07:00"),
    ("a = 1979-05-27T07:32:00", "1979-05-27T07:32:00"),
    ("a = 1979-05-27", "1979-05-27"),
    ("a = 07:32:00", "07:32:00"),
])
def test_read_toml_datetimes_are_rfc3339_text(text: str, expected: str) -> None:
    # SPEC [read.toml]: date-times, local dates and times are read as their RFC 3339 text.
    value = value_of(text + "\n", "toml")
    assert same(value, {"a": expected})


def test_read_toml_values() -> None:
    # SPEC [read.toml]: TOML 1.0 values map onto the spec's types.
    value = value_of('a = 1\nb = 1.0\nc = true\nd = "s"\ne = [1, 2.5]\n[t]\nx = -0.0\n'
                     "y = inf\nz = nan\nw = 0x1F\n", "toml")
    assert same(value, {"a": 1, "b": 1.0, "c": True, "d": "s", "e": [1, 2.5],
                        "t": {"x": -0.0, "y": INF, "z": NAN, "w": 31}})
    nested = value_of("[d]\nwhen = 1979-05-27T07:32:00Z\nlist = [1979-05-27]\n", "toml")
    assert nested == {"d": {"when": "1979-05-27T07:32:00Z", "list": ["1979-05-27"]}}


@pytest.mark.parametrize("text,expected", [
    ("a = 07:32:00.12", "07:32:00.12"), ("a = 07:32:00.000", "07:32:00"),
    ("a = 1979-05-27T07:32:00.123456789Z", "1979-05-27T07:32:00.123456789Z"),
    ("a = 1979-05-27T07:32:00.1234567890123Z", "1979-05-27T07:32:00.1234567890123Z"),
    ("a = 1979-05-27T07:32:00-00:00", "1979-05-27T07:32:00-00:00"),
    ("a = 1979-05-27t07:32:00.500+00:00", "1979-05-27T07:32:00.5Z"),
    ("a = [1979-05-27, 07:32:00.0, '1979-05-27'] # c", ["1979-05-27", "07:32:00", "1979-05-27"]),
    ("g = { a = 2000-01-01T00:00:00.100+05:30 }", "2000-01-01T00:00:00.1+05:30"),
    ("a = [\n  1979-05-27T00:00:00Z, # one\n  2000-02-29,\n]", ["1979-05-27T00:00:00Z",
                                                                "2000-02-29"]),
])
def test_read_toml_datetime_text_as_written(text: str, expected: Any) -> None:
    # SPEC [read.toml]: the fraction as written without trailing zeros (no truncation to
    # microseconds), `Z` for Z/z/+00:00, any other offset as written
    value = value_of(text + "\n", "toml")
    assert list(value.values()) == [expected if not isinstance(expected, str) or "g" not in
                                    value else {"a": expected}]


def test_read_toml_datetime_keys_and_strings_untouched() -> None:
    # SPEC [read.toml]: only values are date-times; a bare key or a string that looks like one
    # stays as it is
    value = value_of('1979-05-27 = 2\ns = """x = 1979-05-27\n"""\n[1979-05-28]\nt = 1\n', "toml")
    assert value == {"1979-05-27": 2, "s": "x = 1979-05-27\n", "1979-05-28": {"t": 1}}


@pytest.mark.parametrize("text", ["a = ", "a = 1979-13-27", "a = 'x", "[t\n", "a = 1 b = 2",
                                  "a = 1_", "a = 01"])
def test_read_toml_syntax_error(text: str) -> None:
    # SPEC [read.toml] failing case: not TOML 1.0 -> parse/syntax.
    assert codes(problems(text + "\n", "toml")) == [("parse", "syntax")]


# ---------------------------------------------------------------------------------- [read.duplicate-keys]

def test_read_duplicate_keys_yaml_both_reported() -> None:
    # SPEC [read.duplicate-keys] + [errors.all]: two duplicates in one file are both reported.
    found = problems("a: 1\na: 2\nb: 1\nb: 2\n")
    assert codes(found) == [("parse", "duplicate_key")] * 2
    assert [(d.line, d.column, d.pointer) for d in found] == [(2, 1, "/a"), (4, 1, "/b")]


@pytest.mark.parametrize("text,loc,pointer", [
    ("a: {x: 1, x: 2}\n", (1, 11), "/a/x"),
    ("a:\n  b: 1\n  b: 2\nc:\n  b: 1\n", (3, 3), "/a/b"),
    ("- k: 1\n  k: 1\n", (2, 3), "/0/k"),
    ('"a": 1\na: 2\n', (2, 1), "/a"),
    ("a: &x 1\n? a\n: 2\n", (2, 3), "/a"),
])
def test_read_duplicate_keys_yaml(text: str, loc: tuple[int, int], pointer: str) -> None:
    # SPEC [read.duplicate-keys]: also nested, in flow mappings and across quoting styles.
    found = problems(text)
    assert codes(found) == [("parse", "duplicate_key")]
    assert (found[0].line, found[0].column, found[0].pointer) == (*loc, pointer)


def test_read_duplicate_keys_yaml_distinct_keys_pass() -> None:
    # SPEC [read.duplicate-keys] passing case: equal keys in different mappings are fine.
    assert value_of("a: {x: 1}\nb: {x: 1}\nA: 1\n") == {"a": {"x": 1}, "b": {"x": 1}, "A": 1}


def test_read_duplicate_keys_json_both_reported() -> None:
    # SPEC [read.duplicate-keys]: json.loads would keep the last; the reader must not.
    found = problems('{"a": 1, "a": 2, "b": 1, "b": 2}', "json")
    assert codes(found) == [("parse", "duplicate_key")] * 2
    assert [(d.line, d.column, d.pointer) for d in found] == [(1, 10, "/a"), (1, 26, "/b")]


@pytest.mark.parametrize("text,loc,pointer", [
    ('{"x": {"a": 1, "a": 2}}', (1, 16), "/x/a"),
    ('{\n  "a": 1,\n  "\\u0061": 2\n}', (3, 3), "/a"),
    ('[{"k": 1}, {"k": 1, "k": 2}]', (1, 21), "/1/k"),
])
def test_read_duplicate_keys_json(text: str, loc: tuple[int, int], pointer: str) -> None:
    # SPEC [read.duplicate-keys]: nested, in lists, and spelled with an escape.
    found = problems(text, "json")
    assert codes(found) == [("parse", "duplicate_key")]
    assert (found[0].line, found[0].column, found[0].pointer) == (*loc, pointer)


@pytest.mark.parametrize("text,line", [
    ("a = 1\na = 2\n", 2),
    ('a = 1\nb = 2\n"a" = 3\n', 3),
    ("a.b = 1\na.b = 2\n", 2),
    ("[t]\nx = 1\nx = 2\n", 3),
    ("a = 1\n[a]\n", 2),
])
def test_read_duplicate_keys_toml(text: str, line: int) -> None:
    # SPEC [read.duplicate-keys] in TOML.
    found = problems(text, "toml")
    assert codes(found) == [("parse", "duplicate_key")]
    assert found[0].line == line


@pytest.mark.parametrize("text", [
    pytest.param("x = {a = 1, a = 2}\n", id="inline-table"),
    pytest.param("[t]\na = 1\n[t]\nb = 2\n", id="table-header-twice"),
])
def test_read_duplicate_keys_toml_inline_table_and_table_header(text: str) -> None:
    # SPEC [read.duplicate-keys]: "in every format".
    assert codes(problems(text, "toml")) == [("parse", "duplicate_key")]


# ---------------------------------------------------------------------------------- [read.aliases]

def test_read_aliases_allowed_and_expanded() -> None:
    # SPEC [read.aliases]: anchors and aliases are allowed; an alias stands for its value.
    value = value_of("base: &b {lr: 0.1, layers: [1, 2]}\ncopy: *b\nn: &n 3\nm: *n\n"
                     "s: &s x\nk:\n  *s : 1\n")
    assert same(value, {"base": {"lr": 0.1, "layers": [1, 2]},
                        "copy": {"lr": 0.1, "layers": [1, 2]}, "n": 3, "m": 3, "s": "x",
                        "k": {"x": 1}})


def test_read_aliases_anchor_redefined_uses_latest() -> None:
    # SPEC [read.aliases]: YAML 1.2 - an alias refers to the most recent anchor of its name.
    assert value_of("a: &x 1\nb: &x 2\nc: *x\n") == {"a": 1, "b": 2, "c": 2}


def test_read_aliases_undefined_alias_rejected() -> None:
    # SPEC [read.aliases] failing case: an alias with no anchor is a syntax error.
    found = problems("a: *nope\n")
    assert codes(found) == [("parse", "syntax")]
    assert (found[0].line, found[0].column) == (1, 4)


def test_read_aliases_anchor_on_a_key() -> None:
    # SPEC [read.aliases]: anchors and aliases are allowed (anchors on keys too).
    assert value_of("&k key: 1\nother: *k\n") == {"key": 1, "other": "key"}
    found = problems("&k key: 1\n*k : 2\n")  # the alias of a key, as a key: a duplicate
    assert codes(found) == [("parse", "duplicate_key")]


def _laughs(levels: int, fan: int = 10) -> str:
    lines = ['l0: &l0 "lol"']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * fan) + "]")
    return "\n".join(lines) + "\n"


def test_read_aliases_expansion_under_the_bound_passes() -> None:
    # SPEC [read.aliases]: 10**4 leaves after expansion is under the 100,000 bound.
    value = value_of(_laughs(4))
    assert len(value["l4"]) == 10 and value["l4"][0][0][0] == ["lol"] * 10


def test_read_aliases_alias_bomb_rejected() -> None:
    # SPEC [read.aliases]: a document expanding beyond the bound is parse/alias_limit.
    assert MAX_ALIAS_NODES == 100_000
    found = problems(_laughs(9))
    assert codes(found) == [("parse", "alias_limit")]
    assert found[0].line is not None and found[0].column is not None


def test_read_aliases_merge_key_rejected() -> None:
    # SPEC [read.aliases]: the YAML 1.1 merge key '<<' written plain is parse/merge_key.
    found = problems("base: &b {x: 1}\nuse:\n  <<: *b\n  y: 2\n")
    assert codes(found) == [("parse", "merge_key")]
    assert (found[0].line, found[0].column, found[0].pointer) == (3, 3, "/use")
    assert codes(problems("a: {<<: {x: 1}}\n")) == [("parse", "merge_key")]
    assert codes(problems("<<: 1\n")) == [("parse", "merge_key")]


@pytest.mark.parametrize("text", ['"<<": 1\n', "'<<': 1\n", "? \"<<\"\n: 1\n"])
def test_read_aliases_quoted_merge_key_is_a_plain_key(text: str) -> None:
    # SPEC [read.aliases]: only a *plain* '<<' is the merge key; quoted it is a string key.
    assert value_of(text) == {"<<": 1}


# ---------------------------------------------------------------------------------- [read.depth]

def _nested(fmt: str, containers: int) -> str:
    inner = "[" * (containers - 1) + "]" * (containers - 1)  # under a root mapping
    return {"yaml": f"a: {inner}\n", "json": f'{{"a": {inner}}}', "toml": f"a = {inner}\n"}[fmt]


@pytest.mark.parametrize("fmt", ["yaml", "json", "toml"])
def test_read_depth_bound(fmt: str) -> None:
    # SPEC [read.depth]: the reference tool's bound is 64 levels, the same in every format.
    assert MAX_DEPTH == 64
    value_of(_nested(fmt, 64), fmt)
    for containers in (65, 10_000):
        assert codes(problems(_nested(fmt, containers), fmt)) == [("parse", "depth_limit")]


def test_read_depth_yaml_block_mappings() -> None:
    # SPEC [read.depth]: block style counts too.
    text = "".join(" " * i + f"k{i}:\n" for i in range(200)) + " " * 200 + "v\n"
    found = problems(text)
    assert codes(found) == [("parse", "depth_limit")]
    assert found[0].line == 65


# ---------------------------------------------------------------------------------- [read.tags]

@pytest.mark.parametrize("text,expected", [
    ("!!str 1", "1"), ("!!str true", "true"), ("!!str", ""), ("!!str ~", "~"),
    ("!!float 1", 1.0), ("!!float -2", -2.0), ("!!float .5", 0.5), ("!!float .nan", NAN),
    ("!!float 1e400", INF), ("!!int 0x1F", 31), ("!!int +5", 5), ("!!int 0o17", 15),
    ("!!bool true", True), ("!!bool FALSE", False), ("!!null null", None), ("!!null ~", None),
    ("!!null ''", None), ("!<tag:yaml.org,2002:str> 1", "1"),
    ("!!map {a: 1}", {"a": 1}), ("!!seq [1]", [1]), ('!!str "x"', "x"),
])
def test_read_tags_core_schema_tags(text: str, expected: Any) -> None:
    # SPEC [read.tags]: the core schema's tags are allowed; `!!str 1` is "1", `!!float 1` 1.0.
    assert same(value_of(f"a: {text}\n")["a"], expected)


@pytest.mark.parametrize("text", [
    "!!int x", "!!int 1.0", "!!int ''", "!!int 1_000", "!!float abc", "!!bool yes",
    "!!bool 1", "!!null 0", "!!null false",
])
def test_read_tags_invalid_scalar(text: str) -> None:
    # SPEC [read.tags]: a tagged scalar not of its tag's form is parse/invalid_scalar.
    found = problems(f"a: {text}\n")
    assert codes(found) == [("parse", "invalid_scalar")]
    assert (found[0].line, found[0].column, found[0].pointer) == (1, 4, "/a")


@pytest.mark.parametrize("text", ["!!float 0x1F", "!!float 0o17"])
def test_read_tags_float_tag_on_hex_or_octal_text(text: str) -> None:
    # SPEC [read.tags] with the float row of [values.yaml-core].
    assert codes(problems(f"a: {text}\n")) == [("parse", "invalid_scalar")]


@pytest.mark.parametrize("text", [
    "!custom 1", "!custom {a: 1}", "!custom [1]", "!!binary aGk=", "!!timestamp 2001-12-14",
    "!!set {a}", "!!omap [a: 1]", "!!python/object:os.system x", "!<tag:example.com:x> 1",
    "! 1", "! {a: 1}", "! [1]", "!!str {a: 1}", "!!str [1]", "!!map [1]", "!!seq {a: 1}",
    "!!map 1", "!!seq 1",
])
def test_read_tags_unsupported_tag(text: str) -> None:
    # SPEC [read.tags]: any other tag is parse/unsupported_tag.
    found = problems(f"a: {text}\n")
    assert codes(found) == [("parse", "unsupported_tag")]
    assert (found[0].line, found[0].column) == (1, 4)


@pytest.mark.parametrize("text,code", [
    ("!!int 1: x\n", "complex_key"), ("!!null ~: x\n", "complex_key"),
    ("! 1: x\n", "unsupported_tag"), ("!custom a: x\n", "unsupported_tag"),
])
def test_read_keys_tagged_keys(text: str, code: str) -> None:
    # SPEC [read.keys], [read.tags]: only an untagged or `!!str` key is a string key.
    assert codes(problems(text)) == [("parse", code)]


def test_read_keys_str_tagged_key_is_the_string() -> None:
    # SPEC [read.keys]
    assert value_of("!!str 1: x\n") == {"1": "x"}


@pytest.mark.parametrize("text", ["", "\n\n", "# a comment\n"])
def test_read_yaml_zero_documents_rejected(text: str) -> None:
    # SPEC [read.yaml]: a file with no document is parse/syntax, not null.
    found = problems(text)
    assert codes(found) == [("parse", "syntax")]
    assert "no YAML document" in found[0].message


def test_read_yaml_lone_document_marker_is_null() -> None:
    # SPEC [read.yaml]: `---` alone is one document holding null.
    assert value_of("---\n") is None


def test_read_depth_counts_collections_not_scalars() -> None:
    # SPEC [read.depth]: depth 64 is 64 nested collections with a scalar at the bottom;
    # a root scalar is depth 0.
    assert value_of("[" * 64 + "1" + "]" * 64, "json") is not None
    assert value_of("1", "json") == 1
    assert codes(problems("[" * 64 + "{}" + "]" * 64, "json")) == [("parse", "depth_limit")]
    assert codes(problems("[" * 64 + "[]" + "]" * 64)) == [("parse", "depth_limit")]


def test_read_tags_tag_directive_rejected() -> None:
    # SPEC [read.tags]: a %TAG shorthand resolving outside the core schema is unsupported.
    found = problems("%TAG !e! tag:example.com,2000:\n---\na: !e!x 1\n")
    assert codes(found) == [("parse", "unsupported_tag")]


# ---------------------------------------------------------------------------------- [read.yaml]

@pytest.mark.parametrize("text", ["%YAML 1.2\n---\na: 1\n", "---\na: 1\n", "---\na: 1\n...\n",
                                  "a: 1\n...\n", "# only a comment\na: 1\n"])
def test_read_yaml_one_document_and_yaml_1_2(text: str) -> None:
    # SPEC [read.yaml]: exactly one document; %YAML 1.2 is accepted.
    assert value_of(text) == {"a": 1}


def test_read_yaml_1_1_directive_rejected() -> None:
    # SPEC [read.yaml]: a %YAML directive other than 1.2 is parse/yaml_version.
    found = problems("%YAML 1.1\n---\na: 1\n")
    assert codes(found) == [("parse", "yaml_version")]
    assert (found[0].line, found[0].column) == (1, 1)


@pytest.mark.parametrize("version", ["1.0", "1.3", "2.0", "1.20"])
def test_read_yaml_other_versions_rejected_as_yaml_version(version: str) -> None:
    # SPEC [read.yaml]: "a %YAML directive other than %YAML 1.2 MUST be rejected
    # (parse/yaml_version)".
    found = problems(f"%YAML {version}\n---\na: 1\n")
    assert codes(found) == [("parse", "yaml_version")]
    assert (found[0].line, found[0].column) == (1, 1)


def test_read_yaml_percent_yaml_inside_a_quoted_scalar_is_content() -> None:
    # SPEC [read.yaml]: only a directive is a directive.
    assert value_of('"a\n%YAML 1.1 b"\n') == "a %YAML 1.1 b"


@pytest.mark.parametrize("text,line", [
    ("a: 1\n---\nb: 2\n", 2), ("--- 1\n--- 2\n", 2), ("a: 1\n...\n---\nb: 1\n", 3),
    ("---\n---\n", 2),
])
def test_read_yaml_two_documents_rejected(text: str, line: int) -> None:
    # SPEC [read.yaml]: a YAML file MUST hold exactly one document.
    found = problems(text)
    assert codes(found) == [("parse", "syntax")]
    assert found[0].line == line


@pytest.mark.parametrize("text,line", [
    ("a:\n\tb: 1\n", 2), ("a: 1\n\tb: 2\n", 2), ("x: 1\ny:\n  z:\n\t\tw: 1\n", 4),
    ("- a\n\t- b\n", 2),
])
def test_read_yaml_tab_indentation_is_a_syntax_error(text: str, line: int) -> None:
    # SPEC [read.yaml]: tabs are not indentation; the message says so.
    found = problems(text)
    assert codes(found) == [("parse", "syntax")]
    assert found[0].line == line and found[0].column is not None
    assert "tab" in found[0].message.lower()


@pytest.mark.parametrize("text,expected", [
    ("a:\t1\n", {"a": 1}), ("a: x\ty\n", {"a": "x\ty"}), ('a: "x\ty"\n', {"a": "x\ty"}),
    ("a: 1\t# comment\n", {"a": 1}),
])
def test_read_yaml_tabs_that_are_not_indentation_pass(text: str, expected: Any) -> None:
    # SPEC [read.yaml] passing case: tabs as separation or content are fine.
    assert same(value_of(text), expected)


@pytest.mark.parametrize("text,loc", [
    ('a: "x\x85y"\n', (1, 6)),
    ("a: x\u2028y\n", (1, 5)),
    ("a: 1\nb: 'x\u2029'\n", (2, 6)),
    ("# comment \u2028\na: 1\n", (1, 11)),
    ("a: |\n  x\x85\n", (2, 4)),
])
def test_read_yaml_unescaped_yaml11_line_breaks_rejected(text: str,
                                                         loc: tuple[int, int]) -> None:
    # SPEC [read.yaml]: U+0085, U+2028, U+2029 unescaped MUST be rejected (parse/syntax).
    found = problems(text)
    assert codes(found) == [("parse", "syntax")]
    assert (found[0].line, found[0].column) == loc


@pytest.mark.parametrize("text,expected", [
    ('a: "\\N"\n', "\x85"), ('a: "\\L"\n', "\u2028"), ('a: "\\P"\n', "\u2029"),
    ('a: "\\u2028\\u2029\\x85"\n', "\u2028\u2029\x85"),
])
def test_read_yaml_escaped_yaml11_line_breaks_are_content(text: str, expected: str) -> None:
    # SPEC [read.yaml] passing case: written as escapes in a double-quoted string.
    assert same(value_of(text)["a"], expected)


def test_read_yaml_line_breaks_are_fine_in_json() -> None:
    # SPEC [read.yaml] is about YAML: JSON strings may hold these characters raw.
    assert value_of('{"a": "x\u2028\x85y"}', "json") == {"a": "x\u2028\x85y"}


def test_read_yaml_empty_document_is_null() -> None:
    # SPEC [values.yaml-core], [read.yaml]: an empty document (after `---`) is null; an empty
    # file is no document at all (test_read_yaml_zero_documents_rejected).
    assert value_of("--- # nothing\n") is None
    assert value_of("---\n...\n") is None


# ---------------------------------------------------------------------------------- [read.encoding]

def test_read_encoding_valid_utf8_passes() -> None:
    # SPEC [read.encoding] passing case.
    text = "a: é\nb: \U0001F600\nc: \ue000\n"
    assert decode(text.encode("utf-8"), display="f") == text
    assert value_of(text) == {"a": "é", "b": "\U0001F600", "c": "\ue000"}


@pytest.mark.parametrize("data", [
    b"\xef\xbb\xbfa: 1\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf{}",
])
def test_read_encoding_bom_rejected(data: bytes) -> None:
    # SPEC [read.encoding]: a file that starts with a byte-order mark is parse/bom.
    with pytest.raises(SpecError) as info:
        decode(data, display="f")
    [d] = info.value.diagnostics
    assert (d.phase, d.code, d.line, d.column) == ("parse", "bom", 1, 1)


def test_read_encoding_bom_later_in_file_is_content() -> None:
    # SPEC [read.encoding]: only a *leading* BOM is rejected.
    assert decode("a: x\ufeff\n".encode(), display="f") == "a: x\ufeff\n"


@pytest.mark.parametrize("data,loc", [
    (b"a: 1\nb: 2\nc: ab\xffcd\n", (3, 6)),  # in the middle of line 3
    (b"\xff", (1, 1)),
    (b"a: 1\n\x80\n", (2, 1)),
    (b"abc\xc3", (1, 4)),  # truncated two-byte sequence at end of file
    (b"a\r\nb\r\nxy\xe2\x82z\r\n", (3, 3)),  # truncated three-byte sequence, CRLF lines
    (b"x\n\xed\xa0\x80\n", (2, 1)),  # an encoded surrogate is not UTF-8
    (b"x\n\n\n  \xc0\xaf\n", (4, 3)),  # an overlong encoding
    (b"x\n\xf4\x90\x80\x80\n", (2, 1)),  # above U+10FFFF
    (b"x: 1\ny: 2\nz: \xfe\n", (3, 4)),
])
def test_read_encoding_invalid_utf8_position(data: bytes, loc: tuple[int, int]) -> None:
    # SPEC [read.encoding]: invalid UTF-8 is parse/invalid_utf8 at the first invalid byte,
    # 1-based line and column.
    with pytest.raises(SpecError) as info:
        decode(data, display="f")
    [d] = info.value.diagnostics
    assert (d.phase, d.code, d.line, d.column) == ("parse", "invalid_utf8", *loc)


def test_read_encoding_through_load(tmp_path: Path) -> None:
    # SPEC [read.encoding]: the same through the file reader, with the display name.
    p = tmp_path / "p.yaml"
    p.write_bytes(b"a: 1\nb: 2\nc: ab\xffcd\n")
    with pytest.raises(SpecError) as info:
        load(p, display="p.yaml", fmt="yaml", limit=1 << 20)
    [d] = info.value.diagnostics
    assert (d.file, d.phase, d.code, d.line, d.column) == ("p.yaml", "parse", "invalid_utf8",
                                                           3, 6)


# ---------------------------------------------------------------------------------- [read.size]

def test_read_size_at_the_limit_passes(tmp_path: Path) -> None:
    # SPEC [read.size] passing case: a file of exactly `limit` bytes is read.
    p = tmp_path / "f.yaml"
    p.write_bytes(b"a: 12345\n")
    assert read_bytes(p, display="f.yaml", limit=9) == b"a: 12345\n"
    assert load(p, display="f.yaml", fmt="yaml", limit=9).value == {"a": 12345}


def test_read_size_over_the_limit_rejected(tmp_path: Path) -> None:
    # SPEC [read.size]: over the limit is parse/too_large.
    p = tmp_path / "f.yaml"
    p.write_bytes(b"a: 123456\n")
    with pytest.raises(SpecError) as info:
        read_bytes(p, display="f.yaml", limit=9)
    [d] = info.value.diagnostics
    assert (d.file, d.phase, d.code) == ("f.yaml", "parse", "too_large")


def test_read_size_huge_file_refused_without_reading(tmp_path: Path) -> None:
    # SPEC [read.size]: "without reading them": a sparse 3 GiB file is refused with next to
    # no memory allocated (reading even the first 16 MiB would show in the peak).
    p = tmp_path / "params.yaml"
    with open(p, "wb") as f:
        f.truncate(3 * 1024**3)
    tracemalloc.start()
    try:
        with pytest.raises(SpecError) as info:
            load(p, display="params.yaml", fmt="yaml", limit=16 * 1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert codes(info.value.diagnostics) == [("parse", "too_large")]
    assert peak < 1024 * 1024, peak


def test_read_io_errors(tmp_path: Path) -> None:
    # SPEC [errors.phase-code]: a missing file and a directory are io errors.
    with pytest.raises(SpecError) as info:
        read_bytes(tmp_path / "nope.yaml", display="nope.yaml", limit=10)
    assert codes(info.value.diagnostics) == [("io", "file_not_found")]
    with pytest.raises(SpecError) as info:
        read_bytes(tmp_path, display="dir", limit=10)
    assert codes(info.value.diagnostics) == [("io", "not_a_file")]


# ---------------------------------------------------------------------------------- [values.float-text]

FLOAT_TEXT = [
    (1e-7, "1e-7"), (1e21, "1e+21"), (1e20, "100000000000000000000"),
    (0.000001, "0.000001"), (1.5e-6, "0.0000015"), (math.nextafter(1e-6, 0), "9.999999999999997e-7"),
    (100.0, "100"), (1.0, "1"), (-1.0, "-1"), (0.0, "0"), (-0.0, "0"),
    (NAN, "NaN"), (INF, "Infinity"), (-INF, "-Infinity"),
    (0.1, "0.1"), (-0.1, "-0.1"), (1 / 3, "0.3333333333333333"), (2 / 3, "0.6666666666666666"),
    (5e-324, "5e-324"), (-5e-324, "-5e-324"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (123456789012345680000.0, "123456789012345680000"),
    (1.5e300, "1.5e+300"), (1.2345e-7, "1.2345e-7"), (123.456, "123.456"),
    (2.0**53, "9007199254740992"), (1e22, "1e+22"), (999999999999999900000.0,
                                                    "999999999999999900000"),
    (0.30000000000000004, "0.30000000000000004"), (4.35, "4.35"),
]


@pytest.mark.parametrize("value,text", FLOAT_TEXT, ids=[t for _, t in FLOAT_TEXT])
def test_values_float_text_vectors(value: float, text: str) -> None:
    # SPEC [values.float-text]: ECMAScript Number::toString.
    assert float_text(value) == text


def test_values_float_text_is_not_python_repr() -> None:
    # SPEC [values.float-text] failing case: Python's repr differs and must not leak through.
    for value in (1e-7, 100.0, -0.0, NAN, INF, 1e-6):
        assert float_text(value) != repr(value)


# ---------------------------------------------------------------------------------- [values.typed-tree]

def test_values_typed_tree_shapes() -> None:
    # SPEC [values.typed-tree]
    value = {"n": None, "b": True, "i": 9007199254740993, "f": 1.0, "s": "1", "l": [1, 1.0],
             "m": {"x": -0.0, "y": NAN}}
    assert typed_tree(value) == {"map": {
        "b": {"bool": True}, "f": {"float": "1"}, "i": {"int": "9007199254740993"},
        "l": {"list": [{"int": "1"}, {"float": "1"}]},
        "m": {"map": {"x": {"float": "0"}, "y": {"float": "NaN"}}},
        "n": {"null": None}, "s": {"str": "1"}}}
    back = from_typed_tree(typed_tree(value))
    assert canonical_equal(back, value)
    assert type(back["i"]) is int and type(back["f"]) is float and type(back["b"]) is bool


def test_values_typed_tree_rejects_non_values() -> None:
    # SPEC section 4 failing case: only the seven kinds of value exist.
    for bad in ((1, 2), {1, 2}, b"x", object(), {"a": (1,)}):
        with pytest.raises(TypeError):
            typed_tree(bad)


# ---------------------------------------------------------------------------------- [values.strict-types]

@pytest.mark.parametrize("a,b", [
    (1, 1.0), (1, True), (1, "1"), (1.0, True), (1.0, "1"), (True, "true"), (None, "null"),
    (None, False), (0, False), (0, None), ([], {}), ([1], [1.0]), ({"a": 1}, {"a": 1.0}),
    ({"a": 1}, {"a": True}), ("", None), (0.1, 0.1 + 1e-17 * 2), (1, 2), ("a", "b"),
    ({"a": 1}, {"b": 1}), ([1, 2], [2, 1]),
])
def test_values_strict_types_differ(a: Any, b: Any) -> None:
    # SPEC [values.strict-types], [values.float-equality]: no coercion, no tolerance.
    assert not canonical_equal(a, b)
    assert not canonical_equal(b, a)
    assert params_digest(a) != params_digest(b)


@pytest.mark.parametrize("a,b", [
    (NAN, NAN), (NAN, -NAN), (-0.0, 0.0), (1, 1), (1.0, 1.0), ("x", "x"), (None, None),
    ({"a": 1, "b": 2}, {"b": 2, "a": 1}), ([NAN], [float("nan")]), (INF, 1e400),
])
def test_values_strict_types_equal(a: Any, b: Any) -> None:
    # SPEC [values.float-equality]: NaN equals NaN, -0.0 equals 0.0.
    assert canonical_equal(a, b)
    assert params_digest(a) == params_digest(b)


# ---------------------------------------------------------------------------------- [values.jcs]

def test_values_jcs_utf16_order_trap() -> None:
    # SPEC [values.jcs]: UTF-16 code units, not code points: U+10000 (D800 DC00) sorts before
    # U+E000.
    assert jcs({"\ue000": 1, "\U00010000": 2}) == '{"\U00010000":2,"\ue000":1}'.encode()
    assert sorted(["\ue000", "\U00010000"]) == ["\ue000", "\U00010000"]  # code point order


def test_values_jcs_rfc8785_sort_example() -> None:
    # SPEC [values.jcs]: the property sorting example of RFC 8785 section 3.2.3.
    value = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter",
             "1": "One", "\U0001F600": "Emoji", "\u0080": "Control", "\u00f6": "o umlaut"}
    keys = list(json.loads(jcs(value)))
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001F600", "\ufb33"]


def test_values_jcs_escapes() -> None:
    # SPEC [values.jcs]: \" \\ \b \f \n \r \t, other code points below U+0020 as lowercase
    # \u00xx, everything else (DEL, U+2028, '/', non-ASCII) as itself in UTF-8.
    s = "\"\\\b\f\n\r\t\x00\x01\x0b\x1a\x1f /\x7f\u2028\u00e9\U0001F600"
    expected = ('"\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u0001\\u000b\\u001a\\u001f /\x7f\u2028'
                '\u00e9\U0001F600"')
    assert jcs(s) == expected.encode("utf-8")
    assert jcs({"\x1f": "\x1e"}) == b'{"\\u001f":"\\u001e"}'


def test_values_jcs_no_whitespace() -> None:
    # SPEC [values.jcs]
    assert jcs({"b": [1, 2, {"d": None, "c": True}], "a": "x"}) == \
        b'{"a":"x","b":[1,2,{"c":true,"d":null}]}'
    assert jcs([]) == b"[]" and jcs({}) == b"{}" and jcs(0) == b"0" and jcs(False) == b"false"


@pytest.mark.parametrize("bad", [1.5, -1, [0.0], {"a": -5}])
def test_values_jcs_refuses_floats_and_negative_ints(bad: Any) -> None:
    # SPEC [values.jcs] failing case: canonical bytes only of floats-free, non-negative data.
    with pytest.raises(TypeError):
        jcs(bad)


# ---------------------------------------------------------------------------------- [params.digest]

def test_params_digest_independent_vector() -> None:
    # SPEC [params.digest]: sha256 of the JCS bytes of the typed value tree, computed by hand.
    expected = b'{"map":{"a":{"int":"1"},"b":{"list":[{"float":"1"},{"null":null}]}}}'
    assert params_digest({"b": [1.0, None], "a": 1}) == \
        "sha256:" + hashlib.sha256(expected).hexdigest()


PARAMS_YAML = """\
# comments and formatting do not matter
train:
  lr: 1e-3
  epochs: 10
  layers: [64, 32]
  name: 'resnet'
  dropout: .5
  flags: {amp: true, ema: false}
  big: 9007199254740993
  tiny: 5.0e-324
prepare:
  seed: 0x2A
  "\\ue000": private
  "\\U00010000": astral
"""

PARAMS_JSON = """{"prepare": {"\\ud800\\udc00": "astral", "seed": 42, "\\ue000": "private"},
 "train": {"tiny": 5e-324, "big": 9007199254740993, "flags": {"ema": false, "amp": true},
  "dropout": 0.5, "name": "resnet", "layers": [64, 32], "epochs": 10, "lr": 0.001}}"""

PARAMS_TOML = """\
[prepare]
"\\uE000" = "private"
seed = 42
"\\U00010000" = "astral"

[train]
tiny = 4.9406564584124654e-324
big = 9_007_199_254_740_993
layers = [ 64, 32 ]
name = "resnet"
lr = 0.001
dropout = 5e-1
epochs = +10
flags.amp = true
flags.ema = false
"""


def test_params_digest_same_data_in_yaml_json_toml() -> None:
    # SPEC [params.digest]: key order, quoting, comments and formatting never matter.
    values = [value_of(PARAMS_YAML, "yaml"), value_of(PARAMS_JSON, "json"),
              value_of(PARAMS_TOML, "toml")]
    digests = {params_digest(v) for v in values}
    assert len(digests) == 1, values
    for v in values[1:]:
        assert canonical_equal(v, values[0])
    for pointer in ("/train", "/train/lr", "/prepare/\ue000", "/train/flags"):
        assert len({params_digest(resolve_pointer(v, pointer)) for v in values}) == 1


def test_params_digest_sensitive_to_int_vs_float() -> None:
    # SPEC [params.digest] + [values.strict-types]: 1 -> 1.0 is a change.
    a = value_of("train:\n  epochs: 1\n")
    b = value_of("train:\n  epochs: 1.0\n")
    c = value_of('{"train": {"epochs": 1.0}}', "json")
    assert params_digest(a) != params_digest(b)
    assert params_digest(b) == params_digest(c)
    assert params_digest(a) != params_digest(value_of("train:\n  epochs: true\n"))
    assert params_digest(a) != params_digest(value_of("train:\n  epochs: '1'\n"))


# ---------------------------------------------------------------------------------- [params.pointer]

POINTER_DOC = {"a/b": 1, "m~n": 2, "~1": 3, "opt": {"lr.max": 4, "": 5},
               "l": [10, 20, [30, {"k": 40}]], "": 6, "0": 7, "train": {"lr": 0.1}}


@pytest.mark.parametrize("pointer,expected", [
    ("/train/lr", 0.1), ("/a~1b", 1), ("/m~0n", 2), ("/~01", 3), ("/opt/lr.max", 4),
    ("/opt/", 5), ("/", 6), ("/0", 7), ("/l/0", 10), ("/l/1", 20), ("/l/2/0", 30),
    ("/l/2/1/k", 40), ("/l", [10, 20, [30, {"k": 40}]]), ("/opt", {"lr.max": 4, "": 5}),
])
def test_params_pointer_resolves(pointer: str, expected: Any) -> None:
    # SPEC [params.pointer]: RFC 6901 with ~0 and ~1; keys with dots; 0-based list indexes.
    assert resolve_pointer(POINTER_DOC, pointer) == expected


@pytest.mark.parametrize("pointer,token", [
    ("/l/01", "01"), ("/l/00", "00"), ("/l/3", "3"), ("/l/-", "-"), ("/l/-1", "-1"),
    ("/l/+1", "+1"), ("/l/1.0", "1.0"), ("/x", "x"), ("/train/lr/x", "x"),
    ("/opt/lr/max", "lr"), ("/a/b", "a"), ("/train/LR", "LR"),
])
def test_params_pointer_missing_raises_keyerror(pointer: str, token: str) -> None:
    # SPEC [params.pointer] failing case: leading zeros are not indexes; missing -> KeyError.
    with pytest.raises(KeyError) as info:
        resolve_pointer(POINTER_DOC, pointer)
    assert info.value.args[0] == token


@pytest.mark.parametrize("token", ["\u0661", "\uff11", "\u00b9"])
def test_params_pointer_index_is_ascii_digits_only(token: str) -> None:
    # SPEC [params.pointer]: an index is ASCII `0|[1-9][0-9]*` (RFC 6901).
    with pytest.raises(KeyError):
        resolve_pointer({"l": [10, 20]}, "/l/" + token)


@pytest.mark.parametrize("pointer", ["", "train/lr", "#/train"])
def test_params_pointer_must_start_with_slash(pointer: str) -> None:
    # SPEC [params.pointer]: "A pointer MUST start with /".
    with pytest.raises(ValueError):
        resolve_pointer(POINTER_DOC, pointer)


def test_params_pointer_text_round_trip() -> None:
    # SPEC [params.pointer]: pointer_for / pointer_of escape, pointer_tokens unescape.
    for tokens in (["a/b", "~", "~1", "x.y"], ["", "0"], ["\U0001F600"]):
        text = pointer_for(*tokens)
        assert pointer_tokens(text) == tokens
        assert pointer_of(tuple(tokens)) == text
    assert pointer_for("a/b", "m~n") == "/a~1b/m~0n"


# ---------------------------------------------------------------------------------- properties

@DETERMINISTIC
@given(st.floats(allow_nan=False))
def test_property_float_text_round_trips(x: float) -> None:
    # SPEC [values.float-text]: the canonical text round-trips to the same binary64
    # (-0.0 reads back as 0.0, which is equal to it).
    text = float_text(x)
    assert float(text.replace("Infinity", "inf")) == x


@DETERMINISTIC
@given(st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: v != 0))
def test_property_float_text_form(x: float) -> None:
    # SPEC [values.float-text]: exponent form exactly when the exponent is below -6 or at
    # least 21, the shortest round-trip digits, and no '+' or trailing '.0'.
    text = float_text(x)
    assert ("e" in text) == (not 1e-6 <= abs(x) < 1e21), text
    assert not text.endswith(".0") and "+" not in text.split("e")[0] and " " not in text
    mantissa = text.lstrip("-").split("e")[0].replace(".", "").strip("0")
    shortest = repr(abs(x)).split("e")[0].replace(".", "").strip("0")
    assert mantissa == shortest


@DETERMINISTIC
@given(st.floats(allow_nan=True).filter(math.isnan))
def test_property_float_text_nan(x: float) -> None:
    # SPEC [values.float-text]: every NaN (any sign or payload) is "NaN".
    assert float_text(x) == "NaN"
    assert float_text(-x) == "NaN"


# Keys mixing ASCII, astral characters and BMP private-use characters (the UTF-16 trap).
KEY_CHARS = st.sampled_from(["a", "b", "Z", "0", "é", "\u20ac", "\ue000", "\uf8ff", "\uffef",
                             "\U00010000", "\U0001F600", "\U0010FFFD", "\ufb33", " ", "/",
                             "~", ".", "<", "\x1f"])
KEYS = st.one_of(st.text(KEY_CHARS, max_size=4), st.text(max_size=4))
# Text that exercises the escapes of [values.jcs] and of YAML.
AWKWARD_TEXT = st.lists(st.sampled_from(["\x00", "\x1f", "\x7f", "\x85", "\u2028", "\u2029",
                                        "\ufeff", "\"", "\\", "'", "#", ": ", "- ", "\t", "\n",
                                        "\r", "a", "\U0001F600"]), max_size=6).map("".join)
HUGE_INTS = st.sampled_from([2**63, -(2**63) - 1, 2**64 + 1, 10**100, -(10**200) + 7,
                             9007199254740993, int("9" * 400)])


def values_strategy(*, finite: bool = False) -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(), HUGE_INTS,
        st.floats(allow_nan=not finite, allow_infinity=not finite),
        st.text(max_size=8), st.text(KEY_CHARS, max_size=6), AWKWARD_TEXT,
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(st.lists(children, max_size=4),
                                   st.dictionaries(KEYS, children, max_size=5)),
        max_leaves=25,
    )


@DETERMINISTIC
@given(values_strategy())
def test_params_digest_is_the_digest_of_the_jcs_of_the_typed_tree(value: Any) -> None:
    # SPEC [params.digest], computed without building the typed tree (issue 18): the same
    # bytes as the definition, for every kind of value, key order and awkward text
    from reftool.files.values import _typed_jcs_text
    assert _typed_jcs_text(value).encode("utf-8") == jcs(typed_tree(value))
    assert params_digest(value) == sha256_digest(jcs(typed_tree(value)))


def test_params_digest_rejects_non_values() -> None:
    # SPEC section 4 failing case, as typed_tree
    for bad in ((1, 2), {1, 2}, b"x", object(), {"a": (1,)}, [1.5, {"a": b"x"}]):
        with pytest.raises(TypeError):
            params_digest(bad)


def reorder(value: Any, rnd: random.Random) -> Any:
    """The same value with every mapping's keys in a random order."""
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: reorder(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [reorder(v, rnd) for v in value]
    return value


def int_leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in int_leaf_paths(v, path + (k,))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in int_leaf_paths(v, path + (i,))]
    if type(value) is int and abs(value) < 10**300:
        return [path]
    return []


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: (replaced(v, rest, new) if k == head else v) for k, v in value.items()}
    return [replaced(v, rest, new) if i == head else v for i, v in enumerate(value)]


@DETERMINISTIC
@given(values_strategy(), st.randoms(use_true_random=False))
def test_property_params_digest_ignores_key_order(value: Any, rnd: random.Random) -> None:
    # SPEC [params.digest]: key order never matters (UTF-16 order is applied, whatever the
    # insertion order).
    shuffled = reorder(value, rnd)
    assert params_digest(shuffled) == params_digest(value)
    assert jcs(typed_tree(shuffled)) == jcs(typed_tree(value))
    assert canonical_equal(shuffled, value)


@DETERMINISTIC
@given(values_strategy(), st.data())
def test_property_params_digest_sees_int_to_float(value: Any, data: st.DataObject) -> None:
    # SPEC [params.digest] + [values.strict-types]: one leaf changing type int -> float (equal
    # as numbers) changes the digest.
    paths = int_leaf_paths(value)
    assume(paths)
    path = data.draw(st.sampled_from(paths))
    leaf = resolve_path(value, path)
    changed = replaced(value, path, float(leaf))
    assert params_digest(changed) != params_digest(value)
    assert not canonical_equal(changed, value)


def resolve_path(value: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        value = value[p]
    return value


@DETERMINISTIC
@given(values_strategy())
def test_property_typed_tree_round_trip(value: Any) -> None:
    # SPEC [values.typed-tree]: the typed tree keeps every type; its JSON form is lossless.
    tree = typed_tree(value)
    assert canonical_equal(from_typed_tree(tree), value)
    assert typed_tree(from_typed_tree(tree)) == tree
    assert json.loads(jcs(tree)) == tree


# Characters a YAML 1.2 double-quoted scalar may not hold raw (outside c-printable), and
# U+0085, U+2028, U+2029, which [read.yaml] requires escaped: these are written as \u
# escapes, which both JSON and YAML read.
def _yaml_needs_escape(c: str) -> bool:
    o = ord(c)
    return (o < 0x20 and c not in "\t\n\r") or 0x7F <= o <= 0x9F or o in (0xFFFE, 0xFFFF) \
        or 0xD800 <= o <= 0xDFFF or o in (0x2028, 0x2029)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def json_for_yaml(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return "".join(f"\\u{ord(c):04x}" if _yaml_needs_escape(c) else c for c in text)


@DETERMINISTIC
@given(values_strategy(finite=True))
def test_property_json_text_reads_the_same_as_json_and_as_yaml(value: Any) -> None:
    # SPEC [read.json], [read.yaml], [values.yaml-core], [params.digest]: JSON text (without
    # NaN/infinities, which JSON cannot write) is YAML 1.2; read either way it is the same
    # value with the same digest.
    assume(depth(value) < MAX_DEPTH)
    text = json_for_yaml(value)
    as_json = value_of(text, "json")
    as_yaml = value_of(text, "yaml")
    assert canonical_equal(as_json, value), text
    assert canonical_equal(as_yaml, value), text
    assert params_digest(as_json) == params_digest(as_yaml) == params_digest(value)


def test_hypothesis_settings_are_deterministic() -> None:
    # The property tests above must not depend on a random seed or a local example database.
    assert DETERMINISTIC.derandomize and DETERMINISTIC.database is None
    assert sys.version_info >= (3, 11)


@pytest.mark.parametrize("expr,accessors", [("a[0]", [0]), ("a[10]", [10]), ("a[1][2]", [1, 2])])
def test_template_index_without_leading_zero(expr: str, accessors: list[int]) -> None:
    # SPEC [template.syntax]: INDEX is `0|[1-9][0-9]*`, the same indices as [params.pointer].
    from reftool.files.load import parse_expression
    assert parse_expression(expr) == ("a", accessors)


@pytest.mark.parametrize("expr", ["a[01]", "a[00]", "a[007]"])
def test_template_index_with_leading_zero_is_template_syntax(expr: str) -> None:
    # SPEC [template.syntax]: `${a[01]}` is no index (RFC 6901), so the pointer `/a/01` and
    # the template agree.
    from reftool.files.load import TemplateError, parse_expression
    with pytest.raises(TemplateError) as info:
        parse_expression(expr)
    assert info.value.code == "template_syntax"


# ---------------------------------------------------------------------------------- the cache

def _cache_with(tmp_path: Path, files: dict[str, str]) -> tuple[Any, dict[str, str]]:
    """A document cache at tmp_path that has read `files` (name -> YAML text), in order;
    returns it with each file's digest."""
    from reftool.files.documents import DocumentCache
    cache = DocumentCache.open(tmp_path, "stamp")
    digests = {}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        digests[name] = load(tmp_path / name, display=name, fmt="yaml", limit=1 << 20,
                             cache=cache).digest
    return cache, digests


def _saved(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / ".reftool" / "documents.json").read_text())["entries"]


def test_document_cache_keeps_only_the_latest_bytes_of_a_file(tmp_path: Path) -> None:
    (tmp_path / ".reftool").mkdir()
    cache, first = _cache_with(tmp_path, {"p.yaml": "a: 1\n", "q.yaml": "b: 1\n"})
    _, second = _cache_with(tmp_path, {})  # nothing saved yet: a fresh cache is empty
    assert second == {}
    cache.save()
    cache, again = _cache_with(tmp_path, {"p.yaml": "a: 2\n"})  # p.yaml edited
    cache.save()
    kept = _saved(tmp_path)
    assert again["p.yaml"] in kept and first["q.yaml"] in kept
    assert first["p.yaml"] not in kept  # the old version of p.yaml is gone
    assert len(kept) == 2


def test_document_cache_hit_refreshes_the_eviction_order(tmp_path: Path) -> None:
    from reftool.files.documents import DocumentCache
    (tmp_path / ".reftool").mkdir()
    keep = DocumentCache.KEEP
    cache, digests = _cache_with(tmp_path, {f"f{i}.yaml": f"x: {i}\n" for i in range(keep)})
    cache.save()
    # f0.yaml is used again (a hit), then one new file comes: the least recently used
    # entry, f1.yaml, is the one to go, not f0.yaml
    cache, _ = _cache_with(tmp_path, {"f0.yaml": "x: 0\n", "new.yaml": "y: 1\n"})
    cache.save()
    kept = _saved(tmp_path)
    assert digests["f0.yaml"] in kept
    assert digests["f1.yaml"] not in kept
    assert len(kept) == keep


def test_document_cache_unchanged_is_not_rewritten(tmp_path: Path) -> None:
    (tmp_path / ".reftool").mkdir()
    cache, _ = _cache_with(tmp_path, {"p.yaml": "a: 1\n", "q.yaml": "b: 1\n"})
    cache.save()
    saved = tmp_path / ".reftool" / "documents.json"
    before = saved.stat().st_mtime_ns, saved.stat().st_ino
    cache, _ = _cache_with(tmp_path, {"p.yaml": "a: 1\n", "q.yaml": "b: 1\n"})  # same order
    cache.save()
    assert (saved.stat().st_mtime_ns, saved.stat().st_ino) == before
    cache, _ = _cache_with(tmp_path, {"q.yaml": "b: 1\n", "p.yaml": "a: 1\n"})  # reordered
    cache.save()
    assert list(_saved(tmp_path)) == [hashlib.sha256(b"b: 1\n").hexdigest(),
                                      hashlib.sha256(b"a: 1\n").hexdigest()]


def test_document_cache_remembers_a_written_file_as_valid(tmp_path: Path) -> None:
    from reftool.files.documents import DocumentCache
    (tmp_path / ".reftool").mkdir()
    cache = DocumentCache.open(tmp_path, "stamp")
    data = b'{\n  "stages": {},\n  "version": "1.0"\n}\n'
    cache.remember_written(data, "json", "lock", "pipeline.lock")
    digest = hashlib.sha256(data).hexdigest()
    assert cache.is_valid(digest, "lock") and not cache.is_valid(digest, "pipeline")
    assert cache.value(digest, "json") == {"stages": {}, "version": "1.0"}
    cache.remember_written(b"{oops", "json", "lock", "pipeline.lock")  # not JSON: not kept
    assert not cache.is_valid(hashlib.sha256(b"{oops").hexdigest(), "lock")
