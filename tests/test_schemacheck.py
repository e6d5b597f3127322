"""The compiled schemas (reftool/files/schemacheck.py) answer as jsonschema does: on every file of
schemas/, on real documents mutated by Hypothesis, and on each semantic where the two could part
(bool vs integer, 1.0 vs integer, True vs 1, re.search, date-time). SPEC [files.kinds],
[values.strict-types]."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, validators

from conftest import REPO, Project
from reftool.files import schemacheck, schemas
from reftool.files.documents import Document, parse
from reftool.files.errors import SpecError
from reftool.files.schemacheck import NotCompilable, compile_node, compile_schema, passes
from reftool.files.validate import schema_diagnostics

NAMES = sorted(schemas.SCHEMA_FILES)
# the sub-schemas the code validates against on their own (validate.py, pipeline/lockfile.py)
POINTERS = [("pipeline", "/$defs/stage"), ("lock", "/$defs/entry")]
TARGETS = [(name, "") for name in NAMES] + POINTERS


def jsonschema_says(name: str, instance: Any, pointer: str = "") -> bool:
    return not any(schemas.validator(name, pointer).iter_errors(instance))


def strict(schema: dict[str, Any]) -> Any:
    """The project's validator (`schemas.validator`) for a schema given inline."""
    from referencing import Registry, Resource
    registry: Registry[Any] = Registry().with_resources(
        (schemas.schema(n)["$id"], Resource.from_contents(schemas.schema(n)))
        for n in schemas.SCHEMA_FILES)
    checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", schemas._is_int)
    cls = validators.extend(Draft202012Validator, type_checker=checker)
    return cls(schema, registry=registry, format_checker=schemas._format_checker())


# ------------------------------------------------------------------------- (a) no fallback

@pytest.mark.parametrize("name", NAMES)
def test_every_schema_compiles(name: str) -> None:
    """A keyword new to schemas/ fails here: teach reftool/files/schemacheck.py that keyword
    (as jsonschema applies it), or validation silently loses its fast path."""
    compile_schema(name)
    for definition in schemas.schema(name).get("$defs", {}):
        compile_schema(name, "/$defs/" + definition)


@pytest.mark.parametrize("name, pointer", POINTERS)
def test_the_pointers_the_code_uses_compile(name: str, pointer: str) -> None:
    assert schemacheck._compiled_or_none(name, pointer) is not None


def test_every_pointer_the_code_uses_is_listed() -> None:
    import re
    used = set()
    for path in (REPO / "reftool").rglob("*.py"):
        used.update(re.findall(r'"(/\$defs/[^"]+)"', path.read_text(encoding="utf-8")))
    assert used == {pointer for _, pointer in POINTERS}


# ------------------------------------------------------------------------- seeds

def _parsed(text: str, fmt: str, display: str = "seed") -> Any:
    try:
        return parse(text, display=display, fmt=fmt, nonfinite=True).value  # type: ignore[arg-type]
    except SpecError:
        return None


