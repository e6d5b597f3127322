"""The schemas agree with the prose on the boundary documents of the spec review
(../shared/notes/reviews/spec-review.md, section 3: P01-P18, L01-L09, M01-M07, E01-E02, Y02,
Y08). Each document goes through both:

- the schema: plain `jsonschema` with our `schemas/`, applied as [errors.schema-keyword] rule 1
  says (`integer` holds only ints; `format: date-time` is a real RFC 3339 date and time), on the
  document loaded by ruamel.yaml (YAML 1.2) or `json`, with no code of the tool;
- the prose: `validate` of the tool, whose (phase, code) errors must be those the prose names.

They agree when the schema rejects the document exactly when the prose names a `schema` error,
by keywords that include each code the prose names. A rule a schema cannot state (a cycle, a
missing key, a version gate, a torn line) gives a `semantic`, `version` or `parse` error, and the
schema is then not asked. [conformance.precedence]: where they disagreed, the schema was fixed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker, validators
from ruamel.yaml import YAML

from reftool.files.validate import validate_paths, validate_project

REPO = Path(__file__).resolve().parent.parent
H = "sha256:" + "1" * 64
P = 'version: "1.1"\nstages:\n  s:\n    cmd: x\n'
ENTRY = {"cmd": ["x"], "wdir": ".", "deps": {}, "params": {}, "env": {}, "outs": {}}
HEADER = '{"version": "1.0", "kind": "series"}\n'
RECORD = {"version": "1.0", "id": "x", "name": "x", "created": "2026-02-01T00:00:00Z",
          "git_commit": None, "params": {}, "metrics": {}, "series": {}, "lock_digest": None}


@dataclass(frozen=True)
class Doc:
    id: str
    files: dict[str, str]
    prose: list[tuple[str, str]]  # the errors SPEC.md names, sorted
    target: str = "pipeline.yaml"
    schemas: dict[str, str] = field(default_factory=dict)  # file -> schema it follows


def _lock(stage: dict[str, Any], deps: str = "[d/]", name: str = "s") -> dict[str, str]:
    return {"pipeline.yaml": P + f"    deps: {deps}\n",
            "pipeline.lock": json.dumps({"version": "1.0", "stages": {name: stage}})}


def _pipe(extra: str, **files: str) -> dict[str, str]:
    return {"pipeline.yaml": P + extra, **files}


PIPE = {"pipeline.yaml": "pipeline"}
LOCK = {"pipeline.lock": "lock"}
DOCS = [
    Doc("P01", _pipe('    outs: ["o\\x85.txt"]\n'), [("schema", "pattern")], schemas=PIPE),
    Doc("P02", _pipe('    outs: ["a\\x9fb"]\n'), [("schema", "pattern")], schemas=PIPE),
    Doc("P03", {"pipeline.yaml": 'version: "1.1"\nstages:\n  s:\n    cmd: ""\n'}, [], schemas=PIPE),
    Doc("P04", _pipe("    params: {p.yaml: []}\n", **{"p.yaml": "a: 1\n"}), [], schemas=PIPE),
    Doc("P04b", _pipe("    params: {p.yaml: [/a, /a]}\n", **{"p.yaml": "a: 1\n"}), [],
        schemas=PIPE),
    Doc("P05", {"pipeline.yaml": 'version: "1.1"\nvars: [p.yaml, p.yaml]\nstages:\n  s:\n'
                                 '    cmd: x ${a}\n', "p.yaml": "a: 1\n"}, [], schemas=PIPE),
    Doc("P06", {"pipeline.yaml": 'version: "1.1"\nstages:\n  s:\n    foreach: [1, 1.0]\n'
                                 '    cmd: x ${item}\n'}, [("semantic", "duplicate_stage")],
        schemas=PIPE),
    Doc("P07", _pipe("    resources: {gpus: 1.0}\n"), [("schema", "type")], schemas=PIPE),
    Doc("P09", _pipe("    always_run: yes\n"), [("schema", "type")], schemas=PIPE),
    Doc("P11", _pipe("    params: {p.yaml: [/a/01]}\n", **{"p.yaml": "a: [1, 2]\n"}),
        [("semantic", "params_key_missing")], schemas=PIPE),
    Doc("P12", {"pipeline.yaml": 'version: "1.1"\nstages:\n  gen:\n    cmd: x\n    outs: [p.yaml]\n'
                                 '  use:\n    cmd: y\n    params: {p.yaml: [/a]}\n'}, [],
        schemas=PIPE),  # [pipeline.params-edge]: a generated params file is not missing
    Doc("P13", _pipe("    metrics: [m.json]\nmetrics:\n  loss: {summary: best}\n"),
        [("schema", "required")], schemas=PIPE),
    Doc("P14", _pipe("    frozen: true\n    always_run: true\n"), [], schemas=PIPE),
    Doc("P15", _pipe("    deps: [src/]\n    outs: [src/gen.py]\n"), [("semantic", "cycle")],
        schemas=PIPE),
    Doc("P17", {"pipeline.yaml": 'version: "1.2"\nstages:\n  s:\n    cmd: x\n'},
        [("version", "minor_newer")], schemas=PIPE),
    Doc("P18", {"pipeline.yaml": 'version: "1.1"\nvars: [p.yaml]\nstages:\n  s:\n'
                                 '    foreach: ${ds}\n    cmd: x ${item}\n', "p.yaml": "ds: [a]\n"},
        [("schema", "anyOf")], schemas=PIPE),
    Doc("L01", _lock({**ENTRY, "deps": {"d/": {"digest": H, "size": 3}}}),
        [("schema", "required")], schemas=LOCK),
    Doc("L02", _lock({**ENTRY, "deps": {"f": {"digest": H, "size": 3, "files": 3}}}, "[f]"),
        [("schema", "additionalProperties")], schemas=LOCK),
    Doc("L02b", _lock({**ENTRY, "deps": {"d/": {"digest": H, "size": 3, "files": 1}}}), [],
        schemas=LOCK),
    Doc("L03", _lock({**ENTRY, "deps": {"d/": {"digest": H, "size": 1.0, "files": 1}}}),
        [("schema", "type")], schemas=LOCK),
    Doc("L04", _lock({**ENTRY, "params": {"p.yaml": {"/a": {"int": "1", "str": "x"}}}}),
        [("schema", "maxProperties")], schemas=LOCK),
    Doc("L05", _lock({**ENTRY, "params": {"p.yaml": {"/a": {"float": "1e+5"}}}}), [],
        schemas=LOCK),
    Doc("L08", {"pipeline.yaml": P, "pipeline.lock": '{"version": "1.0", "stages": {"s": '
                '{"cmd": ["x"], "wdir": ".", "deps": {}, "params": {}, "env": {"E": '
                '{"str": "\\ud800"}}, "outs": {}}}}'}, [("parse", "syntax")]),  # [read.json]
    Doc("L09", _lock({**ENTRY, "params": {"p.yaml": {"/a": {"int": "+1"}}}}),
        [("schema", "pattern")], schemas=LOCK),
    Doc("M02", {"m.jsonl": HEADER + '{"step": 1.0, "metrics": {"loss": 1}}\n'},
        [("schema", "type")], target="m.jsonl", schemas={"m.jsonl": "series"}),
    Doc("M03", {"m.jsonl": HEADER + '{"step": 1, "time": "2026-02-30T25:61:61Z", '
                                    '"metrics": {"loss": 1}}\n'},
        [("schema", "format")], target="m.jsonl", schemas={"m.jsonl": "series"}),
    Doc("M04", {"m.jsonl": HEADER.rstrip("\n")}, [], target="m.jsonl",
        schemas={"m.jsonl": "series"}),
    Doc("M05", {"m.jsonl": HEADER + '\n{"step": 1, "metrics": {"loss": 1}}\n'},
        [("parse", "syntax")], target="m.jsonl"),
    Doc("M06", {"m.jsonl": HEADER + '{"step": 5, "metrics": {"a": 1}}\n'
                                    '{"step": 3, "metrics": {"a": 2}}\n'}, [],
        target="m.jsonl", schemas={"m.jsonl": "series"}),
    Doc("M07", {"m.jsonl": HEADER.replace("\n", "\r\n")}, [("parse", "syntax")],
        target="m.jsonl"),
    Doc("E01", {"experiments/x.json": json.dumps({**RECORD, "created": "2026-13-45T00:00:00Z"})},
        [("schema", "format")], target="experiments/x.json",
        schemas={"experiments/x.json": "experiment"}),
    Doc("E00", {"experiments/x.json": json.dumps(RECORD)}, [], target="experiments/x.json",
        schemas={"experiments/x.json": "experiment"}),
    Doc("Y02", _pipe("    desc: ! 12\n"), [("parse", "unsupported_tag")]),
    Doc("Y08", {"pipeline.yaml": ""}, [("parse", "syntax")]),
]

# -------------------------------------------------------------------------- the schema side

_RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d+)?"
                      r"([Zz]|[+-](\d\d):(\d\d))$")


def _date_time(value: object) -> bool:
    """RFC 3339 section 5.6, with real calendar dates and times (leap second 60 allowed)."""
    if not isinstance(value, str):
        return True
    m = _RFC3339.match(value)
    if not m:
        return False
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    try:
        dt.date(y, mo, d)
    except ValueError:
        return False
    offset_ok = m.group(9) is None or (int(m.group(9)) < 24 and int(m.group(10)) < 60)
    return h < 24 and mi < 60 and s <= 60 and offset_ok


def _validator(name: str) -> Any:
    """Draft 2020-12 as [errors.schema-keyword] rule 1 reads it."""
    schema = json.loads((REPO / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8"))
    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, v: isinstance(v, int) and not isinstance(v, bool))
    cls = validators.extend(Draft202012Validator, type_checker=checker)
    formats = FormatChecker(formats=())
    formats.checks("date-time")(_date_time)
    return cls(schema, format_checker=formats)


def _keywords(errors: Any) -> set[str]:
    found: set[str] = set()
    for e in errors:
        found.add(str(e.validator))
        found |= _keywords(e.context)
    return found


def _schema_keywords(doc: Doc) -> tuple[bool, set[str]]:
    """(valid, the keywords that failed) of the doc's files under plain jsonschema."""
    failed: list[Any] = []
    for file, kind in doc.schemas.items():
        text = doc.files[file]
        if kind == "series":
            lines = text.split("\n")[:-1]  # [metrics.series]: a torn last line is not read
            pairs = [("series-header", lines[0])] if lines else []
            pairs += [("series-record", line) for line in lines[1:]]
            for name, line in pairs:
                failed += _validator(name).iter_errors(json.loads(line))
            continue
        value = YAML(typ="safe").load(text) if file.endswith(".yaml") else json.loads(text)
        failed += _validator(kind).iter_errors(value)
    return not failed, _keywords(failed)


