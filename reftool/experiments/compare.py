"""Comparisons of experiments: tables and diffs (pure), and their text, markdown, CSV and JSON.

Numbers are shown with significant digits, never rounded to zero (`1e-07`, not `0.0`).
Whether a change is better or worse follows the metric's declared direction.
"""

from __future__ import annotations

import csv
import difflib
import fnmatch
import io
import json
import math
import operator
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .records import Snapshot, declaration_of
from ..files.model import MetricDeclaration

DIGITS = 4
MD_CELL_LIMIT = 200  # characters of file text kept in one markdown cell ([security.markdown])
WORD_JOINER = "\u2060"
_MD_BACKSLASHED = set("\\`*_[]()!|~$")
_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MD_VISIBLE = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_URL_START = re.compile(r"(?i)(://|www\.)")


def _md_char(ch: str) -> str:
    if ch in _MD_VISIBLE:
        return _MD_VISIBLE[ch]
    if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
        code = ord(ch)
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    if ch in _MD_ENTITIES:
        return _MD_ENTITIES[ch]
    if ch in _MD_BACKSLASHED:
        return "\\" + ch
    if ch in "@#":  # no @mention, no #123 cross-reference: a word joiner after the sign
        return ch + WORD_JOINER
    return ch


def md_text(text: str, *, limit: int = MD_CELL_LIMIT) -> str:
    """[security.markdown]: text from a file made inert inside markdown meant for a pull
    request: one line, no HTML, no link, image, mention, issue reference, math or emphasis,
    no bidi or invisible character, at most `limit` characters of the original kept."""
    if len(text) > limit:
        text = text[:limit] + "…"
    text = "".join(_md_char(ch) for ch in text)
    # no bare-URL autolink (GitHub links `www.` and `scheme://` in plain text)
    return _URL_START.sub(lambda m: m.group(0)[:-1] + WORD_JOINER + m.group(0)[-1], text)


def fmt(value: Any, digits: int = DIGITS) -> str:
    """A value for people: numbers with significant digits, other values as JSON."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        text = f"{value:.{digits}g}"
        return text.replace("e-0", "e-").replace("e+0", "e+")
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _jsonable(value: Any) -> Any:
    """[metrics.nonfinite]: a non-finite float, at any depth, as its string."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


# ---------------------------------------------------------------------------------- tables

@dataclass(frozen=True)
class Table:
    columns: list[str]  # "experiment", then info, then params, then metrics
    kinds: list[str]  # per column: "name", "info", "param", "metric"
    rows: list[list[Any]]
    meta: list[dict[str, Any]] = field(default_factory=list)  # per row: INFO, kind, stale
    keys: list[str] = field(default_factory=list)  # per column: the full param key, or the name

    def keep(self, order: Sequence[int]) -> Table:
        """The rows at these indices, in this order."""
        return replace(self, rows=[self.rows[i] for i in order],
                       meta=[self.meta[i] for i in order] if self.meta else [])


#: [tool.experiments-json]: what each row says of its experiment, beside params and metrics.
INFO = ("id", "name", "created", "commit", "branch", "dirty", "duration")


def row_meta(s: Snapshot) -> dict[str, Any]:
    return {"label": s.label, "kind": s.kind, "id": s.id, "name": s.name, "created": s.created,
            "commit": s.commit, "branch": s.branch, "dirty": s.dirty,
            "duration": s.duration, "stale": list(s.stale)}


def param_label(columns: Iterable[str]) -> Callable[[str], str]:
    """Params columns are `file:/pointer`; show the pointer alone when one file is used."""
    files = {c.partition(":")[0] for c in columns}
    if len(files) <= 1:
        return lambda c: c.partition(":")[2]
    return lambda c: c


def label_of(s: Snapshot) -> str:
    """[experiments.stale]: a row whose metrics its params did not produce says so."""
    return f"{s.label} (stale)" if s.stale else s.label