def _case_inputs() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted((REPO / "conformance_tests" / "cases").glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8")):
            yield case["op"], case.get("input") or {}


def _from_cases(seeds: dict[str, list[Any]]) -> None:
    for op, given_ in _case_inputs():
        files: dict[str, Any] = given_["files"] if isinstance(given_.get("files"), dict) else {}
        texts = [("pipeline", given_.get("pipeline"), "yaml"), ("lock", given_.get("lock"), "yaml"),
                 ("pipeline", files.get("pipeline.yaml"), "yaml"),
                 ("lock", files.get("pipeline.lock"), "yaml")]
        if op in ("lock", "experiment"):
            texts.append((op, given_.get("text"), "json"))
        if op == "metrics":
            texts += [("metrics", t, "json") for n, t in files.items() if n.endswith(".json")]
            texts += [_series(t) for n, t in files.items() if n.endswith(".jsonl")]
        for name, text, fmt in texts:
            if isinstance(text, str):
                seeds[name].append(_parsed(text, fmt))


def _series(text: str) -> tuple[str, str, str]:
    return "series-header", text.split("\n")[0], "json"


def _from_examples(seeds: dict[str, list[Any]]) -> None:
    for path in sorted((REPO / "examples").glob("*/pipeline.yaml")):
        seeds["pipeline"].append(_parsed(path.read_text(encoding="utf-8"), "yaml"))
    classifier = REPO / "examples" / "classifier"
    seeds["lock"].append(_parsed((classifier / "pipeline.lock").read_text(), "yaml"))
    seeds["metrics"].append(_parsed((classifier / "metrics/eval.json").read_text(), "json"))
    lines = (classifier / "metrics/train.jsonl").read_text().splitlines()
    seeds["series-header"].append(_parsed(lines[0], "json"))
    seeds["series-record"] += [_parsed(line, "json") for line in lines[1:4]]


def _from_the_tool(seeds: dict[str, list[Any]], root: Path) -> None:
    """The JSON the tool writes: a saved and a queued experiment, plan, reports and diffs."""
    shutil.copytree(REPO / "examples" / "classifier", root, dirs_exist_ok=True)
    project = Project(root)
    assert project.cli("exp", "save", "first", "--allow-stale").code == 0
    assert project.cli("exp", "run", "--queue", "-S", "train.lr=0.05,0.3").code == 0
    params = root / "params.yaml"
    params.write_text(params.read_text().replace("seed: 42", "seed: 43"))
    metrics = root / "metrics" / "eval.json"
    doc = json.loads(metrics.read_text())
    doc["metrics"]["accuracy"] = "NaN"
    metrics.write_text(json.dumps(doc))
    for name, argv in [("exp-show", ("exp", "show", "--json")), ("plan", ("plan", "--json")),
                       ("metrics-diff", ("metrics", "diff", "first", "--json", "--all")),
                       ("params-diff", ("params", "diff", "first", "--json", "--all")),
                       ("validation-report", ("validate", "--format", "json"))]:
        seeds[name].append(json.loads(project.cli(*argv).out))
    (root / "pipeline.yaml").write_text('version: "1.0"\nstages:\n  a: {cmd: 1, outs: [../x]}\n')
    seeds["validation-report"].append(json.loads(project.cli("validate", "--format", "json").out))
    seeds["experiment"] += [json.loads(p.read_text()) for p in (root / "experiments").glob("*.json")]
    seeds["queue-entry"] += [json.loads(p.read_text())
                             for p in (root / ".reftool" / "queue").glob("*.json")]


class Seeds(dict[tuple[str, str], list[Any]]):
    def __repr__(self) -> str:  # a failing example shows the document drawn, not all of them
        return f"<seeds of {len(self)} schemas>"


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Seeds:
    """Real documents of each kind (some of them invalid), by (schema, pointer)."""
    found: dict[str, list[Any]] = {name: [] for name in NAMES}
    _from_examples(found)
    _from_cases(found)
    _from_the_tool(found, tmp_path_factory.mktemp("classifier"))
    out = Seeds({(name, ""): [s for s in found[name] if s is not None] for name in NAMES})
    out[("common", "")] = [{}]
    out[("pipeline", "/$defs/stage")] = [stage for doc in out[("pipeline", "")] if isinstance(doc, dict)
                                        and isinstance(doc.get("stages"), dict)
                                        for stage in doc["stages"].values()]
    out[("lock", "/$defs/entry")] = [entry for doc in out[("lock", "")] if isinstance(doc, dict)
                                     and isinstance(doc.get("stages"), dict)
                                     for entry in doc["stages"].values()]
    return out


@pytest.mark.parametrize("name, pointer", [t for t in TARGETS if t != ("common", "")])
def test_the_seeds_hold_valid_documents(seeds: Seeds, name: str,
                                        pointer: str) -> None:
    # the property below is not vacuous: each kind has real documents jsonschema accepts
    valid = [s for s in seeds[(name, pointer)] if jsonschema_says(name, s, pointer)]
    assert valid, (name, pointer)
    assert all(compile_schema(name, pointer)(s) for s in valid)


# ------------------------------------------------------------------------- (b) properties

ODD_NUMBERS = [0, 1, -1, 2, 1.0, 0.0, -0.0, 0.5, -1.5, 2 ** 64, 1e300, math.inf, -math.inf, math.nan]
ODD_TEXTS = ["", " ", "a", ".", "..", "/", "*", "x-", "x-a", "meta", "1.0", "1.1", "2.0", "01.0",
             "sha256:" + "a" * 64, "sha256:" + "A" * 64, "2026-12-02T01:00:00Z",
             "2026-02-30T01:00:00Z", "2026-12-02T24:00:00+00:00", "2026-12-02 01:00:00Z",
             "a\n", "\n", "a/../b", "/abs", "é", "\x00", "a b", "lower", "higher", "min", "max",
             "last", "value", "digest", "series", "NaN", "Infinity", "-Infinity"]

scalars = st.one_of(st.none(), st.booleans(), st.sampled_from(ODD_NUMBERS), st.integers(),
                    st.floats(), st.sampled_from(ODD_TEXTS), st.text(max_size=8))
json_values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                     st.dictionaries(st.sampled_from(ODD_TEXTS) | st.text(max_size=5),
                                                     inner, max_size=4)), max_leaves=12)


