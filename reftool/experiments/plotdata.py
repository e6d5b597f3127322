"""The data of declared plots (SPEC [plots.data]): rows read from .json, .csv or .tsv, checked
against the plot's fields, and a confusion matrix counted ([plots.templates]). Pure: bytes in,
rows or a PlotDataError naming file, row and field out."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..files.model import PlotDefinition

Row = Mapping[str, Any]


class PlotDataError(ValueError):
    """A plot's data cannot be drawn: the message names the file, the row (from 1) and the
    field, and what was expected ([plots.data])."""


def _cell(text: str) -> Any:
    """[plots.data]: a CSV or TSV cell that reads as a JSON number is that number."""
    if text in ("NaN", "Infinity", "-Infinity"):
        return float(text.replace("Infinity", "inf"))
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else text


def read_rows(data: bytes, path: str) -> list[Row]:
    """The rows of a plot file, by its extension."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PlotDataError(f"{path}: not UTF-8 (byte {e.start}); expected UTF-8 text "
                            "([read.encoding])") from None
    if path.endswith(".json"):
        return _json_rows(text, path)
    delimiter = "\t" if path.endswith(".tsv") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        return [{k: _cell(v) for k, v in row.items() if k is not None and v is not None}
                for row in reader]
    except csv.Error as e:
        raise PlotDataError(f"{path}: line {reader.line_num}: {e}; expected "
                            f"{'TSV' if delimiter == chr(9) else 'CSV'} with a header row") from None


def _json_rows(text: str, path: str) -> list[Row]:
    def constant(name: str) -> float:
        return float(name.replace("Infinity", "inf"))
    try:
        value = json.loads(text, parse_constant=constant)
    except ValueError as e:
        raise PlotDataError(f"{path}: line {getattr(e, 'lineno', 1)}: JSON syntax error: "
                            f"{getattr(e, 'msg', e)}") from None
    if not isinstance(value, list):
        raise PlotDataError(f"{path}: the top level is a {type(value).__name__}; expected a "
                            "JSON array of objects, one per row ([plots.data])")
    for i, row in enumerate(value, start=1):
        if not isinstance(row, dict):
            raise PlotDataError(f"{path}: row {i} is a {type(row).__name__}; expected an "
                                "object ([plots.data])")
    return value


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_rows(rows: Sequence[Row], plot: PlotDefinition, path: str) -> None:
    """[plots.data]: every row has x and y; the fields drawn as numbers are numbers."""
    numeric = {"line": (plot.x, plot.y), "scatter": (plot.x, plot.y), "bar": (plot.y,),
               "confusion": ()}[plot.template] + ((plot.count,) if plot.count else ())
    for i, row in enumerate(rows, start=1):
        for field in (plot.x, plot.y) + ((plot.count,) if plot.count else ()):
            if field not in row:
                raise PlotDataError(f"{path}: row {i} has no field {field!r}; expected "
                                    f"the fields {plot.x!r} and {plot.y!r} in every row "
                                    "([plots.data])")
        for field in numeric:
            if not _number(row[field]):
                raise PlotDataError(f"{path}: row {i}, field {field!r}: "
                                    f"{json.dumps(row[field])[:60]} is not a number; "
                                    f"expected a number for a {plot.template} plot ([plots.data])")


def _order(value: Any) -> tuple[int, float, str]:
    if _number(value):
        return (0, value if not math.isnan(value) else math.inf, "")
    return (1, 0.0, value if isinstance(value, str) else json.dumps(value, sort_keys=True))


def category(value: Any) -> str:
    if _number(value) and float(value).is_integer() and not isinstance(value, bool):
        return str(int(value))
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Matrix:
    across: list[str]  # x's values
    down: list[str]  # y's values
    counts: list[list[float]]  # counts[row of y][column of x]


def confusion(rows: Sequence[Row], plot: PlotDefinition) -> Matrix:
    """[plots.templates]: cases counted per (x, y) pair, by `count` or one a row."""
    across = sorted({_hashable(r[plot.x]) for r in rows}, key=_order)
    down = sorted({_hashable(r[plot.y]) for r in rows}, key=_order)
    counts = [[0.0] * len(across) for _ in down]
    for r in rows:
        n = float(r[plot.count]) if plot.count else 1.0
        counts[down.index(_hashable(r[plot.y]))][across.index(_hashable(r[plot.x]))] += n
    return Matrix(across=[category(v) for v in across], down=[category(v) for v in down],
                  counts=counts)


def _hashable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None \
        else json.dumps(value, sort_keys=True)
