"""One self-contained HTML page: every plot inline as SVG and the comparison table, for when a
browser is at hand. Nothing is fetched when it is viewed: no script, no link, no font, and a
Content-Security-Policy that forbids every request."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .records import Snapshot

#: no request of any kind (scripts, styles, images, fonts, frames) leaves the page
POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_PROLOG = re.compile(rb"^.*?(?=<svg)", re.S)
_METADATA = re.compile(rb"<metadata>.*?</metadata>\s*", re.S)
_STYLE = """body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 8px}
td.n{text-align:right;font-variant-numeric:tabular-nums}svg{max-width:100%;height:auto}"""


def table_html(snaps: Sequence[Snapshot]) -> str:
    """exp show's table (params that differ, every metric), each cell escaped."""
    from .compare import fmt, table
    t = table(snaps)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)
    rows = "".join(
        "<tr>" + "".join(f'<td class="{"n" if k != "name" else "s"}">{html.escape(fmt(v))}</td>'
                         for v, k in zip(row, t.kinds)) + "</tr>\n"
        for row in t.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{rows}</tbody></table>"


def render(figures: Sequence[tuple[str, Any]], snaps: Sequence[Snapshot]) -> str:
    from .plot import figure_bytes
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">',
             "<title>reftool plots</title>", f"<style>{_STYLE}</style></head><body>",
             "<h1>reftool plots</h1>", "<h2>Experiments</h2>", table_html(snaps)]
    for name, fig in figures:
        svg = _METADATA.sub(b"", _PROLOG.sub(b"", figure_bytes(fig, "svg"), count=1),
                            count=1).decode("utf-8")
        parts += [f"<h2>{html.escape(name)}</h2>", f"<figure>{svg}</figure>"]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def page(figures: Sequence[tuple[str, Any]], snaps: Sequence[Snapshot], path: Path) -> Path:
    """Write the page atomically ([security.symlinks] as for images)."""
    from ..files.safe_io import write_atomic
    from .plot import trusted_base
    write_atomic(path, render(figures, snaps).encode("utf-8"), base=trusted_base(path.parent))
    return path
