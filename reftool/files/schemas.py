"""The JSON Schemas of `schemas/`, loaded from the installed package: SPEC [files.kinds].

The tool validates with these very files; no rule of a schema is written again in code.
"""

from __future__ import annotations

import functools
import json
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
    "validation-report": "validation-report.schema.json",
    "plan": "plan.schema.json",
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
    return strict(target, registry=registry)


def _is_int(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)
