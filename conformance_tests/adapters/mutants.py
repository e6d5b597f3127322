"""Deliberately broken variants of the reference implementation: each carries one realistic bug.

The suite must catch every one of them with at least one fixed case and one property
(`test_conformance.py` checks that it does). Selected with MUTANT=NAME for the reference adapter.
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
    else:
        from reading_mutants import READING_MUTANTS
        from reading_mutants import apply as apply_reading
        if name in READING_MUTANTS:
            return apply_reading(name)
        raise SystemExit(f"no mutant {name!r}; known: {', '.join(MUTANTS)}")
