"""The command line: a thin argparse layer. SPEC [tool.exit-codes].

`main(argv) -> int` parses, calls library code, prints, and maps outcomes to the exit codes
of SPEC.md. Results go to stdout, diagnostics about the run itself to stderr. Each command
group builds its own parser and handlers in a module of this package.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..files.safe_io import NotRegularFile, UnsafePath
from ..files.spec import (
    EXIT_INVALID,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    SPEC_VERSION_TEXT,
)
from . import experiments, files, integrations, pipeline
from .common import Parser


def main_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="reftool", description="Plain-file ML pipelines and experiments "
                    f"(spec {SPEC_VERSION_TEXT}).")
    parser.add_argument("--version", action="version",
                        version=f"reftool {__version__} (spec {SPEC_VERSION_TEXT})")
    parser.add_argument("-C", dest="directory", metavar="DIR", default=".",
                        help="run as if started in DIR")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for group in (files, pipeline, experiments, integrations):
        group.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = main_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        if args.directory != ".":
            os.chdir(args.directory)
        code: int = args.handler(args)
        return code
    except KeyboardInterrupt:
        print("reftool: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `reftool ... | head`: the reader has all it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except FileNotFoundError as e:
        print(f"reftool: {e.filename}: no such file or directory", file=sys.stderr)
        return EXIT_USAGE
    except (UnsafePath, NotRegularFile) as e:  # SPEC section 16: refused, said, exit 1
        print(f"reftool: refused: {e}", file=sys.stderr)
        return EXIT_INVALID
    except Exception as e:  # a bug: say so in one line, never a traceback unless asked
        if os.environ.get("REFTOOL_DEBUG"):
            raise
        print(f"reftool: internal error: {type(e).__name__}: {e} "
              "(set REFTOOL_DEBUG=1 for a traceback, and please report it)", file=sys.stderr)
        return EXIT_INTERNAL


def entrypoint() -> None:
    sys.exit(main())
