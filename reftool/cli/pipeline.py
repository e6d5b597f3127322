"""`reftool plan`, `run`, `push` and `pull`: SPEC [tool.plan], [tool.run]."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..files.safe_io import refuse_links
from ..files.spec import (
    DEFAULT_PIPELINE,
    EXIT_BUSY,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_PENDING,
    EXIT_USAGE,
)
from .common import ConfigError, decide, load_project, lock_name, remote_of, tool_config
from .experiments import record_experiment


def add_parsers(sub: Any) -> None:
    """plan, run, push, pull"""
    _add_plan(sub)
    _add_run(sub)
    _add_remote_verbs(sub)


def _add_plan(sub: Any) -> None:
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


def _add_run(sub: Any) -> None:
    r = sub.add_parser("run", help="run the stale stages, and only those",
                       description="Run the stages the plan names, in order, recording each "
                       "in the lock as it completes (SPEC section 11).")
    r.add_argument("stages", nargs="*", metavar="STAGE",
                   help="run only these stages and what they need")
    r.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                   help="run up to N independent stages at once (default: 1; with the Dask "
                   "executor, the cluster's worker threads)")
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


def _add_remote_verbs(sub: Any) -> None:
    for verb, text in (("push", "copy the local cache of outputs to the remote"),
                       ("pull", "copy the remote cache of outputs here")):
        rm = sub.add_parser(verb, help=text, description=text.capitalize() + ": objects "
                            "verified by digest, never a partial object visible.")
        rm.add_argument("--remote", metavar="URL",
                        help="a folder or s3://bucket/prefix (default: $REFTOOL_REMOTE, or "
                        "[cache] remote in .reftool/config.toml or reftool.toml)")
        rm.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                        help="transfers at once (default: 4 per core, at most 16)")
        rm.set_defaults(handler=cmd_push if verb == "push" else cmd_pull)
    cache = sub.add_parser("cache", help="check and clean the cache of outputs",
                           description="Check and clean the local cache (and the remote).")
    verbs = cache.add_subparsers(dest="cache_verb", metavar="verify|gc", required=True)
    v = verbs.add_parser("verify", help="check every cached object against its digest")
    v.add_argument("--remote", metavar="URL", nargs="?", const="",
                   help="check the remote's objects too (downloads them all)")
    v.add_argument("--repair", action="store_true",
                   help="remove corrupt local objects; replace corrupt remote ones from here")
    v.set_defaults(handler=cmd_cache_verify)
    g = verbs.add_parser("gc", help="remove cached objects no run entry needs")
    g.add_argument("--older-than", type=float, metavar="DAYS",
                   help="also drop run entries older than DAYS, except those of the lock's "
                   "stages (default: keep every run entry)")
    g.add_argument("--dry-run", action="store_true", help="say what would go; remove nothing")
    g.add_argument("-f", "--file", default=DEFAULT_PIPELINE, metavar="PIPELINE")
    g.set_defaults(handler=cmd_cache_gc, stages=[], force=False)


def cmd_plan(args: argparse.Namespace) -> int:
    argv = getattr(args, "argv", None)
    recorder = _plan_recorder(argv)
    if recorder is None:
        return _plan(args, None)[0]
    watch = _Watched(sys.stderr)
    sys.stderr = watch
    try:
        code, text = _plan(args, recorder)
    finally:
        sys.stderr = watch.inner
    if code == EXIT_OK and text is not None and not watch.written:
        recorder.remember(argv, args.start_dir, text, code)
    return code


def _plan(args: argparse.Namespace, recorder: Any) -> tuple[int, str | None]:
    """The plan, printed; its exit code, and its text when nothing is to run (the answer a
    recorder may remember)."""
    from ..pipeline.hashing import Progress, hasher_for
    from ..pipeline.render import render_plan_json, render_plan_text

    root = Path(".")
    progress = Progress(enabled=not (args.quiet or args.json))
    hasher = hasher_for(root, use_cache=not args.no_hash_cache, progress=progress)
    try:
        if recorder is not None:
            recorder.__enter__()
        hasher.prefetch()  # large directories are walked while the files are validated
        plan = decide(args, root, hasher)
        if not isinstance(plan, int) and (root / "dvc.lock").exists() and \
                not (root / lock_name(args.file)).exists() and not args.quiet:
            print("reftool: dvc.lock is not read (its md5 digests are not this spec's); every "
                  "stage counts as never run until its first reftool run", file=sys.stderr)
    finally:
        if recorder is not None:
            recorder.__exit__()
        hasher.close()
        progress.done()
    if isinstance(plan, int):
        return plan, None
    text = render_plan_json(plan) if args.json else render_plan_text(plan, verbose=args.verbose)
    sys.stdout.write(text)
    if args.exit_code and plan.to_run:
        return EXIT_PENDING, None
    return EXIT_OK, None if plan.to_run else text


class _Watched:
    """stderr, counting what is written to it: a plan that said anything there (progress, a
    warning) is not remembered, since a remembered answer replays stdout alone."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.written = 0

    def write(self, text: str) -> int:
        self.written += len(text)
        return int(self.inner.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _plan_recorder(argv: list[str] | None) -> Any:
    """The recorder of what this plan observes, when its answer may be remembered
    (reftool/planmemo.py): a command line the memo replays."""
    from .. import planmemo
    if argv is None or not planmemo.eligible(argv):
        return None
    return planmemo.Recorder(os.getcwd())


def cmd_run(args: argparse.Namespace) -> int:
    """[tool.run]"""
    from ..pipeline.hashing import Progress, hasher_for
    from ..pipeline.runlock import Busy, RunLock

    if args.jobs is not None and args.jobs < 1:
        print("reftool: -j needs a number of at least 1", file=sys.stderr)
        return EXIT_USAGE
    root = Path(".")
    if args.name and not args.no_record and not args.dry_run:
        from ..experiments.queue import taken
        if taken(root, [args.name]):  # [experiments.names]
            print(f"reftool: an experiment is already named {args.name!r}; names are unique "
                  "(reftool exp remove it, or choose another --name)", file=sys.stderr)
            return EXIT_USAGE
    try:
        remote = None if args.no_cache else remote_of(root, args.remote)
        kind, scheduler = _executor_settings(root, args)
    except ValueError as e:
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_INVALID if isinstance(e, ConfigError) else EXIT_USAGE
    executor = _executor(kind, scheduler, args.dry_run)
    if isinstance(executor, int):
        return executor
    run_lock = RunLock(root)
    if not args.dry_run:
        try:
            run_lock.acquire(wait=not args.no_wait, say=_say)
        except Busy as e:
            _say(f"another run ({e.holder}) is running in this project; not waiting "
                 "(--no-wait)")
            return EXIT_BUSY
    progress = Progress(enabled=not args.quiet)
    hasher = hasher_for(root, progress=progress)
    try:
        return _run_locked(args, root, hasher, progress, remote, executor)
    finally:
        hasher.close()
        hasher.cache.save()
        run_lock.release()
        if executor is not None:
            executor.close()


def _say(text: str) -> None:
    print(f"reftool: {text}", file=sys.stderr, flush=True)


def _executor(kind: str, scheduler: str | None, dry_run: bool) -> Any:
    """The Dask executor, None for local runs, or an exit code when the cluster is not there."""
    if kind != "dask" or dry_run:
        return None
    from ..pipeline.dask_executor import ClusterError, DaskExecutor
    try:
        return DaskExecutor(str(scheduler))
    except ClusterError as e:
        print(f"reftool: {e}; nothing was run, the lock is as it was", file=sys.stderr)
        return EXIT_INVALID


def _run_locked(args: argparse.Namespace, root: Path, hasher: Any, progress: Any,
                remote: Any, executor: Any) -> int:
    """Load, decide and execute, holding the project's run lock."""
    from ..pipeline.execute import Options, Runner
    from ..pipeline.lockfile import Journal
    from ..pipeline.render import render_plan_text
    from ..pipeline.store import Store
    from ..pipeline.workspace import CachingWorkspace

    project = load_project(args, root)
    if isinstance(project, int):
        return project
    lock_path = root / lock_name(args.file)
    for owned in (lock_path, root / ".reftool", root / "experiments"):
        refuse_links(root, owned)  # [security.symlinks]: refused before any stage runs
    if project.replayed and not args.dry_run:
        _settle_journal(root, lock_path, project)
    elif not args.dry_run:
        _hide_secrets(lock_path, project)
    plan = decide(args, root, hasher, project)
    progress.done()
    progress.enabled = False  # from here on, each stage says what it does
    if isinstance(plan, int):
        return plan
    if args.dry_run or not plan.to_run:
        sys.stdout.write(render_plan_text(plan))
        return EXIT_OK
    from ..pipeline.plan import missing_dep_diagnostics
    from .common import print_problems
    print_problems(missing_dep_diagnostics(plan, args.file))  # [pipeline.deps-exist]
    jobs = _jobs(args, root, executor, plan, project.pipeline)
    if isinstance(jobs, int) and jobs < 0:
        return EXIT_INVALID
    started = time.monotonic()
    journal = Journal(root, lock_path)
    journal.start()
    runner = Runner(root=root, pipeline=project.pipeline, lock=project.lock,
                    remote=remote, executor=executor, pipeline_file=args.file,
                    workspace=CachingWorkspace(root, hasher, Store(root),
                                               params=project.params,
                                               pipeline_version=project.pipeline.version),
                    journal=journal, store=None if args.no_cache else Store(root),
                    options=Options(jobs=jobs, keep_going=args.keep_going,
                                    use_cache=not args.no_cache, quiet=args.quiet),
                    out=sys.stdout, err=sys.stderr)
    summary = runner.run(plan)
    _remember_lock(project, lock_path, journal.finish(runner.lock()))
    print(summary.line(time.monotonic() - started), flush=True)
    if not (summary.failed or summary.interrupted or args.no_record) and (
            summary.count("ran") or summary.count("restored")):
        record_experiment(root, args, project.pipeline, _run_facts(
            time.monotonic() - started, summary, project.pipeline))
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_INVALID if summary.failed else EXIT_OK


def _run_facts(duration: float, summary: Any, pipeline: Any) -> Any:
    """[experiments.run-facts]: the run's duration and the commands of the stages it ran,
    in the order they finished (restored and skipped stages ran no command)."""
    from ..experiments.records import RunFacts
    return RunFacts(duration=duration, commands=tuple(
        (o.name, tuple(pipeline.stages[o.name].cmd)) for o in summary.outcomes
        if o.status == "ran" and o.name in pipeline.stages))


def _jobs(args: argparse.Namespace, root: Path, executor: Any, plan: Any, pipeline: Any) -> int:
    """How many stages run at once; with the Dask executor, after checking that the cluster
    can run the stages to run ([tool.dask]); -1 when it cannot (said on stderr)."""
    if executor is None:
        return int(args.jobs or 1)
    from ..pipeline.dask_executor import ClusterError
    stages = pipeline.stages
    needs = {d.name: stages[d.name].resources for d in plan.to_run
             if d.action not in ("restore", "blocked")}  # blocked: never submitted
    try:
        executor.check(root, needs)
        return int(args.jobs or max(1, executor.threads()))
    except ClusterError as e:
        print(f"reftool: {e}\nnothing was run, the lock is as it was", file=sys.stderr)
        return -1
    except Exception as e:  # noqa: BLE001 - the scheduler went away while being asked
        print(f"reftool: the Dask scheduler did not answer: {type(e).__name__}: {e}; "
              "nothing was run, the lock is as it was", file=sys.stderr)
        return -1


def _hide_secrets(lock_path: Path, project: Any) -> None:
    """[security.secrets]: a lock holding the value of a variable recorded by digest is
    rewritten with its digest by every run, even one with nothing to run."""
    from ..pipeline.lockfile import for_pipeline, write_lock

    if project.lock is None:
        return
    hidden = for_pipeline(project.lock, project.pipeline)
    if any(hidden.stages[n].env != e.env for n, e in project.lock.stages.items()
           if n in hidden.stages):
        _remember_lock(project, lock_path, write_lock(lock_path, hidden))
        _say("the lock held the value of a variable recorded by its digest; it now holds "
             "the digest ([security.secrets])")


def _remember_lock(project: Any, lock_path: Path, text: str) -> None:
    """The lock just written goes into the document cache, parsed and known valid, so that
    the next `plan` or `run` does not read and check it again (it replaces the old lock's
    entry there)."""
    if project.cache is not None:
        project.cache.remember_written(text.encode("utf-8"), "json", "lock",
                                       os.path.normpath(lock_path))
        project.cache.save()


def _settle_journal(root: Path, lock_path: Path, project: Any) -> None:
    """Make an unfinished run's journal the lock's ([exec.record])."""
    from ..pipeline.lockfile import for_pipeline, write_lock

    if project.recovered:
        _say(f"recovered {project.recovered} stage(s) recorded by a run that did not finish")
    _remember_lock(project, lock_path,
                   write_lock(lock_path, for_pipeline(project.lock, project.pipeline)))
    refuse_links(root, root / ".reftool")
    (root / ".reftool" / "lock-journal.jsonl").unlink(missing_ok=True)


def _executor_settings(root: Path, args: argparse.Namespace) -> tuple[str, str | None]:
    """(kind, scheduler) from the command line, else [executor] in reftool.toml."""
    config = tool_config(root, "executor")
    kind = args.executor or config.get("kind", "local")
    scheduler = args.scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or \
        config.get("scheduler")
    if kind not in ("local", "dask"):
        raise ValueError(f"unknown executor {kind!r}: local or dask")
    if kind == "dask" and not scheduler:
        raise ValueError("the Dask executor needs a scheduler: --scheduler tcp://HOST:PORT")
    return kind, scheduler


def _with_remote(args: argparse.Namespace, verb: str, action: Any) -> int:
    """Run `action(remote, store)` for push or pull, turning the remote's failures into a
    message; any other exception is a bug and reaches the internal-error handler."""
    from ..pipeline.store import Store, remote_errors
    try:
        remote = remote_of(Path("."), args.remote, getattr(args, "jobs", None))
    except ValueError as e:
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_INVALID if isinstance(e, ConfigError) else EXIT_USAGE
    if remote is None:
        print("reftool: no remote: give --remote, set REFTOOL_REMOTE, or [cache] remote "
              "in reftool.toml", file=sys.stderr)
        return EXIT_USAGE
    try:
        print(action(remote, Store(Path("."))))
    except remote_errors() as e:
        print(f"reftool: {verb} failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def cmd_push(args: argparse.Namespace) -> int:
    def push(remote: Any, store: Any) -> str:
        objects, runs = remote.push(store)
        return f"pushed {objects} object(s) and {runs} run(s) to {remote.url}"
    return _with_remote(args, "push", push)


def cmd_cache_verify(args: argparse.Namespace) -> int:
    """`reftool cache verify`: every local object (and with --remote the remote's) checked."""
    from ..pipeline.store import Store
    store = Store(Path("."))
    bad = store.verify(repair=args.repair)
    for hexdigest in bad:
        print(f"local object {hexdigest} is corrupt" + (" (removed)" if args.repair else ""))
    print(f"checked {len(store.objects()) + (len(bad) if args.repair else 0)} local object(s): "
          f"{len(bad)} corrupt")
    code = EXIT_INVALID if bad else EXIT_OK
    if args.remote is not None:
        corrupt: list[str] = []

        def verify(remote: Any, store: Any) -> str:
            found = remote.verify(store, repair=args.repair)
            corrupt.extend(found)
            for rel in found:
                print(f"remote object {rel} is corrupt" + (
                    " (replaced from the local cache where it holds it)" if args.repair else ""))
            return f"checked the objects of {remote.url}: {len(found)} corrupt"
        found_before = code
        args.remote = args.remote or None
        code = _with_remote(args, "verify", verify)
        code = max(code, found_before, EXIT_INVALID if corrupt else EXIT_OK)
    return code


def cmd_cache_gc(args: argparse.Namespace) -> int:
    """`reftool cache gc`: what no kept run entry needs goes."""
    from ..pipeline.store import Store
    project = load_project(args, Path(".")) if args.older_than is not None else None
    if isinstance(project, int):
        return project
    keep: set[str] = set()
    if project is not None and project.lock is not None:
        keep = _lock_signatures(project)
    entries, objects, size = Store(Path(".")).gc(keep, older_than_days=args.older_than,
                                                 dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {entries} run entr{'y' if entries == 1 else 'ies'} and {objects} "
          f"object(s), {size} bytes")
    return EXIT_OK


def _lock_signatures(project: Any) -> set[str]:
    """The input signatures of the lock's stages, as their entries record them."""
    from ..pipeline.plan import input_signature
    out = set()
    for name, entry in project.lock.stages.items():
        stage = project.pipeline.stages.get(name)
        if stage is not None:
            out.add(input_signature(stage, entry))
    return out


def _remote_present(remote: Any) -> None:
    """A remote that is not there is an error, not an empty remote (raises FileNotFoundError,
    which the caller reports as the remote's failure)."""
    present = remote.fs.exists(remote.base) if remote.fs is not None else remote.folder.is_dir()
    if not present:
        raise FileNotFoundError(f"{remote.url} does not exist or cannot be reached")


def cmd_pull(args: argparse.Namespace) -> int:
    rejected: list[str] = []

    def pull(remote: Any, store: Any) -> str:
        _remote_present(remote)
        count = remote.pull_checked(store, rejected.append)
        if remote.corrupt_found:  # named on stderr as they were found
            rejected.append(f"{remote.corrupt_found} corrupt object(s) on the remote were not "
                            "used; reftool push from a cache that holds them replaces them")
        return f"pulled {count} run(s) from {remote.url}; reftool run restores their outputs"
    code = _with_remote(args, "pull", pull)
    for message in rejected:  # [security.paths]: named, not used
        print(f"reftool: {message}", file=sys.stderr)
    return EXIT_INVALID if rejected and code == EXIT_OK else code
