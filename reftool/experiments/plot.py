"""Plots of metrics with matplotlib, headless: epoch-wise curves and summary bars.

matplotlib is imported inside the functions that draw, never at module level, so that the
commands that do not plot start fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..files.spec import MAX_PANELS
from .records import Snapshot, declaration_of

Say = Callable[[str], None]


def _pyplot() -> Any:
    import matplotlib
    matplotlib.use("Agg")  # headless: no display, no network
    # labels come from files: `$...$` is text, never mathtext or LaTeX ([security.markdown])
    matplotlib.rcParams.update({"text.usetex": False, "text.parse_math": False})
    import matplotlib.pyplot as plt
    return plt


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _grid(plt: Any, panels: int, *, columns: int, size: tuple[float, float]
          ) -> tuple[Any, list[Any]]:
    """A figure with one panel per metric, `columns` wide; the panels left over hidden."""
    columns = min(columns, panels)
    rows = math.ceil(panels / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(size[0] * columns, size[1] * rows),
                             squeeze=False)
    flat = list(axes.flat)
    for ax in flat[panels:]:
        ax.set_visible(False)
    return fig, flat[:panels]


def series_names(snaps: Sequence[Snapshot]) -> list[str]:
    return sorted({name for s in snaps for series in s.series.values() for name in series})


def _capped(names: list[str], what: str, say: Say | None) -> list[str]:
    """[security.bounds]: at most MAX_PANELS panels in a figure; the rest named in a note."""
    if len(names) <= MAX_PANELS:
        return names
    if say is not None:
        say(f"{len(names):,} {what} metrics: drew the first {MAX_PANELS} "
            f"({names[0]} to {names[MAX_PANELS - 1]}); {len(names) - MAX_PANELS:,} left out, "
            "reftool plot --metric NAME draws any of them")
    return names[:MAX_PANELS]


def curves(snaps: Sequence[Snapshot], names: Sequence[str] | None = None, *,
           say: Say | None = None) -> Any:
    """A figure with one panel per metric, each source's series overlaid, step on x."""
    names = _capped(list(names or series_names(snaps)), "series", say)
    if not names:
        raise ValueError("no series metrics to plot")
    plt = _pyplot()
    fig, axes = _grid(plt, len(names), columns=2, size=(6.4, 3.8))
    for ax, name in zip(axes, names):
        for snap in snaps:
            for series in snap.series.values():
                points = series.get(name)
                if points:
                    ax.plot([p[0] for p in points], [p[1] for p in points], label=snap.label)
        decl = declaration_of(name, snaps[0].declarations) if snaps else None
        better = f" ({decl.direction} is better)" if decl is not None and decl.direction else ""
        ax.set_title(name + better)
        ax.set_xlabel("step")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def bars(snaps: Sequence[Snapshot], names: Sequence[str] | None = None, *,
         say: Say | None = None) -> Any:
    """A figure with one panel per summary metric, one bar per source."""
    names = _capped(list(names or sorted({m for s in snaps for m, v in s.metrics.items()
                                          if _number(v)})), "summary", say)
    if not names:
        raise ValueError("no summary metrics to plot")
    plt = _pyplot()
    fig, axes = _grid(plt, len(names), columns=3, size=(4.8, 3.6))
    for ax, name in zip(axes, names):
        shown = [s for s in snaps if _number(s.metrics.get(name))]  # a list is not a bar
        labels = [s.label for s in shown]
        values = [float(s.metrics[name]) for s in shown]
        ax.bar(range(len(values)), values, color="tab:blue")
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize="small")
        ax.set_title(name)
        ax.set_ylabel(name)
    fig.tight_layout()
    return fig


def save(fig: Any, path: Path) -> Path:
    """Write a figure atomically, never through a link in the plots folder or at the file
    ([security.symlinks]); the format is the file's extension."""
    import io

    from ..files.safe_io import write_atomic
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, dpi=100, format=path.suffix.lstrip(".") or "png")
    finally:
        _pyplot().close(fig)
    write_atomic(path, buffer.getvalue(), base=trusted_base(path.parent))
    return path


def trusted_base(folder: Path) -> Path:
    """Below which folder no link may be followed when writing into `folder`: the current
    directory (the project) for a relative folder, else the folder's own parent."""
    return Path.cwd() if not folder.is_absolute() else folder.parent
