"""Logging for training code: params, per-step metrics and a summary, as SPEC section 12 files.

    from reftool import track

    track.log_param("lr", lr)                       # metrics/params.json, rewritten atomically
    with track.Series("metrics/train.jsonl") as log:  # a fresh series (resume=True appends)
        for epoch in range(epochs):
            ...
            log.log(loss=loss, val_accuracy=acc)     # step 0, 1, 2, ... counted for you
            log.log_metrics({"val/loss": vl}, step=epoch)  # names that are not identifiers
    track.summary("metrics/eval.json", accuracy=acc, per_class={"a": 0.9})
    track.params("metrics/params.json", lr=lr, seed=seed)

It imports only the standard library, so importing it costs almost nothing, and it works the
same with or without `reftool run`. Every series line is written whole with one `write` and
handed to the operating system at once, so a crash of the training process loses nothing and a
reader (`reftool plot`, `exp show`) sees every step as it is logged; a torn line is never taken
for data ([metrics.series]). The file is made durable (fsync) when the series is closed and at
most every `durable_every` seconds while it is written, so a power cut loses at most those
seconds, and 10,000 steps cost no fsync each (about 20 times faster than an fsync per
line: benchmarks/bench_track.py). Summary and params files are replaced atomically. NaN and the infinities are written as the strings SPEC [metrics.nonfinite] names.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import time as _time
from collections.abc import Mapping
from typing import Any

__all__ = ["Series", "log_param", "log_params", "params", "summary"]

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


_LOGGED_PARAMS: dict[str, dict[str, Any]] = {}  # params file -> what this process logged


def log_params(path: str = "metrics/params.json", **values: Any) -> None:
    """Add params to the JSON params file of this run (dvclive's `log_params`): the file holds
    what this process logged, each call rewriting it atomically; a file left by an earlier
    run is replaced, never merged into, so it never holds another run's values."""
    logged = _LOGGED_PARAMS.setdefault(os.path.abspath(path), {})
    logged.update(values)
    params(path, **logged)


def log_param(name: str, value: Any, *, path: str = "metrics/params.json") -> None:
    """Add one param to the JSON params file of this run: see `log_params`."""
    log_params(path, **{name: value})


class Series:
    """A series metrics file being written ([metrics.series]).

    A fresh file with its header is started, as each run of a training script is a new series.
    `resume=True` appends to an existing series (a resumed run; its stage then declares the
    output `persist: true`), after its torn last line, if any, is cut off, and the automatic
    step goes on from its last step. Lines reach the operating system as they are logged, and
    stable storage every `durable_every` seconds and on `close` (`fsync=False`: never).
    """

    def __init__(self, path: str, *, resume: bool = False, fsync: bool = True,
                 durable_every: float = 2.0) -> None:
        self.path = path
        self.fsync = fsync
        self.durable_every = durable_every
        self._next_step = 0
        self._synced = _time.monotonic()
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        if resume and os.path.exists(path) and os.path.getsize(path) > 0:
            self._cut_torn_line()
            self._next_step = self._last_step() + 1
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held open
        else:
            self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115
            self._write({"version": VERSION, "kind": "series"})
            self._sync()  # the header: a new series is durable from its start

    def _cut_torn_line(self) -> None:
        with open(self.path, "rb+") as f:
            data = f.read()
            end = data.rfind(b"\n") + 1
            if end != len(data):
                f.truncate(end)

    def _last_step(self) -> int:
        """The last step of the series being resumed, or -1."""
        with open(self.path, "rb") as f:
            lines = f.read().split(b"\n")
        for line in reversed(lines[1:]):
            try:
                step = json.loads(line).get("step")
            except (ValueError, AttributeError):
                continue
            if isinstance(step, int) and not isinstance(step, bool):
                return step
        return -1

    def _write(self, record: Mapping[str, Any]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False, allow_nan=False,
                                    separators=(", ", ": ")) + "\n")
        self._file.flush()  # whole lines reach the OS: a crash of this process loses none
        if self.fsync and _time.monotonic() - self._synced >= self.durable_every:
            self._sync()

    def _sync(self) -> None:
        if self.fsync:
            os.fsync(self._file.fileno())
        self._synced = _time.monotonic()

    def log(self, step: int | None = None, *, time: bool = True, **metrics: Any) -> None:
        """Append one record: the step (an int >= 0; by default the one after the last), the
        time, and any number of metrics."""
        self.log_metrics(metrics, step=step, time=time)

    def log_metrics(self, metrics: Mapping[str, Any], *, step: int | None = None,
                    time: bool = True) -> None:
        """`log` with the metrics as a mapping, for names such as `val/loss`."""
        if step is None:
            step = self._next_step
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"{self.path}: step must be an int >= 0, not {step!r}")
        record: dict[str, Any] = {"step": step}
        if time:
            record["time"] = _dt.datetime.now(_dt.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ")
        record["metrics"] = {_name(k, self.path): _number(v, f"{self.path}/{k}")
                             for k, v in metrics.items()}
        self._write(record)
        self._next_step = step + 1

    @property
    def step(self) -> int:
        """The step the next `log` without a step will use."""
        return self._next_step

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.flush()
        self._sync()
        self._file.close()

    def __enter__(self) -> Series:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __del__(self) -> None:  # a series never closed is still made durable
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit, nothing left to tell
            pass


def _name(key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise TypeError(f"{where}: metric names are strings, not {key!r}")
    return key
