"""Helpers shared by the classifier stages (Python standard library + numpy).

* ``param(pointer)`` reads one value of ``params.yaml`` by the JSON Pointer that
  ``pipeline.yaml`` declares for the stage (SPEC [params.pointer]), so the code
  and the declaration name each param the same way.
* ``write_summary`` / ``SeriesWriter`` write the metrics files of SPEC section 12.
* ``save_npz`` writes a byte-reproducible ``.npz`` so that a stage re-run on the
  same inputs produces identical bytes (and downstream stages can be skipped).

Params are read with ``reftool.read_params``: YAML 1.2, as the tool reads them (so
``1e-4`` is a float, as in YAML 1.2, and not a string as in YAML 1.1).
"""

from __future__ import annotations

import datetime
import io
import json
import math
import os
import zipfile

import numpy as np
from reftool import read_params
from reftool.values import resolve_pointer

PARAMS_FILE = "params.yaml"

# --------------------------------------------------------------------------- params

_PARAMS_CACHE: dict = {}


def param(pointer: str, path: str = PARAMS_FILE):
    """One value of ``params.yaml`` by the JSON Pointer the pipeline declares for the stage.

    Read with reftool's own reader, so the script sees exactly the values (YAML 1.2 types
    included) that the tool records in the lock.
    """
    if path not in _PARAMS_CACHE:
        _PARAMS_CACHE[path] = read_params(path)
    return resolve_pointer(_PARAMS_CACHE[path], pointer)


# --------------------------------------------------------------------------- metrics


def _finite_or_text(value):
    """SPEC [metrics.nonfinite]: NaN and the infinities are written as strings."""
    if isinstance(value, dict):
        return {k: _finite_or_text(v) for k, v in value.items()}
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
    return value


def write_summary(path: str, metrics: dict) -> None:
    """Write a summary metrics file (SPEC [metrics.summary])."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    doc = {"version": "1.0", "metrics": _finite_or_text(metrics)}
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")


def utc_now() -> str:
    """The current time as an RFC 3339 UTC timestamp, e.g. 2024-05-01T12:00:00.123Z."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SeriesWriter:
    """Write a series metrics file (SPEC [metrics.series]) one flushed line at a time."""

    def __init__(self, path: str):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._f = open(path, "w", encoding="utf-8", newline="\n")
        self._write({"version": "1.0", "kind": "series"})

    def _write(self, obj) -> None:
        self._f.write(json.dumps(obj, allow_nan=False) + "\n")
        self._f.flush()

    def log(self, step: int, metrics: dict) -> None:
        self._write({"step": int(step), "time": utc_now(), "metrics": _finite_or_text(metrics)})

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------- arrays


def save_npz(path: str, **arrays) -> None:
    """Like numpy.savez, but byte-reproducible: fixed member order and timestamps."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def load_npz(path: str) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
