"""Plans for people and for machines: the text `reftool plan` prints and its JSON
(schemas/plan.schema.json). Pure functions from a plan to text. SPEC [stale.reasons], [tool.plan].
"""

from __future__ import annotations

import json
from typing import Any

from ..files.model import EnvDigest


def _value_text(value: Any) -> str:
    """A param value for people: types stay visible (`1` is an int, `1.0` a float)."""
    from ..files.values import float_text
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
            if isinstance(v, EnvDigest):  # [security.secrets]: never the value
                return f"(digest {v.digest[:19]}...)"
            return "(not declared)" if v is ABSENT else "unset" if v is None else json.dumps(v)
        return f"env_changed    {r.key}: {env(r.old)} -> {env(r.new)}"
    if code == "definition_changed":
        def flags(v: Any) -> str:
            return "(none)" if v is ABSENT else ", ".join(f"{k}: {_value_text(x)}"
                                                          for k, x in v.items())
        if r.key == "wdir":
            return f"definition_changed  wdir: {json.dumps(r.old)} -> {json.dumps(r.new)}"
        if r.key == "rules":  # [lock.rules]: the directory is hashed under other rules
            def rules(v: Any) -> str:
                return "no rules" if v is ABSENT else str(v)[:19]
            return (f"definition_changed  rules of {r.path}: {rules(r.old)} -> {rules(r.new)} "
                    "(.reftoolignore or exclude changed)")
        return f"definition_changed  output {r.path}: {flags(r.old)} -> {flags(r.new)}"
    if code in ("dep_added", "dep_removed", "output_missing"):
        return f"{code:<14} {r.path}"
    if code == "dep_missing":  # [pipeline.deps-exist]: no stage produces it
        known = f"the lock records {_short(r.old)}" if r.old is not ABSENT \
            else "the lock does not record it"
        return f"dep_missing    {r.path}  (not here and no stage produces it; {known})"
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
        if d.action == "blocked":
            lines.append(f"{d.name}: blocked, cannot run: " + (
                "a dep is missing" if "dep_missing" in d.codes
                else "it waits on a blocked stage"))
        elif d.downstream:
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


