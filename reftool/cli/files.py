"""`reftool validate` and `reftool schema`: SPEC [tool.validate]."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..files.spec import DEFAULT_PIPELINE, EXIT_INVALID, EXIT_OK


def add_parsers(sub: Any) -> None:
    """validate, schema"""
    v = sub.add_parser("validate", help="check pipeline, lock, params and metrics files",
                       description="Check the project's files against SPEC.md: schemas, "
                       "versions, cycles, overlapping outputs, missing deps and params, "
                       "paths, and the lock against the pipeline. Executes nothing.")
    v.add_argument("paths", nargs="*", metavar="PATH",
                   help="files to check (default: the project of the current directory)")
    v.add_argument("--format", choices=("text", "json", "github"), default="text",
                   help="report format (default: text)")
    v.add_argument("--strict", action="store_true", help="warnings also fail")
    v.add_argument("-f", "--file", default=DEFAULT_PIPELINE, metavar="PIPELINE",
                   help=f"the pipeline file (default: {DEFAULT_PIPELINE})")
    v.set_defaults(handler=cmd_validate)

    s = sub.add_parser("schema", help="print a JSON Schema of the spec, or its path",
                       description="Print one of the spec's JSON Schemas (for editors: "
                       "`# yaml-language-server: $schema=<path>`).")
    s.add_argument("name", choices=("pipeline", "lock", "metrics", "series-header",
                                    "series-record", "experiment", "validation-report",
                                    "plan", "metrics-diff", "params-diff", "exp-show", "common"))
    s.add_argument("--path", action="store_true", help="print the file's path instead")
    s.set_defaults(handler=cmd_schema)


def cmd_validate(args: argparse.Namespace) -> int:
    from ..files.diagnostics import RENDERERS
    from ..files.validate import validate_paths, validate_project

    if args.paths:
        report = validate_paths(Path(p) for p in args.paths)
    else:
        report = validate_project(Path("."), args.file)
    sys.stdout.write(RENDERERS[args.format](report))
    failed = report.errors or (args.strict and report.warnings)
    return EXIT_INVALID if failed else EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from ..files.schemas import SCHEMA_FILES, schema_dir

    path = schema_dir() / SCHEMA_FILES[args.name]
    if args.path:
        print(path)
    else:
        sys.stdout.write(path.read_text(encoding="utf-8"))
    return EXIT_OK
