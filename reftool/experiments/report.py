"""The pull-request report: params and metrics compared, with plots beside it (SPEC
[tool.experiments]). Writes `report.md` and its images into a folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


REPORT_LIMIT = 65_536  # characters GitHub accepts in a comment


def pr_report(old: Any, new: Any, declarations: Any, out: Path) -> Path:
    """Write `out/report.md` (params and metrics diff, better/worse marked) and its plots
    beside it; trimmed, with a note, to stay under REPORT_LIMIT characters."""
    from ..files.safe_io import make_dirs, refuse_links, write_atomic
    from .compare import diff, md_text, param_label, render_diff
    from .plot import bars, curves, save, trusted_base

    make_dirs(trusted_base(out), out)  # [security.symlinks]: refused if a link, before
    refuse_links(trusted_base(out), out / "report.md")  # anything is drawn
    snaps = [s for s in (old, new) if s is not None]
    head = ["# Experiment report", ""]
    head.append(f"**{md_text(new.label)}** compared with **{md_text(old.label)}**."
                if old is not None else f"**{md_text(new.label)}** (no base to compare with).")
    head.append("")
    for snap in snaps:  # [experiments.stale]: a side whose metrics its params did not produce
        if snap.stale:
            head += [f"> **Stale:** the metrics of {md_text(snap.label)} were not produced by "
                     f"its params, code and data (out of date: "
                     f"{md_text(', '.join(snap.stale))}); run `reftool run` before comparing.",
                     ""]
    for name, draw, title in (("curves.png", curves, "Metrics per step"),
                              ("summary.png", bars, "Summary metrics")):
        notes: list[str] = []
        try:
            save(draw(snaps, say=notes.append), out / name)
        except ValueError:
            continue
        head += [f"### {title}", "", f"![{title}]({name})", ""]
        head += [f"> {md_text(note)}" for note in notes] + ([""] if notes else [])
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
    write_atomic(path, text.encode("utf-8"), base=trusted_base(out))
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
