"""The command line: a thin argparse layer. SPEC [tool.exit-codes], [tool.validate].

`main(argv) -> int` parses, calls library code, prints, and maps outcomes to the exit codes
of SPEC.md. Results go to stdout, diagnostics about the run itself to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .spec import (
    DEFAULT_PIPELINE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    SPEC_VERSION_TEXT,
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def main_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="reftool", description="Plain-file ML pipelines and experiments "
                     f"(spec {SPEC_VERSION_TEXT}).")
    parser.add_argument("--version", action="version",
                        version=f"reftool {__version__} (spec {SPEC_VERSION_TEXT})")
    parser.add_argument("-C", dest="directory", metavar="DIR", default=".",
                        help="run as if started in DIR")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

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
                                    "common"))
    s.add_argument("--path", action="store_true", help="print the file's path instead")
    s.set_defaults(handler=cmd_schema)
    return parser


def cmd_validate(args: argparse.Namespace) -> int:
    from .report import RENDERERS
    from .validate import validate_paths, validate_project

    if args.paths:
        report = validate_paths(Path(p) for p in args.paths)
    else:
        report = validate_project(Path("."), args.file)
    sys.stdout.write(RENDERERS[args.format](report))
    failed = report.errors or (args.strict and report.warnings)
    return EXIT_INVALID if failed else EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from .schemas import SCHEMA_FILES, schema_dir

    path = schema_dir() / SCHEMA_FILES[args.name]
    if args.path:
        print(path)
    else:
        sys.stdout.write(path.read_text(encoding="utf-8"))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = main_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    try:
        if args.directory != ".":
            os.chdir(args.directory)
        code: int = args.handler(args)
        return code
    except KeyboardInterrupt:
        print("reftool: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except FileNotFoundError as e:
        print(f"reftool: {e.filename}: no such file or directory", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # a bug: say so in one line, never a traceback unless asked
        if os.environ.get("REFTOOL_DEBUG"):
            raise
        print(f"reftool: internal error: {type(e).__name__}: {e} "
              "(set REFTOOL_DEBUG=1 for a traceback, and please report it)", file=sys.stderr)
        return EXIT_INTERNAL


def entrypoint() -> None:
    sys.exit(main())