def _odd_strings(text: str) -> list[str]:
    """Near misses of a valid string: where re.search and a full match part, and the rest."""
    return [text + "\n", "\n" + text, " " + text, text + " ", text[:-1], text[1:], text + text,
            text.upper(), text + "/", "/" + text, text.replace("/", "//"), text + "\x00",
            "x" + text, text + "x", "../" + text, text + "é"]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _paths(sub, path + (key,))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from _paths(sub, path + (i,))


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        value = value[p]
    return value


def _replace(doc: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    _get(doc, path[:-1])[path[-1]] = new
    return doc


@st.composite
def mutation(draw: st.DrawFn, doc: Any, keys: list[str]) -> Any:
    """One edit at one place: another type, a near-miss string, a key removed or added, an
    item removed or repeated."""
    paths = list(_paths(doc))
    containers = [p for p in paths if isinstance(_get(doc, p), (dict, list))]
    inside = bool(containers) and draw(st.booleans())  # half the time a mapping or a list
    path = draw(st.sampled_from(containers if inside else paths))
    node = _get(doc, path)
    choices = ["value"]
    if isinstance(node, str) and node:
        choices.append("odd")
    if isinstance(node, dict):
        choices += ["add"] + (["delete"] if node else [])
    if isinstance(node, list) and node:
        choices += ["delete", "repeat"]
    how = draw(st.sampled_from(choices))
    if how == "value":
        return _replace(doc, path, draw(json_values))
    if how == "odd":
        return _replace(doc, path, draw(st.sampled_from(_odd_strings(node))))
    if how == "add":
        node[draw(st.sampled_from(keys) | st.sampled_from(ODD_TEXTS))] = draw(json_values)
    elif how == "delete":
        index = draw(st.sampled_from(list(node.keys()) if isinstance(node, dict) else
                                     list(range(len(node)))))
        del node[index]
    else:
        node.append(json.loads(json.dumps(node[draw(st.integers(0, len(node) - 1))])))
    return doc


def _schema_keys(node: Any) -> Iterator[str]:
    """Every property name a schema mentions: keys a mutation adds where they may be known."""
    if isinstance(node, dict):
        for key, sub in node.items():
            if key in ("properties", "patternProperties", "$defs") and isinstance(sub, dict):
                yield from (k for k in sub if key == "properties")
            if key == "required" and isinstance(sub, list):
                yield from sub
            yield from _schema_keys(sub)
    elif isinstance(node, list):
        for sub in node:
            yield from _schema_keys(sub)


KEYS = sorted({k for name in NAMES for k in _schema_keys(schemas.schema(name))})


@st.composite
def documents(draw: st.DrawFn, seeds: list[Any]) -> Any:
    """A real document with up to four mutations, or (one time in ten) any JSON value."""
    if not seeds or draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    doc = json.loads(json.dumps(draw(st.sampled_from(seeds))))
    for _ in range(draw(st.integers(0, 4))):
        doc = draw(mutation(doc, KEYS))
    return doc


@pytest.mark.parametrize("name, pointer", TARGETS)
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_the_predicate_agrees_with_jsonschema(seeds: Seeds,
                                              name: str, pointer: str, data: st.DataObject) -> None:
    doc = data.draw(documents(seeds[(name, pointer)]))
    assert compile_schema(name, pointer)(doc) == jsonschema_says(name, doc, pointer)


@settings(max_examples=300, deadline=None)
@given(doc=json_values, name=st.sampled_from(NAMES))
def test_any_json_value_gets_jsonschemas_verdict(doc: Any, name: str) -> None:
    assert compile_schema(name)(doc) == jsonschema_says(name, doc)


# ------------------------------------------------------------------------- (c) fixed cases

TRICKY: list[tuple[dict[str, Any], Any, bool]] = [
    ({"type": "integer"}, True, False),  # a bool is never an integer [values.strict-types]
    ({"type": "integer"}, 1.0, False),  # nor is an integral float
    ({"type": "integer"}, 2 ** 80, True),
    ({"type": "number"}, False, False),
    ({"type": "number"}, 1, True),
    ({"type": ["string", "number", "boolean"]}, None, False),
    ({"type": ["string", "number", "boolean"]}, True, True),
    ({"const": True}, 1, False),
    ({"const": 1}, True, False),
    ({"const": 0}, False, False),
    ({"const": 1}, 1.0, True),
    ({"const": [1, {"a": False}]}, [1.0, {"a": False}], True),
    ({"const": [1, {"a": False}]}, [1, {"a": 0}], False),
    ({"enum": [1, "a"]}, True, False),
    ({"enum": [[True]]}, [1], False),
    ({"uniqueItems": True}, [1, True], True),
    ({"uniqueItems": True}, [0, False], True),
    ({"uniqueItems": True}, [1, 1.0], False),
    ({"uniqueItems": True}, [{"a": 1}, {"a": 1}], False),
    ({"uniqueItems": True}, [[1], [True], [1]], True),  # jsonschema's sorted neighbours: kept
    ({"uniqueItems": True}, "not a list", True),
    ({"pattern": "b"}, "abc", True),  # re.search, not re.match
    ({"pattern": "^abc$"}, "abc\n", True),  # Python's $ before a final newline
    ({"pattern": "^a"}, 5, True),  # only strings
    ({"minLength": 2}, "é", False),  # code points
    ({"minLength": 1}, "\U0001f600", True),
    ({"format": "date-time"}, "2026-02-30T00:00:00Z", False),
    ({"format": "date-time"}, "2024-02-29T23:59:60+23:59", True),
    ({"format": "date-time"}, "not a date", True),  # the schemas' pattern reports that
    ({"format": "date-time"}, 5, True),
    ({"minimum": 0}, math.nan, True),
    ({"minimum": 0}, "-1", True),
    ({"exclusiveMinimum": 0}, 0.0, False),
    ({"properties": {"a": False}}, ["a"], True),  # object keywords pass other types
    ({"required": ["a"]}, "a", True),
    ({"additionalProperties": False, "patternProperties": {"^x-": True, "b$": True}},
     {"x-1": 1, "ab": 2}, True),
    ({"additionalProperties": False, "properties": {"a": True}}, {"a": 1, "b": 2}, False),
    ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"a": 1, "B": 2}, False),
    ({"minProperties": 1, "maxProperties": 1}, {}, False),
    ({"items": {"type": "string"}, "minItems": 1}, ["a", 1], False),
    ({"if": {"required": ["a"]}, "then": {"required": ["b"]}, "else": {"required": ["c"]}},
     {"c": 1}, True),
    ({"if": {"required": ["a"]}, "then": {"required": ["b"]}}, {"a": 1}, False),
    ({"then": False}, 1, True),  # then without if: not applied
    ({"not": {"type": "string"}}, "a", False),
    ({"allOf": [{"type": "number"}, {"minimum": 2}]}, 1, False),
    ({"anyOf": [{"type": "string"}, {"type": "null"}]}, None, True),
    ({"$ref": "https://reftool.dev/schemas/1.0/common.schema.json#/$defs/version"}, "1.0", True),
    ({"$ref": "https://reftool.dev/schemas/1.0/common.schema.json#/$defs/version"}, 1.0, False),
]


