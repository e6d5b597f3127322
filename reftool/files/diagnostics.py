"""Renderers of validation reports: text, JSON (schemas/validation-report.schema.json), GitHub.

Pure functions from a report to text; the CLI prints what they return.
"""

from __future__ import annotations

import json
from typing import Any

from .. import __version__
from .errors import Diagnostic
from .spec import WRITTEN_VERSION_TEXT
from .validate import Report


def _counts(report: Report) -> str:
    e, w = len(report.errors), len(report.warnings)
    files = len({f for f, _ in report.files})
    return (f"{e} error{'s' * (e != 1)}, {w} warning{'s' * (w != 1)} "
            f"in {files} file{'s' * (files != 1)}")


def render_text(report: Report) -> str:
    lines = []
    for d in report.diagnostics:
        lines.append(f"{d.location}: {d.severity}[{d.phase}/{d.code}]: {d.message}")
        if d.expected:
            lines.append(f"    expected: {d.expected}")
        if d.hint:
            lines.append(f"    hint: {d.hint}")
        if d.anchor:
            lines.append(f"    see: SPEC.md [{d.anchor}]")
    lines.extend(f"note: {n}" for n in report.notes)
    verdict = "valid" if not report.errors else "invalid"
    lines.append(f"{verdict}: {_counts(report)}")
    return "\n".join(lines) + "\n"


def diagnostic_dict(d: Diagnostic) -> dict[str, Any]:
    return {
        "severity": d.severity, "phase": d.phase, "code": d.code, "file": d.file,
        "line": d.line, "column": d.column, "pointer": d.pointer, "message": d.message,
        "expected": d.expected, "hint": d.hint, "anchor": d.anchor,
    }


def report_dict(report: Report) -> dict[str, Any]:
    return {
        # [version.write]: the file kind queue-entry is a 1.1 addition
        "version": "1.1" if any(k == "queue-entry" for _, k in report.files)
        else WRITTEN_VERSION_TEXT,
        "tool": {"name": "reftool", "version": __version__},
        "valid": not report.errors,
        "files": [{"path": p, "kind": k} for p, k in report.files],
        "diagnostics": [diagnostic_dict(d) for d in report.diagnostics],
    }


def render_json(report: Report) -> str:
    return json.dumps(report_dict(report), indent=2, ensure_ascii=False) + "\n"


def _gh_escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render_github(report: Report) -> str:
    """GitHub Actions workflow commands: one annotation per diagnostic."""
    lines = []
    for d in report.diagnostics:
        props = [f"file={_gh_escape(d.file, prop=True)}"]
        if d.line is not None:
            props.append(f"line={d.line}")
        if d.column is not None:
            props.append(f"col={d.column}")
        props.append(f"title={_gh_escape(f'{d.phase}/{d.code}', prop=True)}")
        message = d.message + (f" (expected: {d.expected})" if d.expected else "") + \
            (f" (hint: {d.hint})" if d.hint else "")
        lines.append(f"::{d.severity} {','.join(props)}::{_gh_escape(message)}")
    lines.append(_counts(report))
    return "\n".join(lines) + "\n"


RENDERERS = {"text": render_text, "json": render_json, "github": render_github}
