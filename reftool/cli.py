"""The command line: a thin argparse layer. SPEC [tool.exit-codes], [tool.validate].

`main(argv) -> int` parses, calls library code, prints, and maps outcomes to the exit codes
of SPEC.md. Results go to stdout, diagnostics about the run itself to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .spec import (
    DEFAULT_PIPELINE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_BUSY,
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
    p.add_argument("--committed-only", action="store_true",
                   help="judge only the files that are there: a missing dep or output counts "
                   "as the lock records it (for CI, where outputs are not checked out)")
    p.add_argument("--no-hash-cache", action="store_true",
                   help="hash every file again, ignoring the local hash cache")
    p.add_argument("-f", "--file", default=DEFAULT_PIPELINE, metavar="PIPELINE",
                   help=f"the pipeline file (default: {DEFAULT_PIPELINE})")
    p.set_defaults(handler=cmd_plan)

    r = sub.add_parser("run", help="run the stale stages, and only those",
                       description="Run the stages the plan names, in order, recording each "
                       "in the lock as it completes (SPEC section 11).")
    r.add_argument("stages", nargs="*", metavar="STAGE",
                   help="run only these stages and what they need")
    r.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="run up to N independent stages at once (default: 1)")
    r.add_argument("--keep-going", action="store_true",
                   help="after a failure, go on with the stages that do not depend on it")
    r.add_argument("--force", action="store_true",
                   help="run the named stages (all, when none is named) even if up to date")
    r.add_argument("--dry-run", action="store_true", help="print the plan and run nothing")
    r.add_argument("--no-cache", action="store_true",
                   help="never restore outputs from the cache, always run")
    r.add_argument("-q", "--quiet", action="store_true",
                   help="write each stage's output to .reftool/logs/STAGE.log, not here")
    r.add_argument("--no-wait", action="store_true",
                   help=f"if another run holds the project, exit {EXIT_BUSY} at once")
    r.add_argument("-f", "--file", default=DEFAULT_PIPELINE, metavar="PIPELINE",
                   help=f"the pipeline file (default: {DEFAULT_PIPELINE})")
    r.set_defaults(handler=cmd_run)

    r.add_argument("--remote", metavar="URL", help="a shared cache folder to restore outputs "
                   "from (default: $REFTOOL_REMOTE, or [cache] remote in reftool.toml)")
    r.add_argument("--executor", choices=("local", "dask"), metavar="local|dask",
                   help="where stages run (default: local, or [executor] kind in reftool.toml)")
    r.add_argument("--scheduler", metavar="ADDRESS",
                   help="the Dask scheduler, e.g. tcp://10.0.0.5:8786 (or [executor] "
                   "scheduler in reftool.toml)")
    r.add_argument("--name", help="name of the experiment record this run writes")
    r.add_argument("--no-record", action="store_true",
                   help="write no experiment record for this run")

    e = sub.add_parser("exp", help="experiments: show them, save one").add_subparsers(
        dest="exp_command", metavar="COMMAND", parser_class=_Parser)
    e.required = True
    es = e.add_parser("show", help="one row per experiment: params that differ, metrics",
                      description="Compare experiments: one row per experiment record (and "
                      "per --rev), columns for the params that differ between rows and for "
                      "every metric.")
    es.add_argument("--rev", action="append", default=[], metavar="REV",
                    help="add a row for a git revision or branch (read through git)")
    es.add_argument("--all-params", action="store_true", help="show params that are equal too")
    es.add_argument("--no-workspace", action="store_true", help="leave out the workspace row")
    es.add_argument("--sort", metavar="COLUMN", help="sort by a column")
    es.add_argument("--desc", action="store_true", help="sort in descending order")
    es.add_argument("--filter", action="append", default=[], metavar="EXPR",
                    help="keep rows where COLUMN OP VALUE holds, e.g. 'accuracy>0.9'")
    _formats(es, ("md", "json", "csv"))
    es.set_defaults(handler=cmd_exp_show)
    ev = e.add_parser("save", help="record the workspace's params and metrics as an experiment")
    ev.add_argument("name", help="a name for the experiment")
    ev.set_defaults(handler=cmd_exp_save)

    for kind in ("metrics", "params"):
        k = sub.add_parser(kind, help=f"{kind}: diff").add_subparsers(
            dest=f"{kind}_command", metavar="COMMAND", parser_class=_Parser)
        k.required = True
        d = k.add_parser("diff", help=f"what {kind} changed between two experiments",
                         description=f"The {kind} that differ between A and B. A and B are "
                         "'workspace', an experiment's id or name, or a git revision; A "
                         "defaults to HEAD (or the last experiment), B to the workspace.")
        d.add_argument("a", nargs="?", metavar="A")
        d.add_argument("b", nargs="?", metavar="B", default="workspace")
        d.add_argument("--all", action="store_true", help="show unchanged rows too")
        _formats(d, ("md", "json"))
        d.set_defaults(handler=cmd_diff, kind=kind)

    pl = sub.add_parser("plot", help="plot metrics: curves per step, summary bars",
                        description="Plot series metrics step by step, one panel per metric, "
                        "experiments overlaid; and summary metrics as bars.")
    pl.add_argument("refs", nargs="*", metavar="REF",
                    help="workspace, experiment ids or names, git revisions "
                    "(default: every experiment and the workspace)")
    pl.add_argument("--out", default="reftool-plots", metavar="DIR",
                    help="folder for the images (default: reftool-plots)")
    pl.add_argument("--format", choices=("png", "svg"), default="png")
    pl.add_argument("--metric", action="append", default=[], metavar="NAME",
                    help="plot only these metrics")
    pl.set_defaults(handler=cmd_plot)

    rp = sub.add_parser("report", help="a markdown report for a pull request",
                        description="Write DIR/report.md: params and metrics diff against "
                        "a base (better/worse marked) and plots beside it; under 65,536 "
                        "characters.")
    rp.add_argument("--base", metavar="REV", help="git revision or experiment to compare with "
                    "(default: HEAD, or the last experiment)")
    rp.add_argument("--out", default="reftool-report", metavar="DIR")
    rp.set_defaults(handler=cmd_report)

    for verb, text in (("push", "copy the local cache of outputs to the remote"),
                       ("pull", "copy the remote cache of outputs here")):
        rm = sub.add_parser(verb, help=text, description=text.capitalize() + ": objects "
                            "verified by digest, never a partial object visible.")
        rm.add_argument("--remote", metavar="URL",
                        help="a folder (default: $REFTOOL_REMOTE, or [cache] remote in "
                        "reftool.toml)")
        rm.set_defaults(handler=cmd_push if verb == "push" else cmd_pull)

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
        dest="git_command", metavar="COMMAND", parser_class=_Parser)
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

    s = sub.add_parser("schema", help="print a JSON Schema of the spec, or its path",
                       description="Print one of the spec's JSON Schemas (for editors: "
                       "`# yaml-language-server: $schema=<path>`).")
    s.add_argument("name", choices=("pipeline", "lock", "metrics", "series-header",
                                    "series-record", "experiment", "validation-report",
                                    "plan", "common"))
    s.add_argument("--path", action="store_true", help="print the file's path instead")
    s.set_defaults(handler=cmd_schema)
    return parser


def _formats(parser: argparse.ArgumentParser, styles: tuple[str, ...]) -> None:
    group = parser.add_mutually_exclusive_group()
    for style in styles:
        group.add_argument(f"--{style}", dest="style", action="store_const", const=style,
                           help=f"print {style.upper() if style != 'md' else 'markdown'}")
    parser.set_defaults(style="text")


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
    if (root / "dvc.lock").exists() and not (root / _lock_name(args.file)).exists() \
            and not args.quiet:
        print("reftool: dvc.lock is not read (its md5 digests are not this spec's); every "
              "stage counts as never run until its first reftool run", file=sys.stderr)
    sys.stdout.write(render_plan_json(plan) if args.json
                     else render_plan_text(plan, verbose=args.verbose))
    if args.exit_code and plan.to_run:
        return EXIT_PENDING
    return EXIT_OK


def _load_project(args: argparse.Namespace, root: Path) -> Any:
    """The validated project, its lock with any unfinished run's journal applied, or an
    exit code after saying what is wrong."""
    from .documents import DocumentCache
    from .lockfile import replay
    from .schemas import stamp
    from .validate import Report, did_you_mean, validate_pipeline

    report = Report()
    cache = None if getattr(args, "no_hash_cache", False) else DocumentCache.open(root, stamp())
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
    project.lock, project.replayed, project.recovered = replay(
        root, root / _lock_name(args.file), project.lock)
    return project


def _lock_name(pipeline_file: str) -> str:
    return str(Path(pipeline_file).with_suffix(".lock"))  # [files.lock-name]


def _decide(args: argparse.Namespace, root: Path, hasher: Any, project: Any = None) -> Any:
    """The plan of the project at `root`, or an exit code when there is none to show."""
    from .errors import diagnostic
    from .hashing import HashError
    from .plan import decide
    from .store import Store
    from .workspace import CachingWorkspace

    if project is None:
        project = _load_project(args, root)
        if isinstance(project, int):
            return project
    use_cache = not getattr(args, "no_cache", False)
    try:
        remote = _remote(root, getattr(args, "remote", None)) if use_cache else None
    except ValueError:
        remote = None  # said by the command that uses the remote; a plan does without
    workspace = CachingWorkspace(root, hasher, Store(root), remote=remote,
                                 params=project.params)
    if getattr(args, "committed_only", False) and project.lock is not None:
        workspace.assume_recorded(project.lock)
    try:
        return decide(project.pipeline, project.lock, workspace, targets=args.stages,
                      force=args.force and not args.stages,
                      force_stages=args.stages if args.force else (), use_cache=use_cache)
    except HashError as e:
        _print_problems([diagnostic("semantic", e.code, e.path, str(e))])
        return EXIT_INVALID
    finally:
        hasher.cache.save()




def cmd_run(args: argparse.Namespace) -> int:
    """[tool.run]"""
    from .execute import Options, Runner
    from .hashing import Progress, hasher_for
    from .lockfile import Journal, pruned, write_lock
    from .report import render_plan_text
    from .runlock import Busy, RunLock
    from .store import Store
    from .workspace import CachingWorkspace

    if args.jobs < 1:
        print("reftool: -j needs a number of at least 1", file=sys.stderr)
        return EXIT_USAGE
    root = Path(".")
    try:
        remote = None if args.no_cache else _remote(root, args.remote)
        kind, scheduler = _executor_settings(root, args)
    except ValueError as e:
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_USAGE
    executor = None
    if kind == "dask" and not args.dry_run:
        from .dask_executor import ClusterError, DaskExecutor
        try:
            executor = DaskExecutor(str(scheduler))
        except ClusterError as e:
            print(f"reftool: {e}; nothing was run, the lock is as it was", file=sys.stderr)
            return EXIT_INVALID

    def say(text: str) -> None:
        print(f"reftool: {text}", file=sys.stderr, flush=True)

    run_lock = RunLock(root)
    if not args.dry_run:
        try:
            run_lock.acquire(wait=not args.no_wait, say=say)
        except Busy as e:
            say(f"another run ({e.holder}) is running in this project; not waiting "
                "(--no-wait)")
            return EXIT_BUSY
    progress = Progress(enabled=not args.quiet)
    hasher = hasher_for(root, progress=progress)
    try:
        project = _load_project(args, root)
        if isinstance(project, int):
            return project
        lock_path = root / _lock_name(args.file)
        if project.replayed and not args.dry_run:  # make the journal's changes the lock's
            if project.recovered:
                say(f"recovered {project.recovered} stage(s) recorded by a run that did not "
                    "finish")
            write_lock(lock_path, pruned(project.lock, set(project.pipeline.stages)))
            (root / ".reftool" / "lock-journal.jsonl").unlink(missing_ok=True)
        plan = _decide(args, root, hasher, project)
        progress.done()
        progress.enabled = False  # from here on, each stage says what it does
        if isinstance(plan, int):
            return plan
        if args.dry_run or not plan.to_run:
            sys.stdout.write(render_plan_text(plan))
            return EXIT_OK
        started = time.monotonic()
        journal = Journal(root, lock_path)
        journal.start()
        runner = Runner(root=root, pipeline=project.pipeline, lock=project.lock,
                        remote=remote, executor=executor,
                        workspace=CachingWorkspace(root, hasher, Store(root),
                                                   params=project.params),
                        journal=journal, store=None if args.no_cache else Store(root),
                        options=Options(jobs=args.jobs, keep_going=args.keep_going,
                                        use_cache=not args.no_cache, quiet=args.quiet),
                        out=sys.stdout, err=sys.stderr)
        summary = runner.run(plan)
        journal.finish(runner.lock())
        print(summary.line(time.monotonic() - started), flush=True)
        if not (summary.failed or summary.interrupted or args.no_record) and (
                summary.count("ran") or summary.count("restored")):
            _record_experiment(root, args, project.pipeline)
        if summary.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_INVALID if summary.failed else EXIT_OK
    finally:
        hasher.close()
        hasher.cache.save()
        run_lock.release()
        if executor is not None:
            executor.close()


def _declarations(root: Path) -> Any:
    from .experiments import read_pipeline, workspace_reader
    pipeline = read_pipeline(workspace_reader(root), "workspace")
    return dict(pipeline.metrics) if pipeline is not None else {}


def _default_base(root: Path) -> str | None:
    from .experiments import git, records
    if git(root, "rev-parse", "--verify", "--quiet", "HEAD"):
        return "HEAD"
    found = list(records(root))
    return str(found[-1]["id"]) if found else None


def cmd_exp_show(args: argparse.Namespace) -> int:
    from .compare import filter_rows, render_table, sort_rows, table
    from .experiments import SourceError, record_snapshot, records, resolve

    root = Path(".")
    declarations = _declarations(root)
    snaps = [record_snapshot(r, declarations) for r in records(root)]
    try:
        snaps += [resolve(root, rev, declarations) for rev in args.rev]
        if not args.no_workspace:
            snaps.append(resolve(root, "workspace", declarations))
    except SourceError as e:
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_USAGE
    if not snaps:
        print("reftool: no experiments yet (reftool run writes one)", file=sys.stderr)
        return EXIT_OK
    t = table(snaps, all_params=args.all_params)
    try:
        t = filter_rows(t, args.filter)
        if args.sort:
            t = sort_rows(t, args.sort, descending=args.desc)
    except ValueError as e:
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(render_table(t, args.style))
    return EXIT_OK


def cmd_exp_save(args: argparse.Namespace) -> int:
    from .experiments import SourceError, build_record, write_record
    root = Path(".")
    try:
        path = write_record(root, build_record(root, args.name, pipeline_file=DEFAULT_PIPELINE))
    except SourceError as e:
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_INVALID
    print(f"saved experiment {args.name!r} as {path}")
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from .compare import diff, param_label, render_diff
    from .experiments import SourceError, resolve

    root = Path(".")
    a = args.a or _default_base(root)
    if a is None:
        print("reftool: nothing to compare with: name A (no git HEAD, no experiment)",
              file=sys.stderr)
        return EXIT_USAGE
    declarations = _declarations(root)
    try:
        old, new = resolve(root, a, declarations), resolve(root, args.b, declarations)
    except SourceError as e:
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.kind == "metrics":
        changes = diff(old.metrics, new.metrics, declarations=declarations, all_rows=args.all)
        label: Any = str
    else:
        changes = diff(old.params, new.params, all_rows=args.all)
        label = param_label(old.params.keys() | new.params.keys())
    sys.stdout.write(render_diff(changes, args.style, old_label=old.label,
                                 new_label=new.label, kind=args.kind, label=label))
    return EXIT_OK


def _sources(root: Path, refs: list[str]) -> Any:
    from .experiments import record_snapshot, records, resolve
    declarations = _declarations(root)
    if refs:
        return [resolve(root, ref, declarations) for ref in refs]
    snaps = [record_snapshot(r, declarations) for r in records(root)][-10:]
    return snaps + [resolve(root, "workspace", declarations)]


def cmd_plot(args: argparse.Namespace) -> int:
    from .experiments import SourceError
    from .plot import bars, curves, save

    root = Path(".")
    try:
        snaps = _sources(root, args.refs)
    except SourceError as e:
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    written = []
    for name, draw in (("curves", curves), ("summary", bars)):
        try:
            fig = draw(snaps, args.metric or None)
        except ValueError as e:
            print(f"reftool: {name}: {e}", file=sys.stderr)
            continue
        written.append(save(fig, out / f"{name}.{args.format}"))
    for path in written:
        print(path)
    return EXIT_OK if written else EXIT_INVALID


def cmd_report(args: argparse.Namespace) -> int:
    from .experiments import SourceError, resolve
    from .report import pr_report

    root = Path(".")
    base = args.base or _default_base(root)
    declarations = _declarations(root)
    try:
        old = resolve(root, base, declarations) if base else None
        new = resolve(root, "workspace", declarations)
    except SourceError as e:
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_USAGE
    path = pr_report(old, new, declarations, Path(args.out))
    print(path)
    return EXIT_OK


def _record_experiment(root: Path, args: argparse.Namespace, pipeline: Any) -> None:
    """[experiments.record]: every completed run that produced metrics leaves a record."""
    from .experiments import SourceError, build_record, write_record
    if not any(o.section == "metrics" for s in pipeline.stages.values() for o in s.outputs):
        return
    try:
        path = write_record(root, build_record(root, args.name, pipeline_file=args.file,
                                               lock_file=_lock_name(args.file)))
    except (SourceError, OSError) as e:
        print(f"reftool: no experiment record written: {e}", file=sys.stderr)
        return
    print(f"experiment recorded in {path}")


def _executor_settings(root: Path, args: argparse.Namespace) -> tuple[str, str | None]:
    """(kind, scheduler) from the command line, else [executor] in reftool.toml."""
    config: dict[str, Any] = {}
    path = root / "reftool.toml"
    if path.is_file():
        import tomllib
        try:
            config = tomllib.loads(path.read_text(encoding="utf-8")).get("executor", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: {e}") from None
    kind = args.executor or config.get("kind", "local")
    scheduler = args.scheduler or config.get("scheduler")
    if kind not in ("local", "dask"):
        raise ValueError(f"unknown executor {kind!r}: local or dask")
    if kind == "dask" and not scheduler:
        raise ValueError("the Dask executor needs a scheduler: --scheduler tcp://HOST:PORT")
    return kind, scheduler


def _remote(root: Path, flag: str | None) -> Any:
    """The remote cache: --remote, else $REFTOOL_REMOTE, else [cache] remote in reftool.toml."""
    from .store import Remote
    url = flag or os.environ.get("REFTOOL_REMOTE")
    config = root / "reftool.toml"
    if not url and config.is_file():
        import tomllib
        try:
            url = tomllib.loads(config.read_text(encoding="utf-8")).get("cache", {}).get(
                "remote")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{config}: {e}") from None
    return Remote(str(url)) if url else None


def _with_remote(args: argparse.Namespace, verb: str, action: Any) -> int:
    """Run `action(remote, store)` for push or pull, turning every failure into a message."""
    from .store import Store
    try:
        remote = _remote(Path("."), args.remote)
        if remote is None:
            print("reftool: no remote: give --remote, set REFTOOL_REMOTE, or [cache] remote "
                  "in reftool.toml", file=sys.stderr)
            return EXIT_USAGE
        print(action(remote, Store(Path("."))))
    except ValueError as e:
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # noqa: BLE001 - the storage library's own errors, whatever they are
        print(f"reftool: {verb} failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def cmd_push(args: argparse.Namespace) -> int:
    def push(remote: Any, store: Any) -> str:
        objects, runs = remote.push(store)
        return f"pushed {objects} object(s) and {runs} run(s) to {remote.url}"
    return _with_remote(args, "push", push)


def cmd_pull(args: argparse.Namespace) -> int:
    def pull(remote: Any, store: Any) -> str:
        return (f"pulled {remote.pull(store)} run(s) from {remote.url}; reftool run restores "
                "their outputs")
    return _with_remote(args, "pull", pull)


def cmd_merge_lock(args: argparse.Namespace) -> int:
    """[lock.merge]"""
    from .gitmerge import merge_files
    from .lockfile import atomic_write_text

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
    from .gitmerge import install
    try:
        done = install(Path("."))
    except RuntimeError as e:
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_INVALID
    for line in done or ["already installed"]:
        print(line)
    return EXIT_OK


def cmd_dag(args: argparse.Namespace) -> int:
    from .dag import render
    from .hashing import hasher_for

    root = Path(".")
    project = _load_project(args, root)
    if isinstance(project, int):
        return project
    plan = None
    if args.plan:
        hasher = hasher_for(root)
        try:
            plan = _decide(args, root, hasher, project)
        finally:
            hasher.close()
            hasher.cache.save()
        if isinstance(plan, int):
            return plan
    sys.stdout.write(render(project.pipeline, args.format, plan))
    return EXIT_OK


def cmd_import_dvc(args: argparse.Namespace) -> int:
    from .errors import SpecError
    from .importdvc import convert, to_yaml
    from .validate import validate_project

    root = Path(args.directory)
    target = root / DEFAULT_PIPELINE
    if target.exists() and not args.force:
        print(f"reftool: {target} exists; not overwriting it (--force to)", file=sys.stderr)
        return EXIT_INVALID
    try:
        result = convert(root)
    except SpecError as e:
        _print_problems(e.diagnostics)
        return EXIT_INVALID
    from .lockfile import atomic_write_text
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
    except BrokenPipeError:  # `reftool ... | head`: the reader has all it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
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
