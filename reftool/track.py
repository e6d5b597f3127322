"""Logging for training code: params, per-step metrics and a summary, as SPEC section 12 files.

    from reftool import track

    log = track.Series("metrics/train.jsonl")       # header written, or an old series resumed
    for epoch in range(epochs):
        ...
        log.log(epoch, loss=loss, val_accuracy=acc)  # one line, flushed to disk at once
    track.summary("metrics/eval.json", accuracy=acc, per_class={"a": 0.9})
    track.params("metrics/params.json", lr=lr, seed=seed)

It imports only the standard library, so importing it costs almost nothing, and it works the
same with or without `reftool run`. Every series line is written whole with one `write` and
flushed to stable storage, so a crash loses at most the line being written, and a reader never
mistakes a torn line for data ([metrics.series]). Summary and params files are replaced
atomically. NaN and the infinities are written as the strings SPEC [metrics.nonfinite] names.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["Series", "params", "summary"]

VERSION = "1.0"


def _number(value: Any, where: str) -> Any:
    """[metrics.nonfinite]: a metric value as JSON can hold it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if hasattr(value, "item"):  # a numpy or torch scalar
            return _number(value.item(), where)
        raise TypeError(f"{where}: a metric must be a number, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _tree(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise TypeError(f"{where}: metric names are strings, not {key!r}")
        out[key] = _tree(value, f"{where}/{key}") if isinstance(value, Mapping) \
            else _number(value, f"{where}/{key}")
    return out


def _atomic_json(path: str, document: Any) -> None:
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def summary(path: str, **metrics: Any) -> None:
    """Write a summary metrics file ([metrics.summary]); nested mappings are allowed."""
    _atomic_json(path, {"version": VERSION, "metrics": _tree(metrics, path)})


def params(path: str, **values: Any) -> None:
    """Write a JSON params file (SPEC [files.params-format]) with the values a run used."""
    if not path.endswith(".json"):
        raise ValueError(f"{path}: params are written as JSON; name the file *.json")
    _atomic_json(path, values)


class Series:
    """A series metrics file being written ([metrics.series]).

    A new file gets its header line. An existing series is appended to (a resumed run), after
    its torn last line, if any, is cut off; `resume=False` starts the file anew.
    """

    def __init__(self, path: str, *, resume: bool = True, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        if resume and os.path.exists(path) and os.path.getsize(path) > 0:
            self._cut_torn_line()
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held open
        else:
            self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115
            self._write({"version": VERSION, "kind": "series"})

    def _cut_torn_line(self) -> None:
        with open(self.path, "rb+") as f:
            data = f.read()
            end = data.rfind(b"\n") + 1
            if end != len(data):
                f.truncate(end)

    def _write(self, record: Mapping[str, Any]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False, allow_nan=False,
                                    separators=(", ", ": ")) + "\n")
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())

    def log(self, step: int, *, time: bool = True, **metrics: Any) -> None:
        """Append one record: the step (an int >= 0), the time, and the metrics."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"{self.path}: step must be an int >= 0, not {step!r}")
        record: dict[str, Any] = {"step": step}
        if time:
            record["time"] = _dt.datetime.now(_dt.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ")
        record["metrics"] = {k: _number(v, f"{self.path}/{k}") for k, v in metrics.items()}
        self._write(record)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Series:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
