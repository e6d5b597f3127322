"""The suite tests itself: its cases are well formed, the reference implementation passes all
of them, and every mutant adapter is caught by a fixed case and by a property."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "adapters"))

from classes import CLASSES, outside  # noqa: E402
import harness  # noqa: E402
from harness import (SPEC_VERSIONS, Adapter, OneShotAdapter, bundle, load_cases,  # noqa: E402
                     run_cases, write_reports)
from mutants import MUTANTS, READING_MUTANTS  # noqa: E402
from properties import PROPERTIES  # noqa: E402

REFERENCE = f"{sys.executable} {HERE / 'adapters' / 'reftool_adapter.py'}"
NODE = shutil.which("node")
SPEC = (HERE.parent / "SPEC.md").read_text(encoding="utf-8")
CASES = load_cases()


def test_there_are_cases() -> None:
    assert len(CASES) >= 120  # a guard: a broken loader must not pass with no case


def test_cases_follow_the_case_schema() -> None:
    schema = json.loads((HERE / "schemas" / "case.schema.json").read_text())
    validator = Draft202012Validator(schema)
    for case in CASES:
        errors = [e.message for e in validator.iter_errors(
            {k: v for k, v in case.items() if k != "file"})]
        assert errors == [], case["id"]


def test_ids_unique_and_never_reused() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids))
    retired = set((HERE / "retired.txt").read_text().split())
    assert retired.isdisjoint(ids)


def test_anchors_exist() -> None:
    known = set(re.findall(r'<a id="([a-z0-9.-]+)"></a>', SPEC))
    assert {a for c in CASES for a in c["anchors"]} - known == set()


@pytest.mark.parametrize("version", SPEC_VERSIONS)
def test_bundle_is_current_and_ascii(version: str) -> None:
    committed = (HERE / "bundle" / f"{version}.json").read_bytes()
    assert bundle(version).read_bytes() == committed, "run: python conformance_tests/harness.py --bundle"
    committed.decode("ascii")
    assert len(json.loads(committed)["cases"]) == len(load_cases(version))


def test_cases_of_a_version_follow_since_and_until() -> None:
    # a case whose expectation depends on the spec version is bounded, never silently changed
    old, new = load_cases("1.0"), load_cases("1.1")
    assert {c["id"] for c in old} - {c["id"] for c in new} == {
        c["id"] for c in old if c.get("until") == "1.0"}
    assert all(c["since"] == "1.1" for c in new if c not in old)


def test_each_case_has_its_derived_classes_and_its_anchors_bind_them() -> None:
    # [conformance.classes]: a case's anchors lie in the sections that bind its classes
    r = subprocess.run([sys.executable, str(HERE / "classes.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    assert {c["id"]: outside(c) for c in CASES if outside(c)} == {}


def test_every_class_is_named_in_the_spec_conformance_section() -> None:
    section = SPEC[SPEC.index("## 0. Conformance"):SPEC.index("## 1. Files")]
    for name in CLASSES:
        assert f"| {name.replace('-', ' ')} |" in section, name


def test_every_must_is_covered() -> None:
    r = subprocess.run([sys.executable, str(HERE / "coverage.py")], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout


@pytest.fixture(scope="module")
def reference() -> Adapter:
    adapter = Adapter(REFERENCE)
    yield adapter
    adapter.close()


def test_reference_passes_every_case(reference: Adapter, tmp_path: Path) -> None:
    run = run_cases(reference, CASES)
    failing = [(o.case["id"], o.detail) for o in run.outcomes if o.outcome != "passed"]
    assert failing == []
    assert run.level() == "full"
    write_reports(run, tmp_path, seed=0)
    lines = (tmp_path / "report.jsonl").read_text().splitlines()
    assert "header" in json.loads(lines[0]) and len(lines) == len(CASES) + 1
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert suite.get("tests") == str(len(CASES)) and suite.get("failures") == "0"
    assert "Level: **full**" in (tmp_path / "summary.md").read_text()


def test_protocol_responses_follow_the_protocol_schema(reference: Adapter) -> None:
    from referencing import Registry, Resource
    schema = json.loads((HERE / "schemas" / "protocol.schema.json").read_text())
    registry = Registry().with_resource(schema["$id"], Resource.from_contents(schema))
    validator = Draft202012Validator({"$ref": schema["$id"] + "#/$defs/response"},
                                     registry=registry)
    answers = [{"id": 0, "hello": reference.hello}] + [
        {"id": 1, **reference.run(c["op"], c["input"])} for c in CASES[::10]]
    for answer in answers:
        assert list(validator.iter_errors(answer)) == [], answer


@pytest.mark.parametrize("name", sorted(PROPERTIES))
def test_reference_passes_every_property(reference: Adapter, name: str) -> None:
    PROPERTIES[name](reference)


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_every_mutant_is_caught_by_a_case_and_a_property(mutant: str) -> None:
    adapter = Adapter(REFERENCE, env={"MUTANT": mutant})
    try:
        run = run_cases(adapter, CASES)
        caught_by_cases = [o.case["id"] for o in run.outcomes if o.outcome != "passed"]
        caught_by_properties = []
        for name, prop in PROPERTIES.items():
            try:
                prop(adapter)
            except AssertionError:
                caught_by_properties.append(name)
                break  # one is enough; the others need not run their examples
    finally:
        adapter.close()
    assert caught_by_cases, f"{mutant} ({MUTANTS[mutant]}) passes every case"
    assert caught_by_properties, f"{mutant} ({MUTANTS[mutant]}) passes every property"


@pytest.mark.parametrize("mutant", sorted(READING_MUTANTS))
def test_every_reading_mutant_is_caught_by_a_case(mutant: str) -> None:
    adapter = Adapter(REFERENCE, env={"MUTANT": mutant})
    try:
        run = run_cases(adapter, [c for c in CASES if c["op"] in ("plan", "run", "validate")])
    finally:
        adapter.close()
    caught = [o.case["id"] for o in run.outcomes if o.outcome != "passed"]
    assert caught, f"{mutant} ({READING_MUTANTS[mutant]}) passes every case"


def test_harness_reports_per_class_and_runs_properties_with_a_seed(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, str(HERE / "harness.py"), "--adapter", REFERENCE,
                        "--class", "reader", "--properties", "--seed", "3", "--level", "full",
                        "--report", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [json.loads(x) for x in (tmp_path / "report.jsonl").read_text().splitlines()]
    assert lines[0]["header"]["classes"] == ["reader"] and lines[0]["header"]["seed"] == 3
    assert {c for x in lines[1:] if "classes" in x for c in x["classes"]} == {"reader"}
    assert {x["property"] for x in lines if "property" in x} == set(PROPERTIES)
    assert "| class reader |" in (tmp_path / "summary.md").read_text()


def test_core_and_full_are_different_sets() -> None:
    assert {c["id"] for c in CASES if "required" not in c["tags"]}


def test_one_shot_mode() -> None:
    adapter = OneShotAdapter(REFERENCE)
    some = [c for c in CASES if c["op"] in ("canonicalize", "digest")][:5]
    run = run_cases(adapter, some)
    assert [o.outcome for o in run.outcomes] == ["passed"] * len(some)


def test_a_crashing_adapter_is_errored_and_restarted(tmp_path: Path) -> None:
    script = tmp_path / "crashy.py"
    script.write_text(
        "import json, sys\n"
        "for line in sys.stdin:\n"
        "    r = json.loads(line)\n"
        "    if r['op'] == 'hello':\n"
        "        print(json.dumps({'id': r['id'], 'hello': {'protocol': 1, 'implementation':"
        " {'name': 'crashy', 'version': '0'}, 'spec_versions': ['1.0'], 'operations':"
        " ['digest'], 'features': []}}), flush=True)\n"
        "    else:\n"
        "        sys.exit(3)\n")
    adapter = Adapter(f"{sys.executable} {script}", timeout=5)
    try:
        run = run_cases(adapter, [c for c in CASES if c["op"] == "digest"][:2])
    finally:
        adapter.close()
    assert [o.outcome for o in run.outcomes] == ["errored", "errored"]
    assert run.level() == "none"


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_javascript_adapter_passes_what_it_implements() -> None:
    adapter = Adapter(f"{NODE} {HERE / 'adapters' / 'node' / 'adapter.js'}")
    try:
        # it greets spec 1.0: the cases of 1.1 (directory excludes, ...) are not its claim, as
        # the harness's own command line would select them
        spec = harness._spec_of(adapter, None)
        assert spec == "1.0"
        run = run_cases(adapter, [c for c in CASES if harness.applies(c, spec)])
        assert run.count("failed") == run.count("errored") == 0
        assert run.count("passed") >= 10
        for name in ("canonical_forms", "file_digests", "params_digests_sensitive"):
            PROPERTIES[name](adapter)
    finally:
        adapter.close()


@pytest.mark.parametrize("reported, outcome", [
    ([("schema", "type")], "passed"),
    ([("schema", "type"), ("schema", "pattern")], "failed"),  # an extra error
    ([("schema", "type"), ("schema", "type")], "failed"),     # the same error twice
    ([], "failed"),
])
def test_validate_is_judged_on_the_exact_errors(reported: list[tuple[str, str]],
                                                outcome: str) -> None:
    # issue 12: over-reporting in validate must not go unnoticed
    case = {"id": "X", "op": "validate",
            "expected": {"result": {"errors": [{"phase": "schema", "code": "type"}]}}}
    answer = {"result": {"errors": [{"phase": p, "code": c} for p, c in reported]}}
    assert harness.judge(case, answer)[0] == outcome