def table(snaps: Sequence[Snapshot], *, all_params: bool = False, info: bool = False
          ) -> Table:
    """One row per snapshot; params that are the same in every row are left out unless
    `all_params`; with `info`, the columns of INFO after the experiment's label."""
    params = sorted({p for s in snaps for p in s.params})
    label = param_label(params)  # from every param, so a column's name does not depend on rows
    if not all_params and len(snaps) > 1:
        params = [p for p in params
                  if len({json.dumps(s.params.get(p), sort_keys=True, default=str)
                          for s in snaps}) > 1]
    metrics = sorted({m for s in snaps for m in s.metrics})
    info_columns = [c for c in INFO if c != "name"] if info else []
    columns = ["experiment"] + info_columns + [label(p) for p in params] + metrics
    kinds = ["name"] + ["info"] * len(info_columns) + ["param"] * len(params) \
        + ["metric"] * len(metrics)
    metas = [row_meta(s) for s in snaps]
    rows = [[label_of(s)] + [_info_cell(m, c) for c in info_columns]
            + [s.params.get(p) for p in params] + [s.metrics.get(m) for m in metrics]
            for s, m in zip(snaps, metas)]
    return Table(columns, kinds, rows, metas, ["experiment"] + info_columns + params + metrics)


def _info_cell(meta: Mapping[str, Any], column: str) -> Any:
    value = meta.get(column)
    if column == "commit" and isinstance(value, str):
        return value[:10]
    if column == "duration" and isinstance(value, (int, float)):
        return f"{value:.1f}s"
    return value


def column_named(t: Table, name: str, what: str) -> int:
    """The column a user means by `name`: the column so named, else the one whose name ends
    in `/name` or `:name` (`lr` finds `/train/lr`); a name that fits none or several is a
    ValueError saying which columns there are."""
    if name in t.columns:
        return t.columns.index(name)
    fits = [i for i, c in enumerate(t.columns) if _ends_with(c, name)]
    if len(fits) == 1:
        return fits[0]
    if fits:
        raise ValueError(f"{what}: {name!r} could be any of "
                         f"{', '.join(t.columns[i] for i in fits)}: name one")
    guess = difflib.get_close_matches(name, t.columns, n=1)
    hint = f"; did you mean {guess[0]!r}?" if guess else ""
    raise ValueError(f"no column {name!r} {what}{hint}")


def _ends_with(column: str, name: str) -> bool:
    return column.endswith(("/" + name, ":" + name))


def select_columns(t: Table, *, only: Sequence[str] = (), drop: Sequence[str] = ()) -> Table:
    """`--only` keeps the columns that a pattern names (a name, a suffix as `column_named`
    takes it, or a glob such as `per_class/*`), `--drop` leaves them out; the experiment
    column stays. A pattern that names no column is a ValueError."""
    def named(pattern: str) -> set[int]:
        found = {i for i, c in enumerate(t.columns) if i and (
            c == pattern or _ends_with(c, pattern) or fnmatch.fnmatchcase(c, pattern))}
        if not found:
            raise ValueError(f"no column matches {pattern!r} (columns: "
                             f"{', '.join(t.columns[1:])})")
        return found
    keep = set(range(len(t.columns)))
    if only:
        keep = {0}.union(*(named(p) for p in only))
    for pattern in drop:
        keep -= named(pattern) - {0}
    order = sorted(keep)
    return replace(t, columns=[t.columns[i] for i in order], kinds=[t.kinds[i] for i in order],
                   rows=[[r[i] for i in order] for r in t.rows],
                   keys=[t.keys[i] for i in order] if t.keys else [])


_FILTER = re.compile(r"^\s*(.+?)\s*(==|!=|<=|>=|<|>)\s*(.+?)\s*$")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge}


def filter_rows(t: Table, expressions: Sequence[str]) -> Table:
    """Keep the rows where every `COLUMN OP VALUE` holds (OP one of == != < <= > >=)."""
    kept = list(range(len(t.rows)))
    for expression in expressions:
        m = _FILTER.match(expression)
        if not m:
            raise ValueError(f"filter {expression!r}: expected COLUMN OP VALUE, "
                             "OP one of == != < <= > >=")
        column, op, raw = m.groups()
        i = column_named(t, column, f"in filter {expression!r}")
        try:
            wanted: Any = json.loads(raw)
        except ValueError:
            wanted = raw
        kept = [n for n in kept if _holds(t.rows[n][i], op, wanted)]
    return t.keep(kept)


def _holds(value: Any, op: str, wanted: Any) -> bool:
    try:
        return value is not None and bool(_OPS[op](value, wanted))
    except TypeError:
        return False


