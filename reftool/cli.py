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
from typing import Any

from . import __version__
from .spec import (
    DEFAULT_PIPELINE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_PENDING,
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

    p = sub.add_parser("plan", help="show which stages are stale, and exactly why",
                       description="Show the stages `run` would execute, in run order, each "
                       "with its reasons (SPEC section 10). Executes nothing and takes no "
                       "lock.")
    p.add_argument("stages", nargs="*", metavar="STAGE",
                   help="plan only these stages and what they need")
    p.add_argument("--json", action="store_true",
                   help="print the plan as JSON (schemas/plan.schema.json) and nothing else")
    p.add_argument("--exit-code", "--detailed-exitcode", dest="exit_code",
                   action="store_true",
                   help=f"exit {EXIT_OK} when nothing is to run, {EXIT_PENDING} when work is "
                   f"pending, {EXIT_INVALID} on error")
    p.add_argument("--force", action="store_true",
                   help="force the named stages (all, when none is named)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="list up-to-date and frozen stages too")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--no-hash-cache", action="store_true",
                   help="hash every file again, ignoring the local hash cache")
    p.add_argument("-f", "--file", default=DEFAULT_PIPELINE, metavar="PIPELINE",
                   help=f"the pipeline file (default: {DEFAULT_PIPELINE})")
    p.set_defaults(handler=cmd_plan)

    s = sub.add_parser("schema", help="print a JSON Schema of the spec, or its path",
                       description="Print one of the spec's JSON Schemas (for editors: "
                       "`# yaml-language-server: $schema=<path>`).")
    s.add_argument("name", choices=("pipeline", "lock", "metrics", "series-header",
                                    "series-record", "experiment", "validation-report",
                                    "plan", "common"))
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


def _print_problems(diagnostics: list[Any]) -> None:
    for d in diagnostics:
        line = f"{d.location}: {d.severity}[{d.phase}/{d.code}]: {d.message}"
        if d.hint:
            line += f" ({d.hint})"
        print(line, file=sys.stderr)


def cmd_plan(args: argparse.Namespace) -> int:
    from .hashing import Progress, hasher_for
    from .report import render_plan_json, render_plan_text

    root = Path(".")
    progress = Progress(enabled=not (args.quiet or args.json))
    hasher = hasher_for(root, use_cache=not args.no_hash_cache, progress=progress)
    try:
        hasher.prefetch()  # large directories are walked while the files are validated
        plan = _decide(args, root, hasher)
    finally:
        hasher.close()
        progress.done()
    if isinstance(plan, int):
        return plan
    sys.stdout.write(render_plan_json(plan) if args.json
                     else render_plan_text(plan, verbose=args.verbose))
    if args.exit_code and plan.to_run:
        return EXIT_PENDING
    return EXIT_OK


def _decide(args: argparse.Namespace, root: Path, hasher: Any) -> Any:
    """The plan of the project at `root`, or an exit code when there is none to show."""
    from .documents import DocumentCache
    from .errors import diagnostic
    from .hashing import HashError
    from .plan import decide
    from .schemas import stamp
    from .validate import Report, did_you_mean, validate_pipeline
    from .workspace import Workspace

    report = Report()
    cache = None if args.no_hash_cache else DocumentCache.open(root, stamp())
    project = validate_pipeline(root, args.file, report, with_metrics=False,
                                lock_warnings=False, cache=cache)
    if cache is not None:
        cache.save()
    if report.errors or project.pipeline is None:
        _print_problems(report.errors)
        print(f"reftool: {len(report.errors)} error(s) in the project's files; "
              "fix them first (reftool validate)", file=sys.stderr)
        return EXIT_INVALID
    pipeline = project.pipeline
    unknown = [s for s in args.stages if s not in pipeline.stages]
    if unknown:
        for name in unknown:
            guess = did_you_mean(name, pipeline.stages)
            hint = f"; did you mean {guess!r}?" if guess else ""
            print(f"reftool: no stage {name!r} in {args.file}{hint}", file=sys.stderr)
        return EXIT_USAGE
    workspace = Workspace(root, hasher, params=project.params)
    try:
        return decide(pipeline, project.lock, workspace, targets=args.stages,
                      force=args.force and not args.stages,
                      force_stages=args.stages if args.force else ())
    except HashError as e:
        _print_problems([diagnostic("semantic", e.code, e.path, str(e))])
        return EXIT_INVALID
    finally:
        hasher.cache.save()




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
