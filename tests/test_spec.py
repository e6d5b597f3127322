"""SPEC.md, the schemas and the code agree: vocabularies, anchors, defaults, examples."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from conftest import REPO, Project
from reftool.files import spec
from reftool.files.schemas import SCHEMA_FILES, schema, schema_dir

SPEC = (REPO / "SPEC.md").read_text(encoding="utf-8")
AREAS = {a.split(".")[0] for a in re.findall(r'<a id="([a-z0-9.-]+)"></a>', SPEC)}
ANCHORS = re.findall(r'<a id="([a-z0-9.-]+)"></a>\*\*\[([a-z0-9.-]+)\]\*\*', SPEC)


def _section(title: str) -> str:
    start = SPEC.index(title)
    return SPEC[start:SPEC.index("\n## ", start + 1)]


def test_anchors_are_unique_and_match_their_labels() -> None:
    ids = [a for a, _ in ANCHORS]
    assert len(ids) > 60
    assert len(ids) == len(set(ids))
    assert all(a == label for a, label in ANCHORS)


def _cited_anchors() -> set[str]:
    cited: set[str] = set()
    for path in (REPO / "reftool").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        cited |= set(re.findall(r'anchor="([a-z0-9.-]+)"', text))
        cited |= set(re.findall(r"SPEC \[([a-z0-9.-]+)\]", text))
        cited |= {a for a in re.findall(r"(?:^|[\s(\"'])\[([a-z]+\.[a-z0-9-]+)\]", text, re.M)
                  if a.split(".")[0] in AREAS}
    for path in (REPO / "schemas").glob("*.json"):
        cited |= set(re.findall(r"SPEC \[([a-z0-9.-]+)\]", path.read_text(encoding="utf-8")))
    return cited


def test_every_anchor_cited_by_code_exists() -> None:
    known = {a for a, _ in ANCHORS}
    missing = sorted(_cited_anchors() - known)
    assert missing == []


def test_error_codes_match_the_spec_table() -> None:
    # [errors.phase-code]
    table = _section("## 14. Errors")
    rows = dict(re.findall(r"^\| `(\w+)` \| (.+) \|$", table, re.M))
    spec_codes = {phase: set(re.findall(r"`(\w+)`", codes)) for phase, codes in rows.items()}
    assert spec_codes == {p: set(c) for p, c in spec.ERROR_CODES.items()}


def test_reason_codes_match_the_spec_table() -> None:
    # [stale.reasons]
    table = _section("## 10. Staleness")
    codes = re.findall(r"^\| \d+ \| `(\w+)` \|", table, re.M)
    assert tuple(codes) == spec.REASON_ORDER


def test_exit_codes_match_the_spec_table() -> None:
    # [tool.exit-codes]
    table = _section("## 15. The reference tool")
    codes = {int(c) for c in re.findall(r"^\| (\d+) \|", table, re.M)}
    assert codes == {spec.EXIT_OK, spec.EXIT_INVALID, spec.EXIT_USAGE, spec.EXIT_PENDING,
                     spec.EXIT_BUSY, spec.EXIT_INTERNAL, spec.EXIT_INTERRUPTED}


def test_warning_codes_are_the_spec_ones() -> None:
    # [errors.warnings]
    para = SPEC[SPEC.index("[errors.warnings]**"):]
    para = para[:para.index("\n\n")]
    named = set(re.findall(r"`(\w+)`", para)) & spec.ERROR_CODES["semantic"]
    assert named == spec.WARNING_CODES


def test_every_code_the_tool_emits_is_in_the_spec() -> None:
    emitted: set[tuple[str, str]] = set()
    for path in (REPO / "reftool").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and len(node.args) >= 2 and all(
                    isinstance(a, ast.Constant) and isinstance(a.value, str)
                    for a in node.args[:2]) and node.args[0].value in spec.ERROR_CODES:
                emitted.add((node.args[0].value, node.args[1].value))
            if isinstance(node, ast.Call) and len(node.args) >= 3 and all(
                    isinstance(a, ast.Constant) and isinstance(a.value, str)
                    for a in node.args[1:3]) and node.args[1].value in spec.ERROR_CODES:
                emitted.add((node.args[1].value, node.args[2].value))
    assert len(emitted) > 30
    bad = {(p, c) for p, c in emitted if c not in spec.ERROR_CODES[p]}
    assert bad == set()


# ---------------------------------------------------------------------------------- schemas

# keywords that never fail by themselves: the errors below them are reported
# ([errors.schema-keyword] rule 2), and annotations
_NOT_ASSERTIONS = {"$schema", "$id", "$defs", "$ref", "$comment", "title", "description",
                   "default", "examples", "properties", "patternProperties", "items", "if",
                   "then", "else", "allOf", "markdownDescription", "deprecated"}
_SCHEMA_LISTS = {"anyOf", "oneOf", "allOf", "prefixItems"}
_SCHEMA_MAPS = {"properties", "$defs", "patternProperties"}
_SCHEMA_ONE = {"items", "not", "propertyNames", "additionalProperties", "if", "then", "else",
               "contains"}


def _keywords(node: Any) -> set[str]:
    """Every keyword used at a schema position of `node`, walking sub-schemas."""
    if not isinstance(node, dict):
        return set()
    found = set(node)
    for key, value in node.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            children = list(value.values())
        elif key in _SCHEMA_LISTS:
            children = list(value)
        elif key in _SCHEMA_ONE:
            children = [value]
        else:
            children = []
        for child in children:
            found |= _keywords(child)
    return found


def test_schema_codes_are_derived_from_the_keywords_the_schemas_use() -> None:
    # SPEC [errors.schema-keyword]: every assertion keyword a schema uses is a schema code
    # (maxProperties was missing in 1.0); the codes not used are the stated extras.
    used: set[str] = set()
    for path in sorted((REPO / "schemas" / "src").glob("*.json")):
        used |= _keywords(json.loads(path.read_text()))
    assertions = used - _NOT_ASSERTIONS
    assert assertions - spec.ERROR_CODES["schema"] == set()
    extras = {"maxItems", "maxLength", "oneOf"}
    assert spec.ERROR_CODES["schema"] - assertions == extras
    assert "maxProperties" in assertions


def test_a_typed_value_with_two_tags_is_max_properties() -> None:
    # SPEC [errors.schema-keyword]: a code from the closed list, not `format`
    from reftool.files.documents import parse
    from reftool.files.validate import schema_diagnostics
    doc = parse('{"int": "1", "str": "x"}', display="v.json", fmt="json")
    found = schema_diagnostics(doc, "common", pointer="/$defs/typedValue")
    assert {(d.phase, d.code) for d in found} == {("schema", "maxProperties")}


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_schema_is_valid_and_versioned(name: str) -> None:
    s = schema(name)
    Draft202012Validator.check_schema(s)
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert s["$id"] == f"https://reftool.dev/schemas/1.0/{SCHEMA_FILES[name]}"


def test_every_schema_file_is_known() -> None:
    on_disk = {p.name for p in (REPO / "schemas").glob("*.json")}
    assert on_disk == set(SCHEMA_FILES.values())


def test_tool_reads_the_shipped_schemas() -> None:
    # the files the tool validates with are the repository's schemas/, byte for byte
    for file in SCHEMA_FILES.values():
        assert (schema_dir() / file).read_bytes() == (REPO / "schemas" / file).read_bytes()


def test_schema_defaults_are_the_tools() -> None:
    # [pipeline.outputs]: defaults stated in the schema equal those the tool applies
    defs = schema("pipeline")["$defs"]
    for section, name in (("outs", "output"), ("plots", "plotsOutput"),
                          ("metrics", "metricsOutput")):
        props = defs[name]["anyOf"][1]["properties"]
        assert props["cache"]["default"] is spec.DEFAULT_CACHE[section]  # type: ignore[index]
        assert props["persist"]["default"] is False
    stage = defs["stage"]["properties"]
    assert stage["always_run"]["default"] is False and stage["frozen"]["default"] is False


def test_defaults_applied_by_loader(project: Project) -> None:
    from reftool.files.validate import Report, validate_pipeline
    project.base('version: "1.0"\nstages:\n  s:\n    cmd: x\n'
                 "    outs: [o.bin]\n    metrics: [m.json, s.jsonl]\n    plots: [p.csv]\n")
    p = validate_pipeline(project.root, "pipeline.yaml", Report()).pipeline
    assert p is not None
    s = p.stages["s"]
    assert [(o.section, o.cache, o.persist, o.kind) for o in s.outputs] == [
        ("outs", True, False, None), ("metrics", True, False, "summary"),
        ("metrics", True, False, "series"), ("plots", True, False, None)]
    assert (s.wdir, s.always_run, s.frozen, s.env, s.deps) == (".", False, False, (), ())


# ---------------------------------------------------------------------------------- examples

def test_spec_pipeline_example_is_a_valid_fixture(project: Project) -> None:
    # SPEC section 6: the example is a fixture of the test suite
    m = re.search(r"Example \(a fixture of the test suite\):\n\n```yaml\n(.*?)```", SPEC, re.S)
    assert m
    project.write("pipeline.yaml", m.group(1))
    for f in ("src/prepare.py", "src/train.py", "data/raw.csv"):
        project.write(f, "")
    project.write("params.yaml", "prepare: {split: 0.2, seed: 1}\ntrain: {lr: 0.01}\n")
    assert project.codes() == []


def test_spec_scalar_table_examples() -> None:
    # [values.yaml-core]: the consequences the spec lists
    from reftool.files.documents import parse
    doc = parse("[on, yes, off, no, y, 1e-3, 010, 1_000, 0b101, 2024-01-31, .5]",
                display="x", fmt="yaml")
    assert doc.value == ["on", "yes", "off", "no", "y", 0.001, 10, "1_000", "0b101",
                         "2024-01-31", 0.5]


def test_spec_float_text_examples() -> None:
    # [values.float-text]
    from reftool.files.values import float_text
    assert [float_text(x) for x in (1e-7, 1e21, 1.5e300, 0.000001, 100.0,
                                    123456789012345680000.0, 1.0, -0.0)] == [
        "1e-7", "1e+21", "1.5e+300", "0.000001", "100", "123456789012345680000", "1", "0"]


def test_spec_lock_canonical_equals_javascript_form() -> None:
    # [lock.canonical]: Python's json.dumps(indent=2, ensure_ascii=False) once ordered
    from reftool.files.model import canonical_json
    value = {"b": [], "a": {"\ue000": {}, "\U00010000": [1, "x\u0001\u2028/"]}}
    text = canonical_json(value)
    assert text == (
        '{\n  "a": {\n    "\U00010000": [\n      1,\n      "x\\u0001\u2028/"\n    ],\n'
        '    "\ue000": {}\n  },\n  "b": []\n}\n')


def test_schema_files_are_ascii_json() -> None:
    for p in Path(REPO / "schemas").glob("*.json"):
        json.loads(p.read_text(encoding="utf-8"))


def test_canonical_equal_is_equality_of_typed_trees() -> None:
    """[values.strict-types], [values.float-equality]: the scalar shortcut of canonical_equal
    answers as the typed trees do, for every pair of scalars (floats at their edges too)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from reftool.files.values import canonical_equal, typed_tree

    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                        st.sampled_from([0.0, -0.0, 1.0, 1, True, 0, False, float("nan"),
                                         float("inf"), -float("inf"), 1e21, 1e-7, "1", ""]),
                        st.text(max_size=3))
    values = st.one_of(scalars, st.lists(scalars, max_size=2),
                       st.dictionaries(st.text(max_size=2), scalars, max_size=2))

    @settings(max_examples=400, deadline=None)
    @given(values, values)
    def check(a: object, b: object) -> None:
        assert canonical_equal(a, b) == (typed_tree(a) == typed_tree(b))
        assert canonical_equal(a, a)
    check()


