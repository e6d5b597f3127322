"""Plots of metrics with matplotlib, headless: epoch-wise curves and summary bars.

matplotlib is imported inside the functions that draw, never at module level, so that the
commands that do not plot start fast. The decisions (styles, y limits, smoothing) are pure
functions, tested without drawing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files.spec import MAX_PANELS
from .records import Snapshot, declaration_of

Say = Callable[[str], None]

#: 10 colours (matplotlib's tab10) times 4 line styles: 40 sources drawn distinctly
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
LINE_STYLES = ("-", "--", ":", "-.")
HATCHES = ("", "//", "..", "xx")
MAX_SOURCES = len(COLOURS) * len(LINE_STYLES)
#: a point further than FENCE interquartile ranges beyond the quartiles is left outside the y
#: axis (and counted in the panel), so one diverged run does not flatten every other curve
FENCE = 3.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Style:
    colour: str
    line: str
    hatch: str  # for bars, as the line style for curves


def style(i: int) -> Style:
    """The i-th source's style: colour first, then the line style, so runs 1-10 are solid,
    11-20 dashed, and no two of the first MAX_SOURCES look the same."""
    round_ = (i // len(COLOURS)) % len(LINE_STYLES)
    return Style(colour=COLOURS[i % len(COLOURS)], line=LINE_STYLES[round_],
                 hatch=HATCHES[round_])


def _quantile(ordered: Sequence[float], q: float) -> float:
    pos = (len(ordered) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    low: float
    high: float
    outside: int  # finite points left outside [low, high]


def _usable(values: Sequence[float], log: bool) -> list[float]:
    finite = sorted(v for v in values if math.isfinite(v) and (v > 0 or not log))
    return [math.log10(v) for v in finite] if log else finite


def robust_limits(values: Sequence[float], *, log: bool = False,
                  keep: Sequence[float] = ()) -> Limits | None:
    """y limits of a panel from its finite values (positive ones on a log axis): the full
    range, unless points lie beyond FENCE interquartile ranges from the quartiles and beyond
    every value of `keep` (each curve's first value: where training starts is never cut),
    which are then left outside; None when there is no such value."""
    scaled = _usable(values, log)
    if not scaled:
        return None
    kept = _usable(keep, log)
    q1, q3 = _quantile(scaled, 0.25), _quantile(scaled, 0.75)
    spread = q3 - q1
    low, high = scaled[0], scaled[-1]
    if spread > 0:
        low = max(low, min([q1 - FENCE * spread] + kept))
        high = min(high, max([q3 + FENCE * spread] + kept))
    outside = sum(1 for v in scaled if v < low or v > high)
    pad = (high - low) * 0.05 or (abs(high) * 0.05 or 1.0)
    low, high = low - pad, high + pad
    if log:
        return Limits(low=10 ** low, high=10 ** high, outside=outside)
    return Limits(low=low, high=high, outside=outside)


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """An exponential moving average (TensorBoard's): weight 0 keeps the values, 0.9 smooths
    a lot. A NaN or infinity is kept where it is and does not poison what follows."""
    out: list[float] = []
    last: float | None = None
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        last = v if last is None else last * weight + (1 - weight) * v
        out.append(last)
    return out


def first_nonfinite(points: Sequence[tuple[int, float]]) -> int | None:
    """The step of the first NaN or infinity of a series, None if every value is finite."""
    return next((s for s, v in points if not math.isfinite(v)), None)


def _pyplot() -> Any:
    import matplotlib
    matplotlib.use("Agg")  # headless: no display, no network
    # labels come from files: `$...$` is text, never mathtext or LaTeX ([security.markdown]);
    # SVG ids from a fixed salt, so that two renders are the same bytes
    matplotlib.rcParams.update({"text.usetex": False, "text.parse_math": False,
                                "svg.hashsalt": "reftool", "svg.fonttype": "path"})
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


def summary_names(snaps: Sequence[Snapshot]) -> list[str]:
    return sorted({m for s in snaps for m, v in s.metrics.items() if _number(v)})


def _capped(names: list[str], what: str, say: Say | None) -> list[str]:
    """[security.bounds]: at most MAX_PANELS panels in a figure; the rest named in a note."""
    if len(names) <= MAX_PANELS:
        return names
    if say is not None:
        say(f"{len(names):,} {what} metrics: drew the first {MAX_PANELS} "
            f"({names[0]} to {names[MAX_PANELS - 1]}); {len(names) - MAX_PANELS:,} left out, "
            "reftool plot --metric NAME draws any of them")
    return names[:MAX_PANELS]


def _title(snaps: Sequence[Snapshot], name: str) -> str:
    decl = next((d for s in snaps if (d := declaration_of(name, s.declarations)) is not None),
                None)
    return name + (f" ({decl.direction} is better)" if decl is not None and decl.direction
                   else "")


def _legend_label(snap: Snapshot) -> str:
    """The source's label, with the first step where any of its series is NaN or infinite."""
    steps = [s for series in snap.series.values() for points in series.values()
             if (s := first_nonfinite(points)) is not None]
    return snap.label if not steps else f"{snap.label} (not finite from step {min(steps)})"


def _legend_outside(fig: Any, axes: Sequence[Any]) -> None:
    """One legend for the figure, right of the panels, never on the data; a label once."""
    handles: dict[str, Any] = {}
    for ax in axes:
        for line in ax.lines:
            label = line.get_label()
            if not label.startswith("_"):
                handles.setdefault(label, line)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="upper left",
                   bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False,
                   ncols=1 + len(handles) // 40)


def _y_axis(ax: Any, values: Sequence[float], *, log: bool, keep: Sequence[float] = ()
            ) -> None:
    if log and any(math.isfinite(v) and v > 0 for v in values):
        _log_scale(ax)
    limits = robust_limits(values, log=log, keep=keep)
    if limits is None:
        return
    ax.set_ylim(limits.low, limits.high)
    if limits.outside:
        ax.text(0.99, 0.98, f"{limits.outside} point(s) outside the y range", ha="right",
                va="top", transform=ax.transAxes, fontsize="x-small", color="#555555")


def _log_scale(ax: Any) -> None:
    """A log axis labelled 0.01, 0.1, 1 (mathtext is off for labels from files, so the
    default 10^x labels would show as their source)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _draw_series(ax: Any, points: Sequence[tuple[int, float]], st: Style, label: str,
                 smoothing: float) -> list[float]:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    few = sum(1 for v in ys if math.isfinite(v)) < 2
    marker = "o" if few else None  # a lone finite point is seen, not a line of length 0
    if smoothing > 0:
        ax.plot(xs, ys, color=st.colour, linestyle=st.line, alpha=0.2, label="_raw")
        ys = smooth(ys, smoothing)
    ax.plot(xs, ys, color=st.colour, linestyle=st.line, marker=marker, markersize=3,
            label=label)
    return ys


def curves(snaps: Sequence[Snapshot], names: Sequence[str] | None = None, *,
           say: Say | None = None, log: bool = False, smoothing: float = 0.0) -> Any:
    """A figure with one panel per metric, each source's series overlaid, step on x; each
    source with its own style(i); one legend outside the panels."""
    names = _capped(list(names or series_names(snaps)), "series", say)
    if not names:
        raise ValueError("no series metrics to plot")
    plt = _pyplot()
    fig, axes = _grid(plt, len(names), columns=2, size=(6.4, 3.8))
    for ax, name in zip(axes, names):
        drawn: list[float] = []
        firsts: list[float] = []
        for i, snap in enumerate(snaps):
            for series in snap.series.values():
                points = series.get(name)
                if points:
                    ys = _draw_series(ax, points, style(i), _legend_label(snap), smoothing)
                    drawn += ys
                    firsts += [next((v for v in ys if math.isfinite(v)), math.nan)]
        _y_axis(ax, drawn, log=log, keep=firsts)
        ax.set_title(_title(snaps, name))
        ax.set_xlabel("step")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    _legend_outside(fig, axes)
    return fig


def bars(snaps: Sequence[Snapshot], names: Sequence[str] | None = None, *,
         say: Say | None = None, log: bool = False, values_shown: bool = True) -> Any:
    """A figure with one panel per summary metric, one bar per source in its colour, the
    value written on each bar; the y axis fits the values (not from 0), so 0.98 and 0.99
    differ."""
    names = _capped(list(names or summary_names(snaps)), "summary", say)
    if not names:
        raise ValueError("no summary metrics to plot")
    plt = _pyplot()
    fig, axes = _grid(plt, len(names), columns=3, size=(4.8, 3.6))
    for ax, name in zip(axes, names):
        shown = [(i, s) for i, s in enumerate(snaps) if _number(s.metrics.get(name))]
        labels = [s.label for _, s in shown]
        values = [float(s.metrics[name]) for _, s in shown]
        bottom = _bar_bottom(values, log=log)
        heights = [v - bottom if math.isfinite(v) else 0.0 for v in values]
        ax.bar(range(len(values)), heights, bottom=bottom,
               color=[style(i).colour for i, _ in shown],
               hatch=[style(i).hatch for i, _ in shown], edgecolor="white")
        for x, v in enumerate(values if values_shown else ()):
            ax.annotate(_short(v), (x, v if math.isfinite(v) else bottom), ha="center",
                        va="bottom", fontsize="x-small")
        if log and any(v > 0 for v in values):
            _log_scale(ax)
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize="small")
        ax.set_title(_title(snaps, name))
        ax.set_ylabel(name)
    fig.tight_layout()
    return fig


MAX_MATRICES = 6  # confusion matrices side by side in one figure


def declared(plot: Any, path: str, sources: Sequence[tuple[str, Sequence[Any]]], *,
             say: Say | None = None) -> Any:
    """A declared plot ([plots.templates]) drawn from each source's rows (checked by
    plotdata.check_rows): line, scatter and bar overlay or group the sources, confusion draws
    a matrix a source."""
    if not sources:
        raise ValueError(f"{path}: in none of the sources drawn")
    plt = _pyplot()
    if plot.template == "confusion":
        return _matrices(plt, plot, path, sources, say)
    fig, (ax,) = _grid(plt, 1, columns=1, size=(6.4, 4.2))
    if plot.template == "bar":
        _grouped_bars(ax, plot, sources)
    else:
        drawn: list[float] = []
        for i, (label, rows) in enumerate(sources):
            st = style(i)
            xs = [float(r[plot.x]) for r in rows]
            ys = [float(r[plot.y]) for r in rows]
            drawn += ys
            if plot.template == "scatter":
                ax.plot(xs, ys, linestyle="none", marker="o", markersize=4, color=st.colour,
                        label=label, alpha=0.8)
            else:
                ax.plot(xs, ys, color=st.colour, linestyle=st.line, label=label,
                        marker="o" if len(xs) < 2 else None, markersize=3)
        _y_axis(ax, drawn, log=False)
        ax.grid(True, alpha=0.3)
    ax.set_title(plot.title or path)
    ax.set_xlabel(plot.x)
    ax.set_ylabel(plot.y)
    fig.tight_layout()
    _legend_outside(fig, [ax])
    return fig


def _grouped_bars(ax: Any, plot: Any, sources: Sequence[tuple[str, Sequence[Any]]]) -> None:
    from .plotdata import category
    cats: list[str] = []
    for _, rows in sources:
        cats += [c for c in (category(r[plot.x]) for r in rows) if c not in cats]
    width = 0.8 / len(sources)
    for i, (label, rows) in enumerate(sources):
        heights = {category(r[plot.x]): float(r[plot.y]) for r in rows}
        xs = [j + (i - (len(sources) - 1) / 2) * width for j, c in enumerate(cats)
              if c in heights]
        ax.bar(xs, [heights[c] for c in cats if c in heights], width=width,
               color=style(i).colour, label=label)
    ax.set_xticks(range(len(cats)), cats, rotation=30 if len(cats) > 6 else 0)
    for bar_patch in ax.patches:
        bar_patch.set_label("_bar")
    for i, (label, _) in enumerate(sources):  # one legend entry a source
        ax.plot([], [], color=style(i).colour, linewidth=6, label=label)


def _matrices(plt: Any, plot: Any, path: str, sources: Sequence[tuple[str, Sequence[Any]]],
              say: Say | None) -> Any:
    from .plotdata import confusion
    if len(sources) > MAX_MATRICES and say is not None:
        say(f"{path}: {len(sources)} sources: drew the first {MAX_MATRICES} confusion "
            f"matrices; {len(sources) - MAX_MATRICES} left out (name the ones wanted: "
            "reftool plot REF ...)")
    shown = list(sources)[:MAX_MATRICES]
    fig, axes = _grid(plt, len(shown), columns=3, size=(4.6, 4.2))
    for ax, (label, rows) in zip(axes, shown):
        m = confusion(rows, plot)
        ax.imshow(m.counts, cmap="Blues", aspect="auto")
        top = max((c for row in m.counts for c in row), default=0.0)
        for r, row in enumerate(m.counts):
            for c, n in enumerate(row):
                ax.text(c, r, _short(n), ha="center", va="center", fontsize="small",
                        color="white" if top and n > top / 2 else "black")
        ax.set_xticks(range(len(m.across)), m.across)
        ax.set_yticks(range(len(m.down)), m.down)
        ax.set_xlabel(plot.x)
        ax.set_ylabel(plot.y)
        ax.set_title(label if len(shown) > 1 or not plot.title else plot.title,
                     fontsize="medium")
    if len(shown) > 1:
        fig.suptitle(plot.title or path)
    fig.tight_layout()
    return fig


def _bar_bottom(values: Sequence[float], *, log: bool) -> float:
    limits = robust_limits(values, log=log)
    if limits is None:
        return 0.0
    finite = [v for v in values if math.isfinite(v)]
    if not log and min(finite) >= 0 and limits.low < 0:
        return 0.0
    return limits.low


def _short(v: float) -> str:
    return f"{v:.4g}"


def save(fig: Any, path: Path) -> Path:
    """Write a figure atomically, never through a link in the plots folder or at the file
    ([security.symlinks]); the format is the file's extension. No date or version stamp:
    the same data gives the same bytes."""
    from ..files.safe_io import write_atomic
    write_atomic(path, figure_bytes(fig, path.suffix.lstrip(".") or "png"),
                 base=trusted_base(path.parent))
    return path


def figure_bytes(fig: Any, fmt: str) -> bytes:
    import io
    buffer = io.BytesIO()
    metadata: dict[str, Any] = {"svg": {"Date": None, "Creator": None},
                                "png": {"Software": None}}.get(fmt, {})
    try:
        # the legend outside the panels needs a tight box; it costs a second drawing, so
        # only then
        fig.savefig(buffer, dpi=100, format=fmt, metadata=metadata,
                    bbox_inches="tight" if fig.legends else None)
    finally:
        _pyplot().close(fig)
    return buffer.getvalue()


def trusted_base(folder: Path) -> Path:
    """Below which folder no link may be followed when writing into `folder`: the current
    directory (the project) for a relative folder, else the folder's own parent."""
    return Path.cwd() if not folder.is_absolute() else folder.parent
