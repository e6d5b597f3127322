"""From schema-valid documents to model objects: SPEC sections 6, 7 and 9.

Expands `foreach` / `matrix` ([generate.foreach], [generate.matrix]) and runs the typed
templating pre-pass ([template.syntax] .. [template.inputs]). Every problem becomes a diagnostic
located in the pipeline file; the model is built from what is left.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .documents import Document, JsonPath, located
from .errors import Diagnostic
from .model import (
    Dep,
    Lock,
    MetricDeclaration,
    Output,
    PlotDefinition,
    ParamsRef,
    Pipeline,
    Stage,
    default_env_digest,
    lock_from_dict,
)
from .spec import (
    DEFAULT_CACHE,
    MAX_STAGES,
    MAX_TEMPLATED_CHARS,
    MAX_TEMPLATED_TOTAL,
    OUTPUT_SECTIONS,
)
from .values import pointer_for, scalar_text

_SUFFIX_PART = re.compile(r"[A-Za-z0-9_.+-]+")  # [generate.names]
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INDEX = re.compile(r"0|[1-9][0-9]*")  # [template.syntax]: RFC 6901 indices, no leading zero
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


class TemplateError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class VarsContext:
    """[template.context]: top-level names of the `vars` files, and which file holds each."""

    values: Mapping[str, Any]
    source: Mapping[str, str]


@dataclass(slots=True)
class _Scope:
    """What one stage's templates can see, and what they used."""

    vars: VarsContext
    local: dict[str, Any]
    used: dict[str, list[str]] = field(default_factory=dict)  # vars file -> pointers
    budget: list[int] = field(default_factory=lambda: [MAX_TEMPLATED_TOTAL])  # shared

    def lookup(self, expr: str) -> Any:
        name, accessors = parse_expression(expr)
        if name in self.local:
            value = self.local[name]
            from_vars = None
        elif name in self.vars.values:
            value = self.vars.values[name]
            from_vars = self.vars.source[name]
        else:
            raise TemplateError("template_undefined", f"${{{expr}}}: {name!r} is not defined")
        for acc in accessors:
            if isinstance(acc, int) and isinstance(value, list) and acc < len(value):
                value = value[acc]
            elif isinstance(acc, str) and isinstance(value, dict) and acc in value:
                value = value[acc]
            else:
                raise TemplateError("template_undefined",
                                    f"${{{expr}}}: no {acc!r} in {name!r}")
        if from_vars is not None:
            pointer = pointer_for(name, *accessors)
            pointers = self.used.setdefault(from_vars, [])
            if pointer not in pointers:
                pointers.append(pointer)
        return value


def parse_expression(expr: str) -> tuple[str, list[str | int]]:
    """[template.syntax]: NAME followed by `.NAME`, `[INDEX]` or `["KEY"]` accessors."""
    m = _NAME.match(expr)
    if not m:
        raise TemplateError("template_syntax", f"${{{expr}}}: expected a name")
    name, i = m.group(), m.end()
    accessors: list[str | int] = []
    while i < len(expr):
        if expr[i] == "." and (m := _NAME.match(expr, i + 1)):
            accessors.append(m.group())
            i = m.end()
        elif expr[i] == "[" and (m := _INDEX.match(expr, i + 1)) and \
                expr[m.end():m.end() + 1] == "]":
            accessors.append(int(m.group()))
            i = m.end() + 1
        elif expr[i] == "[" and (m := _JSON_STRING.match(expr, i + 1)) and \
                expr[m.end():m.end() + 1] == "]":
            accessors.append(json.loads(m.group()))
            i = m.end() + 1
        else:
            raise TemplateError("template_syntax",
                                f"${{{expr}}}: unexpected {expr[i:]!r} after {expr[:i]!r}")
    return name, accessors


def _template_end(text: str, start: int) -> int:
    """Index of the `}` closing the `${` before `start`, skipping JSON strings inside."""
    i = start
    while i < len(text):
        if text[i] == '"':
            m = _JSON_STRING.match(text, i)
            if not m:
                break
            i = m.end()
        elif text[i] == "}":
            return i
        else:
            i += 1
    raise TemplateError("template_syntax", f"unterminated '${{' in {text!r}")


def substitute(text: str, scope: _Scope) -> str:
    """[template.syntax], [template.typed]"""
    if "$" not in text:
        return text
    out: list[str] = []
    i = size = 0
    while True:
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        if text.startswith("$${", j):
            out.append("${")
            i = j + 3
        elif text.startswith("${", j):
            end = _template_end(text, j + 2)
            value = scope.lookup(text[j + 2:end])
            if value is None or isinstance(value, (list, dict)):
                kind = "null" if value is None else type(value).__name__.replace("dict", "map")
                raise TemplateError("template_type",
                                    f"${{{text[j + 2:end]}}} is a {kind}; only a string, "
                                    "number or boolean can be inserted")
            out.append(scalar_text(value))
            size += j - i + len(out[-1])
            _spend(scope, len(out[-1]), size)
            i = end + 1
        else:
            out.append("$")
            i = j + 1


