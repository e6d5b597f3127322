"""Renderers of validation reports: text, JSON (schemas/validation-report.schema.json), GitHub.

Pure functions from a report to text; the CLI prints what they return.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import __version__
from .errors import Diagnostic
from .spec import SPEC_VERSION_TEXT
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
        "version": SPEC_VERSION_TEXT,
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


# ---------------------------------------------------------------------------------- plans

def _value_text(value: Any) -> str:
    """A param value for people: types stay visible (`1` is an int, `1.0` a float)."""
    from .values import float_text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = float_text(value)
        return text + ".0" if text.lstrip("-").isdigit() else text
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value_text(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {_value_text(v)}"
                           for k, v in value.items()) + "}"


def _short(digest: Any) -> str:
    if digest is None:
        return "(missing)"
    return str(digest)[:19]  # sha256: and 12 hex digits


def reason_text(r: Any) -> str:
    from .plan import ABSENT
    code: str = r.code
    if code in ("never_run", "forced", "always_run"):
        return code
    if code == "upstream":
        return f"upstream       {', '.join(r.stages)} will run"
    if code == "command_changed":
        return (f"command_changed  {' && '.join(map(json.dumps, r.old))} -> "
                f"{' && '.join(map(json.dumps, r.new))}")
    if code == "env_changed":
        def env(v: Any) -> str:
            return "(not declared)" if v is ABSENT else "unset" if v is None else json.dumps(v)
        return f"env_changed    {r.key}: {env(r.old)} -> {env(r.new)}"
    if code == "definition_changed":
        def flags(v: Any) -> str:
            return "(none)" if v is ABSENT else ", ".join(f"{k}: {_value_text(x)}"
                                                          for k, x in v.items())
        if r.key == "wdir":
            return f"definition_changed  wdir: {json.dumps(r.old)} -> {json.dumps(r.new)}"
        return f"definition_changed  output {r.path}: {flags(r.old)} -> {flags(r.new)}"
    if code in ("dep_added", "dep_removed", "output_missing"):
        return f"{code:<14} {r.path}"
    if code in ("dep_modified", "output_modified"):
        return f"{code:<14} {r.path}  {_short(r.old)} -> {_short(r.new)}"
    if code == "param_added":
        return f"param_added    {r.file} {r.key}: {_value_text(r.new)}"
    if code == "param_removed":
        return f"param_removed  {r.file} {r.key} (was {_value_text(r.old)})"
    new = "(missing)" if r.new is ABSENT else _value_text(r.new)
    return f"param_changed  {r.file} {r.key}: {_value_text(r.old)} -> {new}"


def render_plan_text(plan: Any, *, verbose: bool = False) -> str:
    lines = []
    for d in plan.to_run:
        if d.downstream:
            lines.append(f"{d.name}: run, downstream (early cutoff may skip it)")
        else:
            lines.append(f"{d.name}: {d.action}" + (
                " (its outputs for these inputs are in the cache)" if d.action == "restore"
                else ""))
        lines.extend("    " + reason_text(r) for r in d.reasons)
    if verbose:
        lines.extend(f"{name}: up to date" for name in plan.up_to_date)
        lines.extend(f"{name}: frozen" for name in plan.frozen)
    if lines:
        lines.append("")
    lines.append(plan.summary())
    return "\n".join(lines) + "\n"


def render_plan_json(plan: Any) -> str:
    from .plan import plan_dict
    return json.dumps(plan_dict(plan), indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------- PR report

REPORT_LIMIT = 65_536  # characters GitHub accepts in a comment


def pr_report(old: Any, new: Any, declarations: Any, out: Path) -> Path:
    """Write `out/report.md` (params and metrics diff, better/worse marked) and its plots
    beside it; trimmed, with a note, to stay under REPORT_LIMIT characters."""
    from .compare import diff, param_label, render_diff
    from .plot import bars, curves, save

    out.mkdir(parents=True, exist_ok=True)
    snaps = [s for s in (old, new) if s is not None]
    head = ["# Experiment report", ""]
    head.append(f"**{new.label}** compared with **{old.label}**." if old is not None
                else f"**{new.label}** (no base to compare with).")
    head.append("")
    for name, draw, title in (("curves.png", curves, "Metrics per step"),
                              ("summary.png", bars, "Summary metrics")):
        try:
            save(draw(snaps), out / name)
        except ValueError:
            continue
        head += [f"### {title}", "", f"![{title}]({name})", ""]
    body: list[str] = []
    if old is not None:
        body += ["## Metrics", ""]
        body += render_diff(diff(old.metrics, new.metrics, declarations=declarations), "md",
                            old_label=old.label, new_label=new.label,
                            kind="metrics").splitlines()
        body += ["", "## Params", ""]
        body += render_diff(diff(old.params, new.params), "md", old_label=old.label,
                            new_label=new.label, kind="params",
                            label=param_label(old.params.keys() | new.params.keys())
                            ).splitlines()
        body.append("")
    text = _trimmed(head, body)
    path = out / "report.md"
    path.write_text(text, encoding="utf-8")
    return path


def _trimmed(head: list[str], body: list[str]) -> str:
    text = "\n".join(head + body) + "\n"
    if len(text) <= REPORT_LIMIT:
        return text
    budget = REPORT_LIMIT - len("\n".join(head)) - 400
    kept: list[str] = []
    used = 0
    for line in body:
        if used + len(line) + 1 > budget:
            break
        kept.append(line)
        used += len(line) + 1
    note = (f"\n> Trimmed: {len(body) - len(kept)} more lines are not shown, to stay under "
            f"the {REPORT_LIMIT:,} characters a pull-request comment holds; run "
            "`reftool metrics diff` and `reftool params diff` for all of them.\n")
    return "\n".join(head + kept) + "\n" + note
