"""The JSON Schemas of `schemas/`, loaded from the installed package: SPEC [files.kinds].

The tool validates with these very files; no rule of a schema is written again in code.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import re
from pathlib import Path
from typing import Any

SCHEMA_FILES = {
    "common": "common.schema.json",
    "pipeline": "pipeline.schema.json",
    "lock": "lock.schema.json",
    "metrics": "metrics.schema.json",
    "series-header": "series-header.schema.json",
    "series-record": "series-record.schema.json",
    "experiment": "experiment.schema.json",
    "queue-entry": "queue-entry.schema.json",
    "validation-report": "validation-report.schema.json",
    "plan": "plan.schema.json",
    "metrics-diff": "metrics-diff.schema.json",
    "params-diff": "params-diff.schema.json",
    "exp-show": "exp-show.schema.json",
}


def schema_dir() -> Path:
    """The folder holding the schema files: `reftool/_schemas/` where the package is installed
    (a wheel puts them there), else `schemas/` of the checkout (an editable install, or none).
    """
    package = Path(__file__).resolve().parent.parent  # reftool/
    installed = package / "_schemas"
    if (installed / SCHEMA_FILES["pipeline"]).is_file():
        return installed
    return package.parent / "schemas"


@functools.cache
def schema(name: str) -> dict[str, Any]:
    with open(schema_dir() / SCHEMA_FILES[name], encoding="utf-8") as f:
        loaded: dict[str, Any] = json.load(f)
    return loaded


@functools.cache
def stamp() -> str:
    """What a cached schema verdict depends on: the tool's version and the schemas' bytes."""
    import hashlib

    from .. import __version__
    h = hashlib.sha256(__version__.encode())
    for name in sorted(SCHEMA_FILES):
        h.update((schema_dir() / SCHEMA_FILES[name]).read_bytes())
    return h.hexdigest()


@functools.cache
def validator(name: str, pointer: str = "") -> Any:
    """A Draft 2020-12 validator for schema `name`, or for its sub-schema at `pointer`."""
    from jsonschema import Draft202012Validator, validators
    from referencing import Registry, Resource

    registry: Registry[Any] = Registry().with_resources(
        (schema(n)["$id"], Resource.from_contents(schema(n))) for n in SCHEMA_FILES)
    root = schema(name)
    target: dict[str, Any] = root
    if pointer:
        target = {"$ref": root["$id"] + "#" + pointer}
    # SPEC [values.strict-types]: where a schema says `integer`, a value read as a float (`1.0`)
    # is not one, although Draft 2020-12 counts integral floats as integers (`schema/type`).
    checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_int)
    strict = validators.extend(Draft202012Validator, type_checker=checker)
    return strict(target, registry=registry, format_checker=_format_checker())


def _format_checker() -> Any:
    from jsonschema import FormatChecker
    checker = FormatChecker(formats=())
    checker.checks("date-time")(is_rfc3339)
    return checker


_RFC3339 = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
                      r"(\.[0-9]+)?(Z|[+-]([0-9]{2}):([0-9]{2}))")


def is_rfc3339(value: Any) -> bool:
    """SPEC [metrics.series], [experiments.record]: a real RFC 3339 date and time (month 1-12,
    a day the month has, hour 0-23, minute 0-59, second 0-60, offset up to 23:59). Text not of
    the date-time shape passes here: the schemas' `pattern` reports it, once."""
    m = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        return True
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    try:
        _dt.date(year, month, day)
    except ValueError:
        return False
    offset_ok = m.group(9) is None or (int(m.group(9)) <= 23 and int(m.group(10)) <= 59)
    return hour <= 23 and minute <= 59 and second <= 60 and offset_ok


def _is_int(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)