def _reference_canonical_json(value: object, level: int = 0) -> str:
    """canonical_json as it was first written (nested joins, json.dumps per leaf), kept as
    the reference the one-pass writer must equal byte for byte."""
    import json
    import math

    from reftool.files.values import float_text, sorted_items
    if isinstance(value, (dict, list)) and value:
        pad, inner = "  " * level, "  " * (level + 1)
        if isinstance(value, dict):
            parts = [f"{inner}{json.dumps(k, ensure_ascii=False)}: "
                     f"{_reference_canonical_json(v, level + 1)}" for k, v in sorted_items(value)]
            return "{\n" + ",\n".join(parts) + "\n" + pad + "}"
        parts = [inner + _reference_canonical_json(v, level + 1) for v in value]
        return "[\n" + ",\n".join(parts) + "\n" + pad + "]"
    if isinstance(value, float):
        text = float_text(value)
        return text if math.isfinite(value) else json.dumps(text, ensure_ascii=False)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value)


def test_canonical_json_equals_its_reference_byte_for_byte() -> None:
    """[lock.canonical]: the one-pass writer against the first one, over any JSON value
    (strings with controls, quotes, U+2028, astral characters; -0.0, NaN, huge ints)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from reftool.files.model import canonical_json
    leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                       st.text(alphabet=st.characters(codec="utf-8"), max_size=6),
                       st.sampled_from(["\u2028", "\x00\x1f\"\\/", "\U0001f600", "\ue000"]))
    tree = st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
        max_leaves=12)

    @settings(max_examples=400, deadline=None)
    @given(tree)
    def check(value: object) -> None:
        assert canonical_json(value) == _reference_canonical_json(value) + "\n"
    check()


def test_sorted_items_is_utf16_order_whatever_the_keys() -> None:
    """[values.jcs]: the ASCII shortcut of sorted_items against the order of UTF-16 code units,
    including keys that share an ASCII start and differ past U+D800 ("a\\ue000" sorts after
    "a\\U00010000" in UTF-16, before it by code point)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from reftool.files.values import sorted_items, utf16_key
    assert [k for k, _ in sorted_items({"a\ue000": 1, "a\U00010000": 2})] == \
        ["a\U00010000", "a\ue000"]

    @settings(max_examples=300, deadline=None)
    @given(st.dictionaries(st.text(max_size=4), st.none(), max_size=6))
    def check(mapping: dict[str, None]) -> None:
        assert [k for k, _ in sorted_items(mapping)] == sorted(mapping, key=utf16_key)
    check()