def _spend(scope: _Scope, added: int, length: int) -> None:
    """[security.bounds]: one templated string, and all of a pipeline's, stay bounded."""
    scope.budget[0] -= added
    if length > MAX_TEMPLATED_CHARS:
        raise TemplateError("expansion_limit", f"the string grows past {MAX_TEMPLATED_CHARS:,} "
                            "characters after templating")
    if scope.budget[0] < 0:
        raise TemplateError("expansion_limit", "templating inserts more than "
                            f"{MAX_TEMPLATED_TOTAL:,} characters in the whole pipeline")


def _count(raw: Mapping[str, Any]) -> int:
    """How many stages a definition generates, without generating them."""
    if "foreach" in raw:
        return len(raw["foreach"])
    if "matrix" in raw:
        return math.prod(len(v) for v in raw["matrix"].values())
    return 1


# ---------------------------------------------------------------------------------- expansion

def _generated(name: str, raw: Mapping[str, Any], path: JsonPath, doc: Document,
               problems: list[Diagnostic]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(stage name, local template names) of each stage a definition generates."""
    if "foreach" in raw:
        items = raw["foreach"]
        pairs = (list(items.items()) if isinstance(items, dict)
                 else [(scalar_text(v), v) for v in items])
        for i, (suffix, value) in enumerate(pairs):
            if not _SUFFIX_PART.fullmatch(suffix):
                where = path + ("foreach",) + ((suffix,) if isinstance(items, dict) else (i,))
                problems.append(located(
                    doc, "semantic", "generated_name", where,
                    f"stage {name!r}: {suffix!r} cannot be part of a stage name",
                    key=isinstance(items, dict),
                    expected="letters, digits, '_', '.', '+', '-'",
                    hint="use a mapping whose keys name the stages", anchor="generate.names"))
                continue
            local = {"item": value, "key": suffix} if isinstance(items, dict) else {"item": value}
            yield f"{name}@{suffix}", local
    elif "matrix" in raw:
        axes: list[list[tuple[str, Any]]] = []
        for axis, values in raw["matrix"].items():
            pairs = (list(values.items()) if isinstance(values, dict)
                     else [(scalar_text(v), v) for v in values])
            for i, (part, _) in enumerate(pairs):
                if not _SUFFIX_PART.fullmatch(part):
                    where = path + ("matrix", axis) + ((part,) if isinstance(values, dict)
                                                       else (i,))
                    problems.append(located(
                        doc, "semantic", "generated_name", where,
                        f"stage {name!r}: {part!r} cannot be part of a stage name",
                        expected="letters, digits, '_', '.', '+', '-'",
                        hint="make the axis a mapping whose keys name the values",
                        anchor="generate.names"))
            axes.append([(f"{axis}={part}", (axis, v)) for part, v in pairs])
        if any(p.code == "generated_name" and p.pointer.startswith(
                "/stages/" + name.replace("~", "~0") + "/matrix") for p in problems):
            return
        for combo in itertools.product(*axes):
            yield (f"{name}@" + ",".join(c[0] for c in combo),
                   {"item": dict(c[1] for c in combo)})
    else:
        yield name, {}


_TEMPLATE_ANCHORS = {
    "template_syntax": "template.syntax", "template_undefined": "template.context",
    "template_type": "template.typed", "expansion_limit": "security.bounds",
}


def _resolve(raw: Mapping[str, Any], scope: _Scope, doc: Document, path: JsonPath,
             stage: str, problems: list[Diagnostic]) -> dict[str, Any] | None:
    """The stage definition with its templates replaced; None when a template failed."""
    ok = True

    def sub(text: str, where: JsonPath) -> str:
        nonlocal ok
        try:
            return substitute(text, scope)
        except TemplateError as e:
            ok = False
            problems.append(located(doc, "semantic", e.code, where,
                                    f"stage {stage!r}: {e}",
                                    anchor=_TEMPLATE_ANCHORS[e.code]))
            return text

    out = {k: v for k, v in raw.items() if k not in ("foreach", "matrix")}
    cmd = raw["cmd"]
    out["cmd"] = (sub(cmd, path + ("cmd",)) if isinstance(cmd, str)
                  else [sub(c, path + ("cmd", i)) for i, c in enumerate(cmd)])
    if "wdir" in raw:
        out["wdir"] = sub(raw["wdir"], path + ("wdir",))
    if "deps" in raw:
        out["deps"] = [sub(d, path + ("deps", i)) if isinstance(d, str)
                       else {**d, "path": sub(d["path"], path + ("deps", i, "path"))}
                       for i, d in enumerate(raw["deps"])]
    if "params" in raw:
        out["params"] = {
            f: (keys if keys == "*" else [sub(k, path + ("params", f, i))
                                          for i, k in enumerate(keys)])
            for f, keys in raw["params"].items()}
    for section in OUTPUT_SECTIONS:
        if section in raw:
            out[section] = [
                sub(o, path + (section, i)) if isinstance(o, str)
                else {**o, "path": sub(o["path"], path + (section, i, "path"))}
                for i, o in enumerate(raw[section])]
    return out if ok else None


def _env_name(entry: str | Mapping[str, Any]) -> str:
    """[pipeline.env-record]: a name, or (1.1) a mapping {name, record}."""
    return entry if isinstance(entry, str) else str(entry["name"])
def _plot_definition(spec: Mapping[str, Any]) -> PlotDefinition | None:
    """[plots.definition]: a plots output with template, x or y is a declared plot."""
    if not any(k in spec for k in ("template", "x", "y")):
        return None
    return PlotDefinition(template=spec.get("template", "line"), x=spec["x"], y=spec["y"],
                          count=spec.get("count"), title=spec.get("title"))


def _stage(name: str, base: str, d: Mapping[str, Any], used: Mapping[str, list[str]]) -> Stage:
    outputs: list[Output] = []
    for section in OUTPUT_SECTIONS:
        for i, o in enumerate(d.get(section, [])):
            spec: Mapping[str, Any] = {"path": o} if isinstance(o, str) else o
            kind: Literal["summary", "series", "plain"] | None = None
            if section == "metrics":  # [pipeline.outputs]: the default kind
                kind = spec.get("kind") or (
                    "series" if spec["path"].endswith(".jsonl") else "summary")
            outputs.append(Output(path=spec["path"], section=section, index=i,
                                  cache=spec.get("cache", DEFAULT_CACHE[section]),
                                  persist=spec.get("persist", False), kind=kind,
                                  exclude=tuple(spec.get("exclude", ())),
                                  plot=_plot_definition(spec) if section == "plots" else None))
    params = [ParamsRef(file=f, pointers=() if keys == "*" else tuple(keys), whole=keys == "*")
              for f, keys in d.get("params", {}).items()]
    params += [ParamsRef(file=f, pointers=tuple(ps), from_template=True)
               for f, ps in used.items()]
    cmd = d["cmd"]
    wdir = d.get("wdir", ".")
    return Stage(
        name=name, base=base,
        cmd=(cmd,) if isinstance(cmd, str) else tuple(cmd),
        wdir=wdir[:-1] if wdir.endswith("/") else wdir,
        desc=d.get("desc"),
        deps=tuple(Dep(path=p, index=i) if isinstance(p, str) else
                   Dep(path=p["path"], index=i, exclude=tuple(p.get("exclude", ())))
                   for i, p in enumerate(d.get("deps", []))),
        params=tuple(params),
        env=tuple(_env_name(e) for e in d.get("env", [])),
        env_digest=frozenset(_env_name(e) for e in d.get("env", []) if default_env_digest(
            _env_name(e), None if isinstance(e, str) else e.get("record"))),
        outputs=tuple(outputs),
        always_run=d.get("always_run", False),
        frozen=d.get("frozen", False),
        resources=dict(d.get("resources", {})),
    )


def build_pipeline(doc: Document, vars_context: VarsContext,
                   revalidate: Any = None) -> tuple[Pipeline, list[Diagnostic]]:
    """The model of a schema-valid pipeline document, and the problems found building it.

    `revalidate(stage_dict, path) -> list[Diagnostic]` checks a stage after templating; the
    validator passes the stage schema here ([template.syntax]: templated paths obey [paths.form]).
    """
    raw = doc.value
    problems: list[Diagnostic] = []
    stages: dict[str, Stage] = {}
    budget, count = [MAX_TEMPLATED_TOTAL], 0
    for base, definition in raw["stages"].items():
        path: JsonPath = ("stages", base)
        count += _count(definition)
        if count > MAX_STAGES:  # [security.bounds]
            problems.append(located(doc, "semantic", "expansion_limit", path,
                                    f"stage {base!r} makes the pipeline more than "
                                    f"{MAX_STAGES:,} stages", key=True,
                                    expected=f"at most {MAX_STAGES:,} stages after foreach "
                                    "and matrix", anchor="security.bounds"))
            break
        for name, local in _generated(base, definition, path, doc, problems):
            scope = _Scope(vars_context, local, budget=budget)
            resolved = _resolve(definition, scope, doc, path, name, problems)
            if resolved is None:
                continue
            if (scope.used or local) and revalidate is not None:
                found = revalidate(resolved, path)
                if found:
                    problems.extend(found)
                    continue
            if name in stages:
                problems.append(located(doc, "semantic", "duplicate_stage", path,
                                        f"stage name {name!r} is generated twice",
                                        key=True, anchor="generate.names"))
                continue
            stages[name] = _stage(name, base, resolved, scope.used)
    metrics = {n: MetricDeclaration(name=n, direction=m.get("direction"),
                                    summary=m.get("summary", "last"),
                                    tolerance=m.get("tolerance"))
               for n, m in raw.get("metrics", {}).items()}
    return Pipeline(file=doc.file, version=raw["version"], stages=stages,
                    vars=tuple(raw.get("vars", [])), metrics=metrics,
                    description=raw.get("description")), problems


def build_lock(doc: Document) -> Lock:
    """The model of a schema-valid lock document."""
    return lock_from_dict(doc.value)
