"""The command line: a thin argparse layer. SPEC [tool.exit-codes].

`main(argv) -> int` parses, calls library code, prints, and maps outcomes to the exit codes
of SPEC.md. Results go to stdout, diagnostics about the run itself to stderr. Each command
group builds its own parser and handlers in a module of this package.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from ..files.safe_io import NotRegularFile, UnsafePath, to_devnull
from ..files.spec import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    DEFAULT_PIPELINE,
    EXIT_USAGE,
    SPEC_VERSION_TEXT,
)
from .common import Parser

#: The command groups, each a module of this package, and the commands each registers
#: (tests/test_cli.py checks this table against what the modules register).
GROUPS: dict[str, tuple[str, ...]] = {
    "files": ("validate", "schema"),
    "pipeline": ("plan", "run", "push", "pull", "cache"),
    "experiments": ("exp", "metrics", "params", "plot", "report"),
    "integrations": ("merge-lock", "git", "dag", "import-dvc"),
}


def _groups_for(argv: Sequence[str] | None) -> tuple[str, ...]:
    """The groups whose parsers `argv` needs: only the command's own group when the command
    is named (issue 18: building every parser cost about a sixth of a no-op plan's start-up),
    else all of them (help, a mistyped command)."""
    args = list(sys.argv[1:] if argv is None else argv)
    while args and args[0] in ("-C",):  # the top-level options that take a value
        args = args[2:]
    for group, commands in GROUPS.items():
        if args and args[0] in commands:
            return (group,)
    return tuple(GROUPS)


def main_parser(argv: Sequence[str] | None = None, *,
                groups: tuple[str, ...] | None = None) -> argparse.ArgumentParser:
    """The command line's parser: with `argv`, only what that command line needs."""
    parser = Parser(prog="reftool", description="Plain-file ML pipelines and experiments "
                    f"(spec {SPEC_VERSION_TEXT}).")
    parser.add_argument("--version", action="version",
                        version=f"reftool {__version__} (spec {SPEC_VERSION_TEXT})")
    parser.add_argument("-C", dest="directory", metavar="DIR", default=".",
                        help="run as if started in DIR")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for group in groups or (_groups_for(argv) if argv is not None else tuple(GROUPS)):
        importlib.import_module(f"{__name__}.{group}").add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        args = main_parser(words).parse_args(words)
    except SystemExit as e:
        return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    args.argv, args.start_dir = words, os.getcwd()  # what a remembered plan is keyed by
    return _dispatch(args)


#: Commands that take no project, or run where git or the user puts them: no upward search.
_NO_ROOT_SEARCH = frozenset({"schema", "import-dvc", "merge-lock"})
#: Options and arguments that name files relative to where the command was started.
_PATH_ARGS = ("paths", "out")


def find_root(start: Path, pipeline_file: str) -> Path | None:
    """[tool.root] (reftool.planmemo.find_root)."""
    from ..planmemo import find_root as search
    found = search(str(start), pipeline_file)
    return None if found is None else Path(found)


def _enter_root(args: argparse.Namespace) -> None:
    """[tool.root]: a command started in a subdirectory of a project runs at its root, with
    the paths it was given still meaning what they meant where it was started."""
    if getattr(args, "command", None) in _NO_ROOT_SEARCH:
        return
    start = Path.cwd()
    root = find_root(start, getattr(args, "file", DEFAULT_PIPELINE))
    if root is None or root == start:
        return
    for name in _PATH_ARGS:
        value = getattr(args, name, None)
        if isinstance(value, str) and not os.path.isabs(value):
            setattr(args, name, os.path.relpath(start / value, root))
        elif isinstance(value, list):
            setattr(args, name, [p if os.path.isabs(p) else os.path.relpath(start / p, root)
                                 for p in value])
    os.chdir(root)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        if args.directory != ".":
            os.chdir(args.directory)
        _enter_root(args)
        code: int = args.handler(args)
        return code
    except KeyboardInterrupt:
        print("reftool: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `reftool ... | head`: the reader has all it wanted
        to_devnull(sys.stdout)
        return EXIT_OK
    except FileNotFoundError as e:
        print(f"reftool: {e.filename}: no such file or directory", file=sys.stderr)
        return EXIT_USAGE
    except (UnsafePath, NotRegularFile) as e:  # SPEC section 16: refused, said, exit 1
        kind = "not_a_file" if isinstance(e, NotRegularFile) else "write_error"
        print(f"reftool: refused: {e} (io/{kind}, SPEC section 16)", file=sys.stderr)
        return EXIT_INVALID
    except OSError as e:  # the machine said no: a full disk, a size limit, a file in the way
        print(f"reftool: {_os_problem(e)}", file=sys.stderr)
        return EXIT_INVALID
    except Exception as e:  # a bug: say so in one line, never a traceback unless asked
        if isinstance(e.__cause__ or e.__context__, KeyboardInterrupt):  # wrapped by Python
            print("reftool: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        if os.environ.get("REFTOOL_DEBUG"):
            raise
        print(f"reftool: internal error: {type(e).__name__}: {e} "
              "(set REFTOOL_DEBUG=1 for a traceback, and please report it)", file=sys.stderr)
        return EXIT_INTERNAL


_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EDQUOT, errno.EEXIST,
                 errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG}


def _os_problem(e: OSError) -> str:
    """[errors.phase-code]: io/write_error or io/read_error, the file, the system's reason.
    Files are replaced atomically, so the ones that were there are as they were."""
    code = "write_error" if e.errno in _WRITE_ERRNOS else "read_error"
    where = e.filename if e.filename is not None else "(a file)"
    also = f" -> {e.filename2}" if e.filename2 is not None else ""
    return f"{where}{also}: io/{code}: {e.strerror or e}; files already written are unchanged"


def _interrupt(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the tool is already on its way out
    raise KeyboardInterrupt


def entrypoint() -> None:
    """The `reftool` command: SIGTERM is an interrupt like Ctrl-C, from the first moment to
    the last, and exits 130 ([tool.exit-codes])."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = main()
    except KeyboardInterrupt:  # while parsing the command line, before _dispatch
        print("reftool: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    if code == EXIT_INTERRUPTED:  # no second interrupt while the interpreter winds down
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