@pytest.mark.parametrize("schema, instance, expected", TRICKY, ids=[repr(t)[:60] for t in TRICKY])
def test_tricky_semantics(schema: dict[str, Any], instance: Any, expected: bool) -> None:
    reference = not any(strict(schema).iter_errors(instance))
    assert reference is expected
    assert compile_node(schema)(instance) is expected


@pytest.mark.parametrize("schema", [{"maxLength": 3}, {"type": "decimal"}, {"format": "email"},
                                    {"prefixItems": [True]}, {"$ref": "#foo"},
                                    {"$ref": "https://example.org/other.json"},
                                    {"items": {"$id": "https://reftool.dev/x.json"}}, {"anyOf": []}])
def test_what_is_not_mirrored_does_not_compile(schema: dict[str, Any]) -> None:
    with pytest.raises(NotCompilable):
        compile_node(schema, base="https://reftool.dev/schemas/1.0/common.schema.json")


def test_recursion_is_compiled_once_and_followed_when_it_runs() -> None:
    tree = {"$defs": {"t": {"type": "object", "additionalProperties": {"$ref": "#/$defs/t"}}},
            "$ref": "#/$defs/t"}
    deep: dict[str, Any] = {}
    for _ in range(20):
        deep = {"k": deep}
    base = "https://reftool.dev/schemas/1.0/tree.json"
    roots = dict(schemas.SCHEMA_FILES)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(schemacheck, "SCHEMA_FILES", {**roots, "tree": "-"})
        m.setattr(schemacheck, "schema", lambda n: {**tree, "$id": base} if n == "tree" else
                  schemas.schema(n))
        check = compile_node({"$ref": base})
        assert check(deep) and not check({"k": {"k": 1}})


