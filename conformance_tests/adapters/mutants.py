"""Deliberately broken variants of the reference implementation: each carries one realistic bug.

The suite must catch every one of them with at least one fixed case and one property
(`test_conformance.py` checks that it does). Selected with MUTANT=NAME for the reference adapter.

READING_MUTANTS are different: each implements a defensible alternative reading of one rule
(what DVC does, or what a hasty reader of the sentence might build), so that a case pins the
reading SPEC.md chose; each must be caught by at least one fixed case.
"""

from __future__ import annotations

import math
import re
from typing import Any

MUTANTS = {
    "codepoint_order": "object keys sorted by code point instead of UTF-16 code units",
    "host_floats": "floats written with the host language's formatting (Python repr)",
    "no_upstream": "no propagation to the stages downstream of a stage that runs",
    "yaml11": "YAML 1.1 scalars (on/yes are booleans, 1e-3 a string, 010 octal)",
    "crlf": "line endings normalized (CRLF to LF) before hashing a file",
    "unknown_version_latest": "a file of an unknown version read as the latest",
    "loose_params": "params compared loosely, so 1 equals true and 1.0",
    "param_removed_missed": "a param removed from a stage does not make it stale",
}

READING_MUTANTS = {
    "over_report": "validate reports an error twice (the exact error set is checked)",
    "dollar_template": "[template.syntax] `$${X}` read as `$` then the template `${X}`",
    "star_no_keys": "[params.whole-file] `\"*\"` read as \"the file, but no key\": nothing is tracked",
    "foreach_index_suffix": "[generate.foreach] a list's generated stages named by index (s@0)",
    "foreach_value_suffix": "[generate.foreach] a mapping's generated stages named by value",
    "matrix_reversed": "[generate.matrix] the suffix lists the axes last to first",
    "matrix_values_only": "[generate.matrix] the suffix holds the values only (t@0.1,cnn)",
    "collision_first_wins": "[generate.names] colliding generated names: the first wins",
    "wdir_relative": "[pipeline.stage-keys] deps resolved from the stage's wdir (as DVC does)",
    "dir_kind_loose": "[paths.directory] a path names a file or a directory, whatever its '/'",
    "best_no_direction": "[metrics.declarations] `best` without a direction accepted",
    "warnings_as_errors": "[errors.warnings] lock warnings reported as errors",
}


def apply(name: str) -> None:
    from reftool.files import documents
    from reftool.pipeline import hashing
    from reftool.pipeline import plan
    from reftool.files import validate
    from reftool.files import values
    if name == "codepoint_order":
        values.utf16_key = lambda key: key.encode("utf-32-be")  # type: ignore[assignment]
    elif name == "host_floats":
        values.float_text = lambda x: repr(x) if math.isfinite(x) else (  # type: ignore
            "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity"))
    elif name == "no_upstream":
        original = plan.decide

        def decide(*args: Any, **kw: Any) -> Any:
            result = original(*args, **kw)
            kept = []
            for d in result.to_run:
                reasons = tuple(r for r in d.reasons if r.code != "upstream")
                if reasons:
                    kept.append(plan.StageDecision(name=d.name, reasons=reasons))
            gone = tuple(d.name for d in result.to_run if not any(
                r.code != "upstream" for r in d.reasons))
            return plan.Plan(to_run=tuple(kept), up_to_date=result.up_to_date + gone,
                             frozen=result.frozen)
        plan.decide = decide  # type: ignore[assignment]
    elif name == "yaml11":
        original_resolve = documents.resolve_plain
        bool11 = {"yes": True, "Yes": True, "YES": True, "on": True, "On": True, "ON": True,
                  "y": True, "Y": True, "no": False, "No": False, "NO": False, "off": False,
                  "Off": False, "OFF": False, "n": False, "N": False}

        def resolve11(text: str) -> Any:
            if text in bool11:
                return bool11[text]
            if re.fullmatch(r"[-+]?[0-9]+[eE][-+]?[0-9]+", text):
                return text  # YAML 1.1 floats need a dot
            if re.fullmatch(r"0[0-7]+", text):
                return int(text, 8)
            return original_resolve(text)
        documents.resolve_plain = resolve11  # type: ignore[assignment]
    elif name == "crlf":
        original_digest = hashing.file_digest_of_bytes
        hashing.file_digest_of_bytes = lambda data: original_digest(  # type: ignore
            data.replace(b"\r\n", b"\n"))
    elif name == "unknown_version_latest":
        validate.check_version = lambda doc, what: None  # type: ignore[assignment]
    elif name == "loose_params":
        plan.canonical_equal = lambda a, b: a == b  # type: ignore[assignment]
    elif name == "param_removed_missed":
        original_params = plan._params

        def params(*args: Any) -> Any:
            return [r for r in original_params(*args) if r.code != "param_removed"]
        plan._params = params  # type: ignore[assignment]
    elif name in READING_MUTANTS:
        apply_reading(name)
    else:
        raise SystemExit(f"no mutant {name!r}; known: {', '.join([*MUTANTS, *READING_MUTANTS])}")


