"""The shipped schemas are generated from schemas/src/, current, and self-contained: every
`$ref` a local pointer, so that any draft 2020-12 validator uses one file with no network
(scripts/bundle_schemas.py says why)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import pytest

from conftest import REPO
from reftool.files.schemas import SCHEMA_FILES

SCRIPT = REPO / "scripts" / "bundle_schemas.py"
SHIPPED = sorted((REPO / "schemas").glob("*.schema.json"))
CONFORMANCE = sorted((REPO / "conformance_tests" / "schemas").glob("*.schema.json"))


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bundle_schemas", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_schemas_are_current() -> None:
    r = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_every_source_is_shipped_and_known() -> None:
    sources = {p.name for p in (REPO / "schemas" / "src").glob("*.json")}
    assert sources == {p.name for p in SHIPPED} == set(SCHEMA_FILES.values())


def test_output_is_byte_stable_ascii_with_a_final_newline() -> None:
    bundle = _load_script()
    first, second = bundle.outputs(), bundle.outputs()
    assert first == second
    for data in first.values():
        assert data.isascii() and data.endswith(b"}\n") and not data.endswith(b"\n\n")


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def _resolve(root: dict[str, Any], pointer: str) -> Any:
    node: Any = root
    for part in pointer.split("/")[1:]:
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


@pytest.mark.parametrize("path", SHIPPED + CONFORMANCE, ids=lambda p: p.name)
def test_schema_is_self_contained(path: Path) -> None:
    s = json.loads(path.read_text(encoding="utf-8"))
    for ref in _refs(s):
        assert ref.startswith("#"), f"{ref!r} needs another document"
        assert isinstance(_resolve(s, ref[1:]), (dict, bool)), ref
    nested_ids = [i for i in _ids(s) if i != s.get("$id")]
    assert nested_ids == []  # one resource per file: the YAML language server needs that


def _ids(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$id"), str):
            yield node["$id"]
        for v in node.values():
            yield from _ids(v)
    elif isinstance(node, list):
        for v in node:
            yield from _ids(v)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_plain_jsonschema_needs_no_registry(path: Path) -> None:
    # a validator that may not look anything up: any non-local $ref would raise here
    from jsonschema import Draft202012Validator
    from referencing import Registry

    def refuse(uri: str) -> Any:
        raise AssertionError(f"tried to retrieve {uri}")

    v = Draft202012Validator(json.loads(path.read_text(encoding="utf-8")),
                             registry=Registry(retrieve=refuse))  # type: ignore[call-arg]
    # walks every branch the instances reach; a non-local $ref raises Unresolvable
    list(v.iter_errors({"version": "1.0", "stages": {"s": {"cmd": "x", "deps": ["/x"]}}}))
    list(v.iter_errors({"version": "1.0", "stages": {"s": {"cmd": "x"}}, "metrics": {"m": {}}}))


@pytest.fixture()
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script, pointed at a copy of schemas/ in a temporary folder."""
    shutil.copytree(REPO / "schemas", tmp_path / "schemas")
    bundle = _load_script()
    monkeypatch.setattr(bundle, "SRC", tmp_path / "schemas" / "src")
    monkeypatch.setattr(bundle, "OUT", tmp_path / "schemas")
    return bundle


def test_check_fails_on_a_stale_output_and_a_run_fixes_it(scratch: ModuleType,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    src = scratch.SRC / "common.schema.json"
    s = json.loads(src.read_text())
    s["$defs"]["version"]["pattern"] = "^1\\.0$"
    src.write_text(json.dumps(s, indent=2))
    assert scratch.main(["--check"]) == 1
    err = capsys.readouterr().err
    # every schema that copies the definition is stale, the others are not
    assert "stale: schemas/pipeline.schema.json" in err and "series-record" not in err
    assert scratch.main([]) == 0
    assert scratch.main(["--check"]) == 0
    shipped = json.loads((scratch.OUT / "pipeline.schema.json").read_text())
    assert shipped["$defs"]["version"]["pattern"] == "^1\\.0$"


def test_check_fails_on_an_output_without_a_source(scratch: ModuleType) -> None:
    (scratch.OUT / "stray.schema.json").write_text("{}\n")
    assert scratch.main(["--check"]) == 1


def test_a_name_clash_is_an_error_not_a_rename(scratch: ModuleType,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    src = scratch.SRC / "pipeline.schema.json"
    s = json.loads(src.read_text())
    s["$defs"]["version"] = {"type": "string"}  # common.schema.json has one too
    src.write_text(json.dumps(s))
    assert scratch.main(["--check"]) == 2
    assert "$defs/version would hold both" in capsys.readouterr().err


def test_a_whole_file_reference_is_copied_under_its_stem() -> None:
    experiment = json.loads((REPO / "schemas" / "experiment.schema.json").read_text())
    record = json.loads((REPO / "schemas" / "src" / "series-record.schema.json").read_text())
    copied = experiment["$defs"]["series-record"]
    assert "$id" not in copied and copied["title"] == record["title"]
    assert "#/$defs/series-record" in _refs(experiment)
