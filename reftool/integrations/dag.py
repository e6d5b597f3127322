"""The stage graph as text, Mermaid (renders in GitHub markdown) or Graphviz dot; with a plan,
the stages that will run are marked. Pure functions of the pipeline and the plan."""

from __future__ import annotations

import json
from collections.abc import Mapping

from ..files import graph
from ..files.model import Pipeline
from ..pipeline.plan import Plan


def _marks(plan: Plan | None) -> dict[str, str]:
    if plan is None:
        return {}
    marks = {n: "up to date" for n in plan.up_to_date}
    marks.update({n: "frozen" for n in plan.frozen})
    for d in plan.to_run:
        marks[d.name] = "blocked" if d.action == "blocked" else "downstream" \
            if d.downstream else ("restore" if d.action == "restore" else "stale")
    return marks


def edges(pipeline: Pipeline) -> tuple[list[str], list[tuple[str, str]]]:
    deps = graph.dependencies(pipeline)
    order = graph.topological_order(deps)
    return order, [(d, n) for n in order for d in sorted(deps[n]) if d in deps]


def render(pipeline: Pipeline, style: str, plan: Plan | None = None) -> str:
    order, pairs = edges(pipeline)
    marks = _marks(plan)
    if style == "mermaid":
        ids = {n: f"s{i}" for i, n in enumerate(order)}
        lines = ["```mermaid", "flowchart TD"]
        for n in order:
            label = n + (f" ({marks[n]})" if n in marks else "")
            lines.append(f'    {ids[n]}["{label.replace(chr(34), "#quot;")}"]')
        lines += [f"    {ids[a]} --> {ids[b]}" for a, b in pairs]
        styles = {"stale": "fill:#ffd7d7,stroke:#c00", "downstream": "fill:#fff0c2,stroke:#c90",
                  "restore": "fill:#d7e8ff,stroke:#06c",
                  "blocked": "fill:#e6e6e6,stroke:#666,stroke-dasharray:4"}
        for kind, style_text in styles.items():
            chosen = [ids[n] for n in order if marks.get(n) == kind]
            if chosen:
                lines.append(f"    classDef {kind} {style_text}")
                lines.append(f"    class {','.join(chosen)} {kind}")
        lines.append("```")
        return "\n".join(lines) + "\n"
    if style == "dot":
        colors = {"stale": "#ffd7d7", "downstream": "#fff0c2", "restore": "#d7e8ff",
                  "blocked": "#e6e6e6"}
        lines = ["digraph pipeline {", "  rankdir=TB;", "  node [shape=box];"]
        for n in order:
            attrs = [f"label={json.dumps(n + (chr(10) + marks[n] if n in marks else ''))}"]
            if marks.get(n) in colors:
                attrs.append(f'style=filled, fillcolor="{colors[marks[n]]}"')
            lines.append(f"  {json.dumps(n)} [{', '.join(attrs)}];")
        lines += [f"  {json.dumps(a)} -> {json.dumps(b)};" for a, b in pairs]
        lines.append("}")
        return "\n".join(lines) + "\n"
    users: Mapping[str, list[str]] = {n: [b for a, b in pairs if a == n] for n in order}
    lines = []
    for n in order:
        mark = f"  [{marks[n]}]" if n in marks else ""
        after = f" -> {', '.join(users[n])}" if users[n] else ""
        lines.append(f"{n}{mark}{after}")
    return "\n".join(lines) + "\n"