def apply_reading(name: str) -> None:
    if name in ("over_report", "wdir_relative", "dir_kind_loose", "best_no_direction",
                "warnings_as_errors"):
        _validation_reading(name)
    elif name == "dollar_template":
        _dollar_template()
    elif name == "star_no_keys":
        _star_no_keys()
    else:
        _generated_names(name)


def _validation_reading(name: str) -> None:
    import dataclasses
    import __main__
    from reftool.files import validate
    if name == "over_report":
        original_op = __main__.OPS["validate"]

        def op(inp: Any) -> Any:
            result = original_op(inp)
            result["errors"] = result["errors"][:1] + result["errors"]
            return result
        __main__.OPS["validate"] = op
    elif name == "wdir_relative":
        original_disk = validate._disk_checks

        def disk_checks(project: Any) -> Any:
            pipeline = project.pipeline
            project.pipeline = dataclasses.replace(pipeline, stages={
                n: dataclasses.replace(s, deps=tuple(
                    dataclasses.replace(d, path=f"{s.wdir}/{d.path}") for d in s.deps))
                if s.wdir != "." else s for n, s in pipeline.stages.items()})
            try:
                return original_disk(project)
            finally:
                project.pipeline = pipeline
        validate._disk_checks = disk_checks  # type: ignore[assignment]
    elif name == "dir_kind_loose":
        original_loose = validate._disk_checks
        validate._disk_checks = lambda project: [  # type: ignore[assignment]
            d for d in original_loose(project) if d.code != "path_kind"]
    elif name == "best_no_direction":
        original_schema = validate.schema_diagnostics
        validate.schema_diagnostics = lambda *a, **kw: [  # type: ignore[assignment]
            d for d in original_schema(*a, **kw)
            if not (d.code == "required" and (d.pointer or "").startswith("/metrics/"))]
    elif name == "warnings_as_errors":
        validate.Report.errors = property(  # type: ignore[assignment]
            lambda self: list(self.diagnostics))


def _dollar_template() -> None:
    from reftool.files import load
    original = load.substitute

    def substitute(text: str, scope: Any) -> str:
        return original(text.replace("$${", "$\x00${"), scope).replace("\x00", "")
    load.substitute = substitute  # type: ignore[assignment]


def _star_no_keys() -> None:
    import dataclasses
    from reftool.files import load
    original = load._stage

    def stage(*args: Any) -> Any:
        s = original(*args)
        return dataclasses.replace(s, params=tuple(
            dataclasses.replace(p, whole=False) for p in s.params))
    load._stage = stage  # type: ignore[assignment]


def _generated_names(name: str) -> None:
    from reftool.files import load
    from reftool.files.values import scalar_text
    original = load._generated

    def generated(base: str, raw: Any, *args: Any) -> Any:
        seen = set()
        for i, (stage, local) in enumerate(original(base, raw, *args)):
            if "@" not in stage:  # a plain stage
                yield stage, local
                continue
            parts = stage.split("@", 1)[1].split(",")
            if name == "foreach_index_suffix" and isinstance(raw.get("foreach"), list):
                stage = f"{base}@{i}"
            elif name == "foreach_value_suffix" and isinstance(raw.get("foreach"), dict):
                stage = f"{base}@{scalar_text(local['item'])}"
            elif name == "matrix_reversed" and "matrix" in raw:
                stage = f"{base}@{','.join(reversed(parts))}"
            elif name == "matrix_values_only" and "matrix" in raw:
                stage = f"{base}@{','.join(p.split('=', 1)[1] for p in parts)}"
            elif name == "collision_first_wins" and stage in seen:
                continue
            seen.add(stage)
            yield stage, local
    load._generated = generated  # type: ignore[assignment]
