"""What the command groups share: the parser class, output formats, loading the project and
deciding its plan, the remote. Results go to stdout, diagnostics to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..files.spec import EXIT_INVALID, EXIT_USAGE


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def formats(parser: argparse.ArgumentParser, styles: tuple[str, ...]) -> None:
    group = parser.add_mutually_exclusive_group()
    for style in styles:
        group.add_argument(f"--{style}", dest="style", action="store_const", const=style,
                           help=f"print {style.upper() if style != 'md' else 'markdown'}")
    parser.set_defaults(style="text")


def print_problems(diagnostics: list[Any]) -> None:
    for d in diagnostics:
        line = f"{d.location}: {d.severity}[{d.phase}/{d.code}]: {d.message}"
        if d.hint:
            line += f" ({d.hint})"
        print(line, file=sys.stderr)


def load_project(args: argparse.Namespace, root: Path) -> Any:
    """The validated project, its lock with any unfinished run's journal applied, or an
    exit code after saying what is wrong."""
    from ..files.documents import DocumentCache
    from ..pipeline.lockfile import replay
    from ..files.schemas import stamp
    from ..files.validate import Report, did_you_mean, validate_pipeline

    report = Report()
    cache = None if getattr(args, "no_hash_cache", False) else DocumentCache.open(root, stamp())
    project = validate_pipeline(root, args.file, report, with_metrics=False,
                                lock_warnings=False, cache=cache)
    if cache is not None:
        cache.save()
    if report.errors or project.pipeline is None:
        print_problems(report.errors)
        print(f"reftool: {len(report.errors)} error(s) in the project's files; "
              "fix them first (reftool validate)", file=sys.stderr)
        return EXIT_INVALID
    pipeline = project.pipeline
    from ..files.graph import select
    args.stages, unknown = select(pipeline.stages, args.stages)  # [stale.selection]
    if unknown:
        for name in unknown:
            guess = did_you_mean(name, pipeline.stages)
            hint = f"; did you mean {guess!r}?" if guess else ""
            print(f"reftool: no stage {name!r} in {args.file}{hint}", file=sys.stderr)
        return EXIT_USAGE
    project.lock, project.replayed, project.recovered = replay(
        root, root / lock_name(args.file), project.lock)
    return project


def lock_name(pipeline_file: str) -> str:
    return str(Path(pipeline_file).with_suffix(".lock"))  # [files.lock-name]


def decide(args: argparse.Namespace, root: Path, hasher: Any, project: Any = None) -> Any:
    """The plan of the project at `root`, or an exit code when there is none to show."""
    from ..files.errors import SpecError, diagnostic
    from ..pipeline.hashing import HashError
    from ..pipeline.plan import decide as plan_decide
    from ..pipeline.store import Store
    from ..pipeline.workspace import CachingWorkspace

    if project is None:
        project = load_project(args, root)
        if isinstance(project, int):
            return project
    use_cache = not getattr(args, "no_cache", False)
    try:
        remote = remote_of(root, getattr(args, "remote", None)) if use_cache else None
    except ValueError:
        remote = None  # said by the command that uses the remote; a plan does without
    workspace = CachingWorkspace(root, hasher, Store(root), remote=remote,
                                 params=project.params,
                                 pipeline_version=project.pipeline.version)
    if getattr(args, "committed_only", False) and project.lock is not None:
        workspace.assume_recorded(project.lock)
    try:
        return plan_decide(project.pipeline, project.lock, workspace, targets=args.stages,
                      force=args.force and not args.stages,
                      force_stages=args.stages if args.force else (), use_cache=use_cache,
                      pipeline_file=args.file)
    except SpecError as e:  # a dep that nothing will produce
        print_problems(e.diagnostics)
        return EXIT_INVALID
    except HashError as e:
        print_problems([diagnostic(e.phase, e.code, e.path, str(e))])  # type: ignore[arg-type]
        return EXIT_INVALID
    finally:
        hasher.cache.save()


class ConfigError(ValueError):
    """reftool.toml cannot be used: the message names the file, the (phase/code) and what
    was expected. An invalid project file (exit 1), not a usage error."""


CONFIG_STRINGS = {"cache": ("remote",), "executor": ("kind", "scheduler")}


USER_CONFIG = ".reftool/config.toml"  # per user and machine: inside .reftool/, never committed


def tool_config(root: Path, table: str) -> dict[str, Any]:
    """The `[table]` of reftool.toml, overridden key by key by the same table of the user's
    uncommitted .reftool/config.toml (a remote or scheduler address of one's own); each read
    like every project file (bounded size and depth, [read.toml]), settings type-checked; {}
    when neither file exists."""
    from ..files.safe_io import refuse_links
    merged: dict[str, Any] = {}
    for name in ("reftool.toml", USER_CONFIG):
        path = root / name
        if not os.path.lexists(path):  # a FIFO or folder is refused by the reader, not skipped
            continue
        if name == USER_CONFIG:
            refuse_links(root, path)  # [security.symlinks]
        merged.update(_config_table(path, name, table))
    return merged


def _config_table(path: Path, display: str, table: str) -> dict[str, Any]:
    from ..files.documents import load
    from ..files.errors import SpecError
    from ..files.spec import MAX_TEXT_FILE_BYTES
    try:
        value = load(path, display=display, fmt="toml", limit=MAX_TEXT_FILE_BYTES).value
    except SpecError as e:
        d = e.diagnostics[0]
        raise ConfigError(f"{d.location}: {d.phase}/{d.code}: {d.message}") from None
    section = value.get(table, {})
    if not isinstance(section, dict):
        raise ConfigError(f"{display}: schema/type: {table} is a {type(section).__name__}; "
                          f"expected a table [{table}]")
    for key in CONFIG_STRINGS.get(table, ()):
        if key in section and not isinstance(section[key], str):
            raise ConfigError(f"{display}: schema/type: [{table}] {key} is a "
                              f"{type(section[key]).__name__}; expected a string")
    return dict(section)


def remote_of(root: Path, flag: str | None, jobs: int | None = None) -> Any:
    """The remote cache: --remote, else $REFTOOL_REMOTE, else [cache] remote in
    .reftool/config.toml or reftool.toml. It says on stderr, once, when it is out of reach
    and when it holds a corrupt object."""
    from ..pipeline.store import TRANSFER_JOBS, Remote
    url = flag or os.environ.get("REFTOOL_REMOTE") or tool_config(root, "cache").get("remote")
    if not url:
        return None
    return Remote(str(url), warn=lambda text: print(f"reftool: {text}", file=sys.stderr,
                                                    flush=True), jobs=jobs or TRANSFER_JOBS)
