"""reftool: the reference tool of an open plain-file standard for ML pipelines and experiments.

The normative text is SPEC.md; this package implements it. Public API: the names in __all__.
Importing the package is cheap: the functions below import what they need when called.
"""

from __future__ import annotations

TYPE_CHECKING = False  # `python -m reftool plan` starts without importing typing
if TYPE_CHECKING:
    from typing import Any
del TYPE_CHECKING  # not a name of the public API

__version__ = "0.1.0"

__all__ = ["__version__", "param", "read_params"]


def read_params(path: str) -> dict[str, Any]:
    """The values of a params file exactly as the tool reads them (SPEC section 4).

    YAML is read as YAML 1.2 (`1e-3` is a float, `on` a string), JSON and TOML by their specs.
    Training code that reads its params with this function sees the values that the lock
    records. Raises `reftool.errors.SpecError` with file, line and column on a bad file.
    """
    import os

    from .files.documents import load
    from .files.errors import SpecError, diagnostic
    from .files.spec import MAX_TEXT_FILE_BYTES, PARAMS_EXTENSIONS

    fmt = PARAMS_EXTENSIONS.get(os.path.splitext(path)[1].lower())
    if fmt is None:
        raise SpecError([diagnostic("semantic", "params_format", path,
                                    "unknown params file extension",
                                    expected=".yaml, .yml, .json or .toml")])
    doc = load(path, display=path, fmt=fmt, limit=MAX_TEXT_FILE_BYTES)  # type: ignore[arg-type]
    if not isinstance(doc.value, dict):
        raise SpecError([diagnostic("schema", "type", path, "a params file must be a mapping")])
    return doc.value


def param(pointer: str, path: str = "params.yaml") -> Any:
    """The value at a JSON Pointer (SPEC [params.pointer]) of a params file, e.g. `/train/lr`."""
    from .files.values import resolve_pointer

    document = read_params(path)
    try:
        return resolve_pointer(document, pointer)
    except KeyError as e:
        from .files.errors import SpecError, diagnostic
        raise SpecError([diagnostic("semantic", "params_key_missing", path,
                                    f"no key {pointer!r} (no {e.args[0]!r})")]) from None
