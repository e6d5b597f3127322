"""Curves as Mermaid `xychart-beta` charts: GitHub renders them in a comment, so a pull-request
report shows its curves with no image hosting. Pure: points in, text out."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

#: the colours of the lines, in order, with the square that names each in the legend line
PALETTE = (("#1f77b4", "🟦"), ("#ff7f0e", "🟧"), ("#2ca02c", "🟩"), ("#d62728", "🟥"),
           ("#9467bd", "🟪"), ("#8c564b", "🟫"))
MAX_POINTS = 60  # per line: a chart people read, and a comment that stays small
_UNSAFE = re.compile(r"[^A-Za-z0-9 _.,:/@+=()\-]")

Points = Sequence[tuple[int, float]]


def mermaid_text(text: str, limit: int = 80) -> str:
    """[security.markdown]: text from a file inside a Mermaid block keeps letters, digits,
    space and `_.,:/@+=()-` alone (no quote, bracket, backtick, `%%` or newline can end a
    string, a statement or the block); the rest become `_`."""
    text = _UNSAFE.sub("_", text[:limit])
    return text + ("_" if len(text) == limit else "")


def _num(v: float) -> str:
    text = f"{v:.4g}"
    return text if "e" not in text else f"{v:.6f}".rstrip("0").rstrip(".")


def grid(sources: Sequence[Points], points: int = MAX_POINTS) -> list[int]:
    """The steps the chart shows: every step when few, else `points` evenly spread."""
    steps = sorted({s for src in sources for s, _ in src})
    if len(steps) <= points:
        return steps
    return [steps[round(i * (len(steps) - 1) / (points - 1))] for i in range(points)]


def value_at(src: Points, step: int) -> float:
    """The value at `step`: the last logged at or before it (a series that stopped earlier
    keeps its last value), the first value before the series starts."""
    best = src[0][1]
    for s, v in src:
        if s > step:
            break
        best = v
    return best


def xychart(title: str, y_label: str, sources: Sequence[tuple[str, Points]],
            *, low: float, high: float) -> list[str]:
    """A fenced Mermaid block with one line per source on a common step grid, values clipped
    into [low, high] (a NaN drawn at the top), then a legend line naming each colour."""
    shown = list(sources)[:len(PALETTE)]
    steps = grid([p for _, p in shown])
    palette = ", ".join(c for c, _ in PALETTE[:len(shown)])
    lines = ["```mermaid",
             f'%%{{init: {{"themeVariables": {{"xyChart": {{"plotColorPalette": "{palette}"}}}}}}}}%%',
             "xychart-beta",
             f'    title "{mermaid_text(title)}"',
             f'    x-axis "step" [{", ".join(str(s) for s in steps)}]',
             f'    y-axis "{mermaid_text(y_label)}" {_num(low)} --> {_num(high)}']
    for _, points in shown:
        values = [value_at(points, s) for s in steps]
        clipped = [high if math.isnan(v) else min(max(v, low), high) for v in values]
        lines.append(f"    line [{', '.join(_num(v) for v in clipped)}]")
    lines.append("```")
    return lines


def legend(sources: Sequence[str]) -> str:
    return " · ".join(f"{sq} {name}" for (_, sq), name in zip(PALETTE, sources))
