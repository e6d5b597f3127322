"""Helpers shared by the classifier stages (Python standard library + numpy).

* ``param(pointer)`` reads one value of ``params.yaml`` by the JSON Pointer that
  ``pipeline.yaml`` declares for the stage (SPEC [params.pointer]), so the code
  and the declaration name each param the same way.
* metrics files (SPEC section 12) are written with ``reftool.track``.
* ``save_npz`` writes a byte-reproducible ``.npz`` so that a stage re-run on the
  same inputs produces identical bytes (and downstream stages can be skipped).

Params are read with ``reftool.read_params``: YAML 1.2, as the tool reads them (so
``1e-4`` is a float, as in YAML 1.2, and not a string as in YAML 1.1).
"""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
from reftool import read_params
from reftool.files.values import resolve_pointer

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
