"""Reading mutants: each switch makes the reference adapter follow one *defensible alternative
reading* of a rule of SPEC.md sections 3, 4, 8, 9, 12 and 13 (reading, values, byte-exactness,
error codes), not a crude bug. Each must be killed by at least one fixed case: the case ids
below (`KILLED_BY`) are checked by `test_reading_mutants.py`. Selected with MUTANT=NAME, like
the mutants of `mutants.py`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

READING_MUTANTS = {
    "bare_tag_str": "the non-specific tag `! 12` read as a str, as YAML resolves it",
    "key_tag_spelled": "a key tagged `!!int 1` read as the text it spells, like a plain key",
    "zero_documents_null": "an empty YAML stream read as one null document",
    "depth_root_is_zero": "the root collection counted as level 0, so 65 collections pass",
    "depth_scalar_counts": "the scalar at the bottom counted as a level, so 64 collections fail",
    "lone_surrogate_kept": "a lone surrogate escape in JSON accepted as a code unit",
    "pointer_leading_zero": "the pointer segment `01` taken as list index 1 (only digits)",
    "template_leading_zero": "the template `${a[01]}` taken as index 1",
    "integral_float_is_int": "`1.0` accepted where an integer is required (JSON Schema's integer)",
    "shortest_lowest_digit": "of the shortest round-tripping texts, the lowest (3e-324)",
    "noncanonical_float_rejected": "a typed float text that is not canonical (`1e+5`) rejected",
    "toml_microseconds": "TOML date-times as Python normalizes them (6 fraction digits)",
    "toml_minus_zero_is_z": "the TOML offset `-00:00` written `Z` like `+00:00`",
    "series_torn_header_error": "a series holding only a torn header reported version_missing",
    "series_crlf_tolerated": "CR LF line endings accepted in a series file",
    "series_steps_increase": "series steps required to increase",
    "dates_by_pattern_only": "RFC 3339 dates checked by the pattern only (February 30 passes)",
    "record_host_floats": "experiment records written with the host's float text (1e-07, 3.0)",
    "kind_by_stages_only": "validate takes a file for a pipeline only when it has `stages`",
    "schema_code_fallback": "a keyword missing from the list reported as schema/format",
    "ignore_first_match": "[digest.ignore] the first matching rule decides, not the last",
    "ignore_reinclude_below": "[digest.ignore] `!` includes again a file below an excluded "
                              "directory (excluded directories are walked)",
    "ignore_case_fold": "[digest.ignore-syntax] patterns match without case (as on macOS)",
    "ignore_file_from_dir": "[digest.ignore-file] anchored lines of .reftoolignore matched from "
                            "each directory, not from the project root",
    "dangling_link_error": "[digest.directory] a dangling link inside a directory is an error",
    "names_as_stored": "[digest.directory] names hashed as the file system stores them, not NFC",
    "record_sizes_zero": "[lock.contents] a recorder that is given no file writes size 0 (and no "
                         "file count), as the 1.0 protocol made it",
    "signature_inputs_only": "[digest.signature] the signature built from the inputs alone "
                             "(cmd, wdir, deps, params, env), leaving out the outputs' options",
    "whole_file_leaves": "[params.whole-file] `\"*\"` read as every key at every depth, so the "
                         "lock records one pointer per leaf (/opt/name), not per top-level key",
}

# the cases that kill each mutant (at least one must fail with it)
KILLED_BY = {
    "bare_tag_str": ["RD-0018"],
    "key_tag_spelled": ["RD-0022"],
    "zero_documents_null": ["RD-0024", "RD-0025", "VA-0061"],
    "depth_root_is_zero": ["RD-0030", "RD-0032", "RD-0034", "RD-0035"],
    "depth_scalar_counts": ["RD-0029", "RD-0031", "RD-0033"],
    "lone_surrogate_kept": ["RD-0028"],
    "pointer_leading_zero": ["VA-0055"],
    "template_leading_zero": ["VA-0058"],
    "integral_float_is_int": ["VA-0050", "VA-0051", "VA-0052"],
    "shortest_lowest_digit": ["CN-0008", "CN-0009", "CN-0010"],
    "noncanonical_float_rejected": ["CN-0006", "CN-0007"],
    "toml_microseconds": ["VL-0033", "VL-0034", "VL-0036", "VL-0038"],
    "toml_minus_zero_is_z": ["VL-0035"],
    "series_torn_header_error": ["VA-0066", "VA-0067"],
    "series_crlf_tolerated": ["VA-0069"],
    "series_steps_increase": ["VA-0074"],
    "dates_by_pattern_only": ["VA-0070", "VA-0071", "VA-0073", "VA-0075", "CN-0020"],
    "record_host_floats": ["CN-0015", "CN-0016", "CN-0017"],
    "kind_by_stages_only": ["VA-0078"],
    "schema_code_fallback": ["VA-0053"],
    "ignore_first_match": ["DG-0302", "DG-0306"],
    "ignore_reinclude_below": ["DG-0303"],
    "ignore_case_fold": ["DG-0305"],
    "ignore_file_from_dir": ["DG-0306"],
    "dangling_link_error": ["DG-0307"],
    "names_as_stored": ["DG-0312"],
    "record_sizes_zero": ["LK-0007", "LK-0700"],
    "whole_file_leaves": ["LK-0701"],
    "signature_inputs_only": ["DG-0700", "DG-0701"],
}


def apply(name: str) -> None:
    """Turn on one reading mutant (before any file is read)."""
    globals()["_" + name]()


def _bare_tag_str() -> None:
    from reftool.files import documents
    original = documents._YamlBuilder._scalar_value

    def scalar_value(self: Any, ev: Any, loc: Any, path: Any) -> Any:
        return ev.value if ev.tag == "!" else original(self, ev, loc, path)
    documents._YamlBuilder._scalar_value = scalar_value  # type: ignore[method-assign]


def _key_tag_spelled() -> None:
    from reftool.files import documents
    original = documents._YamlBuilder._take_key

    def take_key(self: Any, frame: Any, ev: Any, name: str, loc: Any) -> None:
        if name == "ScalarEvent" and (ev.tag or "").startswith(documents._TAG):
            ev.tag = None
        original(self, frame, ev, name, loc)
    documents._YamlBuilder._take_key = take_key  # type: ignore[method-assign]


def _zero_documents_null() -> None:
    from reftool.files import documents
    original = documents._YamlBuilder.build

    def no_document(self: Any) -> Exception:
        return _NullDocument()

    def build(self: Any, text: str) -> Any:
        try:
            return original(self, text)
        except _NullDocument:
            return None, self.positions
    documents._YamlBuilder._no_document = no_document  # type: ignore[method-assign]
    documents._YamlBuilder.build = build  # type: ignore[method-assign]


class _NullDocument(Exception):
    pass


def _depth_root_is_zero() -> None:
    from reftool.files import documents
    documents.MAX_DEPTH = 65  # type: ignore[attr-defined]


def _depth_scalar_counts() -> None:
    from reftool.files import documents
    documents.MAX_DEPTH = 63  # type: ignore[attr-defined]


def _lone_surrogate_kept() -> None:
    from reftool.files import documents
    documents._check_scalar_values = lambda value, display, text: None  # type: ignore


def _pointer_leading_zero() -> None:
    from reftool.files import values
    values._INDEX = re.compile(r"[0-9]+")  # type: ignore[attr-defined]


def _template_leading_zero() -> None:
    from reftool.files import load
    load._INDEX = re.compile(r"[0-9]+")  # type: ignore[attr-defined]


def _integral_float_is_int() -> None:
    from reftool.files import schemas
    schemas._is_int = lambda checker, x: (  # type: ignore[assignment]
        isinstance(x, int) and not isinstance(x, bool)) or (
        isinstance(x, float) and x.is_integer())


def _shortest_lowest_digit() -> None:
    from reftool.files import values
    original = values.float_text

    def float_text(x: float) -> str:
        text = original(x)
        m = re.fullmatch(r"(-?)([1-9])e(-3[0-9][0-9])", text)
        if m:  # near the subnormals several one-digit texts round-trip: take the lowest
            for d in range(1, int(m.group(2))):
                if float(f"{m.group(1)}{d}e{m.group(3)}") == x:
                    return f"{m.group(1)}{d}e{m.group(3)}"
        return text
    values.float_text = float_text  # type: ignore[assignment]


def _noncanonical_float_rejected() -> None:
    from reftool.files import values
    from reftool.files.errors import SpecError, diagnostic
    original = values.from_typed_tree

    def from_typed_tree(tree: Any) -> Any:
        value = original(tree)
        if "float" in tree and values.float_text(value) != tree["float"]:
            raise SpecError([diagnostic("schema", "pattern", "input", "not canonical")])
        return value
    values.from_typed_tree = from_typed_tree  # type: ignore[assignment]


def _toml_microseconds() -> None:
    import datetime as dt

    from reftool.files import documents

    def as_python(value: Any, text: str, display: str) -> Any:
        if isinstance(value, dict):
            return {k: as_python(v, text, display) for k, v in value.items()}
        if isinstance(value, list):
            return [as_python(v, text, display) for v in value]
        if isinstance(value, (dt.date, dt.time)):
            iso = value.isoformat()
            return iso[:-6] + "Z" if iso.endswith("+00:00") else iso
        return value
    documents._toml_times_as_text = as_python  # type: ignore[assignment]


def _toml_minus_zero_is_z() -> None:
    from reftool.files import documents
    original = documents.toml_datetime_text
    documents.toml_datetime_text = lambda m: (  # type: ignore[assignment]
        original(m)[:-6] + "Z" if original(m).endswith("-00:00") else original(m))


def _series_wrapper(before: Any = None, after: Any = None) -> None:
    from reftool.files import validate
    original = validate.validate_series_file

    def validate_series_file(path: Path, display: str, report: Any) -> None:
        if before:
            before(path)
        original(path, display, report)
        if after:
            after(path, display, report)
    validate.validate_series_file = validate_series_file  # type: ignore[assignment]


def _series_torn_header_error() -> None:
    from reftool.files.errors import diagnostic

    def after(path: Path, display: str, report: Any) -> None:
        if b"\n" not in path.read_bytes():
            report.diagnostics.append(diagnostic("version", "version_missing", display, "torn"))
    _series_wrapper(after=after)


def _series_crlf_tolerated() -> None:
    _series_wrapper(before=lambda p: p.write_bytes(p.read_bytes().replace(b"\r\n", b"\n")))


def _series_steps_increase() -> None:
    from reftool.files.errors import diagnostic

    def after(path: Path, display: str, report: Any) -> None:
        steps = []
        for line in path.read_bytes().split(b"\n")[1:-1]:
            try:
                steps.append(json.loads(line)["step"])
            except (ValueError, KeyError, TypeError):
                continue
        if any(b <= a for a, b in zip(steps, steps[1:])):
            report.diagnostics.append(diagnostic("schema", "minimum", display, "step order"))
    _series_wrapper(after=after)


def _dates_by_pattern_only() -> None:
    from reftool.files import schemas
    schemas.is_rfc3339 = lambda value: True  # type: ignore[assignment]


def _record_host_floats() -> None:
    from reftool.files import model
    model.canonical_json = lambda value: json.dumps(  # type: ignore[assignment]
        model.canonical_order(value), indent=2, ensure_ascii=False) + "\n"


def _kind_by_stages_only() -> None:
    from reftool.files import validate
    validate._misspelt_pipeline = lambda value: False  # type: ignore[assignment]


def _schema_code_fallback() -> None:
    from reftool.files import validate
    validate._SCHEMA_CODES = validate._SCHEMA_CODES - {"maxProperties"}  # type: ignore


def _ignore_first_match() -> None:
    from reftool.files import ignore

    def excluded(self: Any, rel: str, is_dir: bool) -> bool:
        name = rel.rpartition("/")[2]
        for rule in self.rules:  # first to last
            if rule.dir_only and not is_dir:
                continue
            subject = (self.base + rel if rule.source == "ignore" else rel) \
                if rule.anchored else name
            if rule.regex.fullmatch(subject):
                return not rule.negate
        return False
    ignore.Rules.excluded = excluded  # type: ignore[method-assign]


def _ignore_reinclude_below() -> None:
    from reftool.files import ignore
    original = ignore.Rules.excluded

    def excluded(self: Any, rel: str, is_dir: bool) -> bool:
        if is_dir:
            return False  # every directory is walked
        matched = [r for r in self.rules if (not r.dir_only) and r.regex.fullmatch(
            ((self.base + rel if r.source == "ignore" else rel) if r.anchored
             else rel.rpartition("/")[2]))]
        if matched:
            return not matched[-1].negate
        parts = rel.split("/")
        return any(original(self, "/".join(parts[:i]), True) for i in range(1, len(parts)))
    ignore.Rules.excluded = excluded  # type: ignore[method-assign]


def _ignore_case_fold() -> None:
    import dataclasses
    import re
    from reftool.files import ignore
    original = ignore.compile_pattern

    def compile_pattern(text: str, source: Any) -> Any:
        rule = original(text, source)
        return dataclasses.replace(rule, regex=re.compile(rule.regex.pattern,
                                                          re.DOTALL | re.IGNORECASE))
    ignore.compile_pattern = compile_pattern  # type: ignore[assignment]


def _ignore_file_from_dir() -> None:
    from reftool.files import ignore
    original = ignore.Rules.excluded

    def excluded(self: Any, rel: str, is_dir: bool) -> bool:
        return original(ignore.Rules(rules=tuple(
            r if r.source == "exclude" else ignore.Rule(
                source="exclude", text=r.text, negate=r.negate, dir_only=r.dir_only,
                anchored=r.anchored, regex=r.regex) for r in self.rules), base=""), rel, is_dir)
    ignore.Rules.excluded = excluded  # type: ignore[method-assign]


def _dangling_link_error() -> None:
    from reftool.pipeline import hashing
    original = hashing._link_target

    def link_target(link: str, shown: str, real_root: str) -> Any:
        found = original(link, shown, real_root)
        if found is None:
            raise hashing.HashError("file_not_found", shown, f"{shown!r} is dangling",
                                    phase="io")
        return found
    hashing._link_target = link_target  # type: ignore[assignment]


def _names_as_stored() -> None:
    from reftool.pipeline import hashing
    hashing._nfc = lambda text: text  # type: ignore[assignment]


def _record_sizes_zero() -> None:
    import dataclasses
    from reftool.pipeline import plan
    original = plan.record

    def zero(state: Any) -> Any:
        return dataclasses.replace(state, size=0, files=None)

    def record(stage: Any, observer: Any) -> Any:
        entry = original(stage, observer)
        return dataclasses.replace(
            entry, deps={p: zero(s) for p, s in entry.deps.items()},
            outs={p: dataclasses.replace(o, state=zero(o.state)) for p, o in entry.outs.items()})
    plan.record = record  # type: ignore[assignment]


def _whole_file_leaves() -> None:
    from reftool.files.values import pointer_for
    from reftool.pipeline import plan
    original = plan.effective_params

    def leaves(value: Any, prefix: str) -> list[str]:
        if not isinstance(value, dict) or not value:
            return [prefix]
        return [p for k, v in value.items() for p in leaves(v, prefix + pointer_for(k))]

    def effective_params(stage: Any, observer: Any, *, skip: Any = ()) -> Any:
        found = original(stage, observer, skip=skip)
        for ref in stage.params:
            if ref.whole and ref.file in found:
                found[ref.file] = [p for k, v in observer.params_file(ref.file).items()
                                   for p in leaves(v, pointer_for(k))]
        return found
    plan.effective_params = effective_params  # type: ignore[assignment]


def _signature_inputs_only() -> None:
    from reftool.files.values import params_digest
    from reftool.pipeline import plan

    def input_signature(stage: Any, entry: Any, observer: Any = None) -> str:
        return params_digest({
            "cmd": list(entry.cmd), "wdir": entry.wdir,
            "deps": {p: s.digest for p, s in entry.deps.items()},
            "params": {f: dict(v) for f, v in entry.params.items()},
            "env": dict(entry.env)})
    plan.input_signature = input_signature  # type: ignore[assignment]