def sort_rows(t: Table, column: str, *, descending: bool = False) -> Table:
    i = column_named(t, column, "to sort by")

    def key(n: int) -> tuple[int, Any]:
        v = t.rows[n][i]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return (0, -math.inf if math.isnan(v) else v)
        return (1, fmt(v))
    present = sorted((n for n, r in enumerate(t.rows) if r[i] is not None), key=key,
                     reverse=descending)
    return t.keep(present + [n for n, r in enumerate(t.rows) if r[i] is None])


def render_table(t: Table, style: str) -> str:
    if style == "json":
        return json.dumps(table_json(t), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if style == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(t.columns)
        writer.writerows([["" if v is None else repr(v) if isinstance(v, float) and
                           math.isfinite(v) else v if isinstance(v, str) else fmt(v)
                           for v in row] for row in t.rows])
        return buf.getvalue()
    cells = [t.columns] + [[fmt(v) for v in row] for row in t.rows]
    if style == "md":
        def line(values: list[str]) -> str:
            return "| " + " | ".join(md_text(v) for v in values) + " |"
        aligns = ["---" if k in ("name", "info") else "---:" for k in t.kinds]
        return "\n".join([line(cells[0]), "| " + " | ".join(aligns) + " |"]
                         + [line(r) for r in cells[1:]]) + "\n"
    widths = [max(len(r[i]) for r in cells) for i in range(len(t.columns))]
    out = []
    for r in cells:
        out.append("  ".join(v.ljust(w) if k in ("name", "info") else v.rjust(w)
                             for v, w, k in zip(r, widths, t.kinds)).rstrip())
    return "\n".join(out) + "\n"


def table_json(t: Table) -> dict[str, Any]:
    """[tool.experiments-json]: `exp show --json`, valid against exp-show.schema.json."""
    shown = [(i, c, k) for i, (c, k) in enumerate(zip(t.columns, t.kinds))
             if k in ("param", "metric")]
    rows = []
    for row, meta in zip(t.rows, t.meta or [{} for _ in t.rows]):
        entry: dict[str, Any] = {"experiment": meta.get("label", row[0])}
        entry.update({k: meta.get(k) for k in ("kind", *INFO)})
        entry["stale"] = meta.get("stale", [])
        for section in ("params", "metrics"):
            entry[section] = {t.keys[i] if t.keys else c: _jsonable(row[i])
                              for i, c, k in shown if k == section[:-1] and row[i] is not None}
        rows.append(entry)
    return {"version": "1.1", "columns": [
        {"name": c, "key": t.keys[i] if t.keys else c, "kind": k} for i, c, k in shown],
        "experiments": rows}


# ---------------------------------------------------------------------------------- diffs

@dataclass(frozen=True)
class Change:
    name: str
    old: Any
    new: Any
    delta: float | None  # new - old, for numbers
    relative: float | None  # delta / |old|
    verdict: str  # "better", "worse", "" (same, unknown direction, or not numbers)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def diff(old: Mapping[str, Any], new: Mapping[str, Any], *,
         declarations: Mapping[str, MetricDeclaration] | None = None,
         all_rows: bool = False) -> list[Change]:
    """Rows that differ between two mappings (all rows with `all_rows`), in name order."""
    out = []
    for name in sorted(old.keys() | new.keys()):
        a: Any = old.get(name)
        b: Any = new.get(name)
        if _same(a, b) and not all_rows:
            continue
        delta = relative = None
        verdict = ""
        if _number(a) and _number(b):
            delta = b - a
            relative = delta / abs(a) if a not in (0, 0.0) and math.isfinite(a) else None
            verdict = judge(a, b, declaration_of(name, declarations or {}))
        out.append(Change(name, a, b, delta, relative, verdict))
    return out


NOISE = 1e-9  # [metrics.tolerance]: the default, relative to the larger magnitude


def judge(old: float, new: float, decl: MetricDeclaration | None) -> str:
    """[metrics.tolerance]: "better" or "worse" by the declared direction, "unchanged" within
    the metric's tolerance (or rounding noise), "" with no direction or a NaN."""
    if decl is None or not decl.direction:
        return ""
    delta = new - old
    if math.isnan(delta):
        return ""
    tolerance = decl.tolerance if decl.tolerance is not None else \
        NOISE * max(abs(old), abs(new)) if math.isfinite(delta) else 0.0
    if abs(delta) <= tolerance:
        return "unchanged"
    better = delta < 0 if decl.direction == "lower" else delta > 0
    return "better" if better else "worse"