# -------------------------------------------------------------------------- the prose side

def _tool_errors(doc: Doc, tmp: Path) -> list[tuple[str, str]]:
    for name, text in doc.files.items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_bytes(text.encode("utf-8"))
    report = (validate_project(tmp, doc.target) if doc.target == "pipeline.yaml"
              else validate_paths([tmp / doc.target]))
    return sorted((d.phase, d.code) for d in report.errors)


@pytest.mark.parametrize("doc", DOCS, ids=[d.id for d in DOCS])
def test_tool_says_what_the_prose_says(doc: Doc, tmp_path: Path) -> None:
    assert _tool_errors(doc, tmp_path) == sorted(doc.prose)


@pytest.mark.parametrize("doc", [d for d in DOCS if d.schemas], ids=lambda d: d.id)
def test_schema_agrees_with_the_prose(doc: Doc) -> None:
    valid, keywords = _schema_keywords(doc)
    schema_codes = {code for phase, code in doc.prose if phase == "schema"}
    other_phases = {phase for phase, _ in doc.prose} - {"schema"}
    if schema_codes:
        assert not valid and schema_codes <= keywords, keywords
    elif not other_phases:
        assert valid, keywords  # valid by the prose: the schema must not refuse it


def test_every_disagreement_of_the_review_is_here() -> None:
    # the review's table rows this test feeds (P08, P10, P16, L07, M01, E02 are gaps the text
    # leaves to implementations or rules with no schema side; see the report of issue 12)
    ids = {d.id for d in DOCS}
    assert {"P01", "P02", "P03", "P04", "P05", "P07", "L01", "L02", "L03", "L04", "L05", "M02",
            "M03", "M04", "E01"} <= ids
