"""`reftool merge-lock`, `git install`, `dag`, `import-dvc`: SPEC [tool.git]."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..files.spec import DEFAULT_PIPELINE, EXIT_INVALID, EXIT_OK
from .common import Parser, decide, load_project, print_problems


def add_parsers(sub: Any) -> None:
    """merge-lock, git install, dag, import-dvc"""
    m = sub.add_parser("merge-lock", help="git merge driver for the lock file",
                       description="Merge three versions of a lock stage by stage, as a git "
                       "merge driver (%%O %%A %%B): writes the result over OURS. A stage changed "
                       "on both sides to different entries is left out, so the next plan runs "
                       "it (SPEC [lock.merge]).")
    m.add_argument("base", metavar="BASE")
    m.add_argument("ours", metavar="OURS")
    m.add_argument("theirs", metavar="THEIRS")
    m.set_defaults(handler=cmd_merge_lock)

    g = sub.add_parser("git", help="git integration").add_subparsers(
        dest="git_command", metavar="COMMAND", parser_class=Parser)
    g.required = True
    gi = g.add_parser("install", help="register the lock merge driver in this repository",
                      description="Register `reftool merge-lock` as the merge driver of "
                      "pipeline.lock (.gitattributes and the repository's git config), and "
                      "make .reftool/ ignore itself.")
    gi.set_defaults(handler=cmd_git_install)

    dg = sub.add_parser("dag", help="the stage graph as text, Mermaid or Graphviz dot")
    dg.add_argument("--format", choices=("text", "mermaid", "dot"), default="text")
    dg.add_argument("--plan", action="store_true", help="mark the stages that would run")
    dg.add_argument("-f", "--file", default=DEFAULT_PIPELINE, metavar="PIPELINE")
    dg.set_defaults(handler=cmd_dag, stages=[], force=False)

    im = sub.add_parser("import-dvc", help="convert a DVC project's dvc.yaml",
                        description="Write pipeline.yaml from dvc.yaml, and list every DVC "
                        "feature that could not be carried over, with its line. The lock is "
                        "not converted: DVC's md5 digests are not this spec's.")
    im.add_argument("directory", nargs="?", default=".", metavar="DIR")
    im.add_argument("--force", action="store_true", help="overwrite an existing pipeline.yaml")
    im.set_defaults(handler=cmd_import_dvc)


def cmd_merge_lock(args: argparse.Namespace) -> int:
    """[lock.merge]"""
    from ..integrations.gitmerge import merge_files
    from ..pipeline.lockfile import atomic_write_text

    ours = Path(args.ours)
    try:
        text, merged = merge_files(Path(args.base), ours, Path(args.theirs))
    except (ValueError, OSError) as e:
        print(f"reftool merge-lock: cannot merge the lock: {e}; left as it was",
              file=sys.stderr)
        return EXIT_INVALID
    atomic_write_text(ours, text)
    for name in merged.dropped:
        print(f"reftool merge-lock: stage {name!r} was run on both branches with different "
              "results; it is left out of the merged lock, so the next plan runs it again",
              file=sys.stderr)
    return EXIT_OK


def cmd_git_install(args: argparse.Namespace) -> int:
    from ..integrations.gitmerge import install
    try:
        done = install(Path("."))
    except RuntimeError as e:
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_INVALID
    for line in done or ["already installed"]:
        print(line)
    return EXIT_OK


def cmd_dag(args: argparse.Namespace) -> int:
    from ..integrations.dag import render
    from ..pipeline.hashing import hasher_for

    root = Path(".")
    project = load_project(args, root)
    if isinstance(project, int):
        return project
    plan = None
    if args.plan:
        hasher = hasher_for(root)
        try:
            plan = decide(args, root, hasher, project)
        finally:
            hasher.close()
            hasher.cache.save()
        if isinstance(plan, int):
            return plan
    sys.stdout.write(render(project.pipeline, args.format, plan))
    return EXIT_OK


def cmd_import_dvc(args: argparse.Namespace) -> int:
    from ..files.errors import SpecError
    from ..integrations.importdvc import convert, to_yaml
    from ..files.validate import validate_project

    root = Path(args.directory)
    target = root / DEFAULT_PIPELINE
    if target.exists() and not args.force:
        print(f"reftool: {target} exists; not overwriting it (--force to)", file=sys.stderr)
        return EXIT_INVALID
    try:
        result = convert(root)
    except SpecError as e:
        print_problems(e.diagnostics)
        return EXIT_INVALID
    from ..pipeline.lockfile import atomic_write_text
    atomic_write_text(target, to_yaml(result.pipeline, "dvc.yaml"))
    stages = len(result.pipeline["stages"])
    print(f"wrote {target}: {stages} stage{'s' * (stages != 1)}")
    for line, message in result.notes:
        print(f"dvc.yaml:{line}: not carried over: {message}" if line
              else f"dvc.yaml: not carried over: {message}")
    if (root / "dvc.lock").exists():
        print("dvc.lock is not converted (DVC's md5 digests are not this spec's sha256): "
              "the first plan shows every stage as never run")
    report = validate_project(root, DEFAULT_PIPELINE)
    for d in report.errors:
        print(f"to fix: {d.location}: {d.message}")
    return EXIT_OK