def tally(old: Mapping[str, Any], new: Mapping[str, Any],
          declarations: Mapping[str, MetricDeclaration]) -> dict[str, int]:
    """How many metrics with a declared direction got better, worse, or stayed unchanged
    (within tolerance, [metrics.tolerance]); `other` counts the metrics that changed with no
    direction or are not in both."""
    counts = {"better": 0, "worse": 0, "unchanged": 0, "other": 0}
    for c in diff(old, new, declarations=declarations, all_rows=True):
        if c.verdict:
            counts[c.verdict] += 1
        elif not _same(c.old, c.new):
            counts["other"] += 1
        elif (d := declaration_of(c.name, declarations)) is not None and d.direction:
            counts["unchanged"] += 1
    return counts


def verdict_line(counts: Mapping[str, int]) -> str:
    """"3 better, 1 worse, 9 unchanged" (and "2 changed with no direction")."""
    text = f"{counts['better']} better, {counts['worse']} worse, {counts['unchanged']} unchanged"
    if counts.get("other"):
        text += f", {counts['other']} changed with no direction declared"
    return text


DIFF_JSON_VERSION = "1.1"  # [version.write]: these outputs are first defined by 1.1


def diff_json(changes: Sequence[Change], *, old_label: str, new_label: str, kind: str,
              stale: tuple[Sequence[str], Sequence[str]] = ((), ())) -> str:
    """`metrics diff --json` / `params diff --json`: schemas/{kind}-diff.schema.json."""
    from .. import __version__
    rows = [{"name": c.name, "old": _jsonable(c.old), "new": _jsonable(c.new),
             "change": _jsonable(c.delta), "relative": _jsonable(c.relative),
             **({"verdict": c.verdict} if kind == "metrics" else {})} for c in changes]
    doc = {"version": DIFF_JSON_VERSION, "tool": {"name": "reftool", "version": __version__},
           "old": old_label, "new": new_label,
           # [experiments.stale]: each side's stale stages, [] when none
           "old_stale": list(stale[0]), "new_stale": list(stale[1]), kind: rows}
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def render_diff(changes: Sequence[Change], style: str, *, old_label: str, new_label: str,
                kind: str, label: Callable[[str], str] = lambda s: s,
                stale: tuple[Sequence[str], Sequence[str]] = ((), ())) -> str:
    if style == "json":
        return diff_json(changes, old_label=old_label, new_label=new_label, kind=kind,
                         stale=stale)
    header = [kind[:-1] if kind.endswith("s") else kind, old_label, new_label, "change"]
    if kind == "metrics":
        header.append("")
    rows = []
    for c in changes:
        change = "" if c.delta is None else (("+" if c.delta > 0 else "") + fmt(c.delta))
        if c.relative is not None and math.isfinite(c.relative):
            change += f" ({'+' if c.relative > 0 else ''}{c.relative * 100:.3g}%)"
        row = [label(c.name), fmt(c.old), fmt(c.new), change]
        if kind == "metrics":
            row.append(c.verdict)
        rows.append(row)
    if not rows:
        if style == "md":
            old_label, new_label = md_text(old_label), md_text(new_label)
        return f"no {kind} changed between {old_label} and {new_label}\n"
    if style == "md":
        marks = {"better": "✅ better", "worse": "❌ worse", "unchanged": "➖ unchanged"}
        md_rows = [r[:4] + ([marks.get(r[4], "")] if kind == "metrics" else []) for r in rows]
        lines = ["| " + " | ".join(md_text(h) for h in header) + " |",
                 "| --- | ---: | ---: | ---: |" + (" --- |" if kind == "metrics" else "")]
        # name, old and new come from files; the change and the verdict are ours
        lines += ["| " + " | ".join([md_text(v) for v in r[:3]] + r[3:]) + " |"
                  for r in md_rows]
        return "\n".join(lines) + "\n"
    cells = [header] + rows
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                               for i, (v, w) in enumerate(zip(r, widths))).rstrip()
                     for r in cells) + "\n"


__all__ = ["Change", "Table", "diff", "diff_json", "filter_rows", "fmt", "judge", "md_text",
           "render_diff", "render_table", "select_columns", "sort_rows", "table", "table_json",
           "tally", "verdict_line"]
