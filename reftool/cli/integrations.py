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

    im = sub.add_parser("import-dvc", help="convert a DVC project's dvc.yaml files",
                        description="Write DIR/pipeline.yaml from every dvc.yaml under DIR "
                        "(the project root: default, the git repository's root), and list "
                        "every DVC construct that could not be carried over or was changed, "
                        "with its file and line, and every path guessed to be a file. A "
                        "result that would not validate is not written (exit 1). The lock "
                        "is not converted: DVC's md5 digests are not this spec's.")
    im.add_argument("root", nargs="?", default=None, metavar="DIR",
                    help="the project root of the pipeline (default: the git root)")
    im.add_argument("--file", action="append", default=None, metavar="DVCYAML",
                    dest="dvc_files", help="convert only this dvc.yaml (relative to DIR; "
                    "repeatable; default: every dvc.yaml under DIR)")
    im.add_argument("--check", action="store_true",
                    help="convert in memory and report; write nothing")
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
    from ..integrations.importdvc import convert, find_dvc_files, git_root, to_yaml

    root = _import_root(args.root)
    if root is None:
        return EXIT_INVALID
    files = [Path(f).as_posix() for f in args.dvc_files] if args.dvc_files \
        else find_dvc_files(root)
    missing = [f for f in files if not (root / f).is_file()] or ([] if files else ["dvc.yaml"])
    if missing:
        from ..files.errors import diagnostic
        print_problems([diagnostic("io", "file_not_found", m, f"no {m} under {root}")
                        for m in missing])
        return EXIT_INVALID
    target = root / DEFAULT_PIPELINE
    if target.exists() and not args.force and not args.check:
        print(f"reftool: {target} exists; not overwriting it (--force to)", file=sys.stderr)
        return EXIT_INVALID
    result = convert(root, files)
    if result.errors:
        print_problems(result.errors)
        print(f"reftool: {target} not written", file=sys.stderr)
        return EXIT_INVALID
    text = to_yaml(result.pipeline, result.sources)
    errors = [] if result.refused else _validate_text(root, text)
    for note in result.notes:
        print(note.render())
    stages = len(result.pipeline["stages"])
    if result.refused or errors:
        for e in errors:
            print(f"reftool: the result would not validate: {e}", file=sys.stderr)
        print(f"reftool: {target} not written: the notes marked 'refused' and the errors "
              "above say why", file=sys.stderr)
        return EXIT_INVALID
    if args.check:
        print(f"would write {target}: {stages} stage{'s' * (stages != 1)} from "
              f"{len(files)} dvc.yaml")
        return EXIT_OK
    from ..pipeline.lockfile import atomic_write_text
    atomic_write_text(target, text)
    print(f"wrote {target}: {stages} stage{'s' * (stages != 1)} from {len(files)} dvc.yaml")
    if any((root / f).with_name("dvc.lock").exists() for f in files):
        print("dvc.lock is not converted (DVC's md5 digests are not this spec's sha256): "
              "the first plan shows every stage as never run")
    return EXIT_OK


def _import_root(given: str | None) -> Path | None:
    """The project root: DIR as given (relative to the current directory, after -C), else
    the git repository's root, else the current directory."""
    from ..integrations.importdvc import git_root
    if given is not None:
        root = Path(given)
        if not root.is_dir():
            print(f"reftool: {given}: no such directory", file=sys.stderr)
            return None
        return root
    return git_root(Path.cwd()) or Path(".")


def _validate_text(root: Path, text: str) -> list[str]:
    """The errors `validate` would report for the pipeline `text` at root, read in memory."""
    from ..files.validate import Report, validate_pipeline
    report = Report()
    validate_pipeline(root, DEFAULT_PIPELINE, report, with_lock=False, with_metrics=False,
                      text=text)
    return [f"{d.location}: {d.message}" for d in report.diagnostics
            if d.severity == "error"]