@pytest.fixture
def unknown_keyword(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The pipeline schema with a keyword schemacheck does not know: `maxLength` on `desc`."""
    real = schemas.schema
    edited = json.loads(json.dumps(real("pipeline")))
    edited["$defs"]["stage"]["properties"]["desc"]["maxLength"] = 3

    def schema(name: str) -> dict[str, Any]:
        return edited if name == "pipeline" else real(name)
    caches = [schemas.validator, compile_schema, schemacheck._compiled_or_none]
    for cache in caches:
        cache.cache_clear()
    monkeypatch.setattr(schemas, "schema", schema)
    monkeypatch.setattr(schemacheck, "schema", schema)
    yield
    monkeypatch.undo()
    for cache in caches:
        cache.cache_clear()


def test_an_unknown_keyword_falls_back_to_jsonschema(unknown_keyword: None) -> None:
    with pytest.raises(NotCompilable, match="maxLength"):
        compile_schema("pipeline")
    text = 'version: "1.0"\nstages:\n  a: {cmd: x, desc: toolong}\n  b: {cmd: y, desc: ok}\n'
    doc = parse(text, display="pipeline.yaml", fmt="yaml")
    assert not passes("pipeline", doc.value)
    found = schema_diagnostics(doc, "pipeline")
    assert [(d.code, d.line) for d in found] == [("maxLength", 3)]
    ok = parse(text.replace("toolong", "ok"), display="pipeline.yaml", fmt="yaml")
    assert schema_diagnostics(ok, "pipeline") == []


def test_a_valid_file_is_passed_without_jsonschema(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(name: str, pointer: str = "") -> Any:
        raise AssertionError("jsonschema asked about a valid document")
    monkeypatch.setattr("reftool.files.validate.validator", refuse)
    doc: Document = parse((REPO / "examples/classifier/pipeline.yaml").read_text(),
                          display="pipeline.yaml", fmt="yaml")
    assert schema_diagnostics(doc, "pipeline") == []
    bad = parse('version: "1.0"\nstages:\n  a: {cmd: true}\n', display="p.yaml", fmt="yaml")
    with pytest.raises(AssertionError, match="jsonschema asked"):
        schema_diagnostics(bad, "pipeline")
