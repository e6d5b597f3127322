"""The pull-request report (SPEC [tool.experiments]): one markdown comment that renders with
nothing but GitHub. A hidden marker first (so CI updates one comment in place), a one-line
verdict and the stale-lock verdict, the metrics and params tables, then the curves as Mermaid
`xychart-beta` charts; the PNGs are written beside it for CI to upload as artifacts and
linked when their address is known.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .records import declaration_of

REPORT_LIMIT = 65_536  # characters GitHub accepts in a comment
MARKER = "<!-- reftool-report -->"  # the comment CI edits in place carries it first
MAX_CHARTS = 6  # Mermaid charts in one report: the series metrics with a direction first


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What the report says beside the numbers: the sides' labels (branch and commit), the
    verdict of `plan --committed-only` and where the images will be."""

    new_label: str
    old_label: str | None = None
    lock_verdict: str | None = None  # e.g. "up to date", "stale: 2 stages to run"
    images_url: str | None = None  # a page that holds the PNGs (the workflow run's artifacts)


def pr_report(old: Any, new: Any, declarations: Any, out: Path,
              context: Context | None = None) -> Path:
    """Write `out/report.md` and its PNGs beside it; trimmed, with a note, under
    REPORT_LIMIT characters."""
    from ..files.safe_io import make_dirs, refuse_links, write_atomic
    from .plot import trusted_base

    make_dirs(trusted_base(out), out)  # [security.symlinks]: refused if a link, before
    refuse_links(trusted_base(out), out / "report.md")  # anything is drawn
    context = context or Context(new_label=new.label,
                                 old_label=old.label if old is not None else None)
    images, notes = _images([s for s in (old, new) if s is not None], out)
    head = _head(old, new, declarations, context)
    body = _tables(old, new, declarations, context) + _charts(old, new, declarations, context)
    body += _images_section(images, notes, context)
    text = _trimmed(head, body)
    path = out / "report.md"
    write_atomic(path, text.encode("utf-8"), base=trusted_base(out))
    return path


def _images(snaps: Sequence[Any], out: Path) -> tuple[list[str], list[str]]:
    from .plot import bars, curves, save
    written: list[str] = []
    notes: list[str] = []
    # the values are in the tables: the bars leave them out, to draw faster
    drawings: tuple[tuple[str, Callable[[], Any]], ...] = (
        ("curves.png", lambda: curves(snaps, say=notes.append)),
        ("summary.png", lambda: bars(snaps, say=notes.append, values_shown=False)))
    for name, draw in drawings:
        try:
            save(draw(), out / name)
        except ValueError:
            continue
        written.append(name)
    return written, notes


def _head(old: Any, new: Any, declarations: Mapping[str, Any], ctx: Context) -> list[str]:
    from .compare import md_text, tally, verdict_line
    head = [MARKER, "## reftool: experiment report", ""]
    if old is None:
        head += [f"**{md_text(ctx.new_label)}** (no base to compare with).", ""]
    else:
        head += [f"**{md_text(ctx.new_label)}** compared with "
                 f"**{md_text(ctx.old_label or old.label)}**.", ""]
        head += [f"Metrics: {verdict_line(tally(old.metrics, new.metrics, declarations))} "
                 "(by each metric's declared direction and tolerance).", ""]
    if ctx.lock_verdict is not None:
        head += [f"Lock (`reftool plan --committed-only`): {ctx.lock_verdict}.", ""]
    for snap in (old, new):
        if snap is not None and snap.stale:  # [experiments.stale]: said where it is read
            head += [f"**Stale:** the metrics of {md_text(snap.label)} were not "
                     "produced by its params, code and data (out of date: "
                     f"{md_text(', '.join(snap.stale))}); run reftool run before comparing.",
                     ""]
    return head


def _tables(old: Any, new: Any, declarations: Any, ctx: Context) -> list[str]:
    from .compare import diff, param_label, render_diff
    if old is None:
        return []
    old_label, new_label = ctx.old_label or old.label, ctx.new_label
    body = ["### Metrics", ""]
    body += render_diff(diff(old.metrics, new.metrics, declarations=declarations), "md",
                        old_label=old_label, new_label=new_label, kind="metrics").splitlines()
    body += ["", "### Params", ""]
    body += render_diff(diff(old.params, new.params), "md", old_label=old_label,
                        new_label=new_label, kind="params",
                        label=param_label(old.params.keys() | new.params.keys())).splitlines()
    return body + [""]


def _charts(old: Any, new: Any, declarations: Mapping[str, Any], ctx: Context) -> list[str]:
    """The curves as Mermaid xychart-beta, base first; the declared metrics first."""
    from .compare import md_text
    from .mermaid import legend, xychart
    from .plot import robust_limits, series_names
    sides = [(ctx.old_label or old.label, old)] if old is not None else []
    sides.append((ctx.new_label, new))
    names = series_names([s for _, s in sides])
    names.sort(key=lambda n: (not (n in declarations and declarations[n].direction), n))
    if not names:
        return []
    body = ["### Curves", "", legend([md_text(label) for label, _ in sides]), ""]
    for name in names[:MAX_CHARTS]:
        sources = [(label, points) for label, snap in sides
                   for series in snap.series.values() if (points := series.get(name))]
        values = [v for _, points in sources for _, v in points]
        firsts = [points[0][1] for _, points in sources]
        limits = robust_limits(values, keep=firsts)
        if limits is None:
            continue
        decl = declaration_of(name, declarations)
        title = name + (f" ({decl.direction} is better)" if decl and decl.direction else "")
        body += xychart(title, name, sources, low=limits.low, high=limits.high) + [""]
    if len(names) > MAX_CHARTS:
        body += [f"> {len(names) - MAX_CHARTS} more series metrics are in curves.png.", ""]
    return body


def _images_section(images: Sequence[str], notes: Sequence[str], ctx: Context) -> list[str]:
    from .compare import md_text
    if not images:
        return []
    where = (f"[the workflow run's artifacts]({ctx.images_url})" if ctx.images_url
             else "the folder of this report")
    lines = ["### Images", "", f"{', '.join(f'`{n}`' for n in images)}: in {where}.", ""]
    return lines + [f"> {md_text(note)}" for note in notes] + ([""] if notes else [])


def _trimmed(head: list[str], body: list[str]) -> str:
    text = "\n".join(head + body) + "\n"
    if len(text) <= REPORT_LIMIT:
        return text
    budget = REPORT_LIMIT - len("\n".join(head)) - 400
    kept: list[str] = []
    used = 0
    fence = False
    for line in body:
        if used + len(line) + 1 > budget:
            break
        kept.append(line)
        used += len(line) + 1
        fence = fence != line.startswith("```")
    if fence:  # never leave a Mermaid block open
        kept.append("```")
    note = (f"\n> Trimmed: {len(body) - len(kept)} more lines are not shown, to stay under "
            f"the {REPORT_LIMIT:,} characters a pull-request comment holds; run "
            "`reftool metrics diff` and `reftool params diff` for all of them.\n")
    return "\n".join(head + kept) + "\n" + note
