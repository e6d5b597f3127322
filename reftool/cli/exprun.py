"""`reftool exp run`, `exp queue`, `exp apply`, `exp branch`, `exp remove`: SPEC
[experiments.set], [experiments.queue], [experiments.isolated], [experiments.names]."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..files.spec import DEFAULT_PIPELINE, EXIT_BUSY, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK
from ..files.spec import EXIT_USAGE
from .common import lock_name


def add_exp_parsers(e: Any) -> None:
    """exp run, queue, apply, branch, remove"""
    r = e.add_parser("run", help="run experiments with params set here, leaving the "
                     "workspace's params as they are",
                     description="Run the pipeline with params set by -S, in a copy of the "
                     "project (outputs restored from the cache, not recomputed), and record "
                     "the experiment. Values are YAML 1.2; 'a=1,2 -S b=x,y' is a grid of 4.")
    r.add_argument("-S", "--set-param", dest="set", action="append", default=[],
                   metavar="[FILE:]KEY=VALUE[,VALUE...]",
                   help="e.g. params.yaml:/train/lr=0.1 or train.lr=0.01,0.1 (a grid axis)")
    r.add_argument("-n", "--name", help="name of the experiment (NAME-1, NAME-2... for a grid)")
    r.add_argument("--queue", action="store_true", help="add to the queue; run nothing")
    r.add_argument("--run-all", action="store_true", help="run every queued experiment")
    r.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="experiments at once (default: 1)")
    r.add_argument("--apply", action="store_true",
                   help="then set the experiment's params and outputs in the workspace")
    r.add_argument("-f", "--file", default=DEFAULT_PIPELINE, metavar="PIPELINE")
    r.set_defaults(handler=cmd_exp_run)

    q = e.add_parser("queue", help="list the queued experiments; 'queue remove' drops some")
    qs = q.add_subparsers(dest="queue_command", metavar="remove")
    qr = qs.add_parser("remove", help="drop queued experiments by id or name")
    qr.add_argument("refs", nargs="*", metavar="ID|NAME")
    qr.add_argument("--all", action="store_true", help="drop every queued experiment")
    qr.set_defaults(handler=cmd_queue_remove)
    q.set_defaults(handler=cmd_queue)

    a = e.add_parser("apply", help="set an experiment's params and outputs in the workspace",
                     description="Write the experiment's params into the params files and "
                     "restore its outputs from the cache (reftool run, recording nothing).")
    a.add_argument("ref", metavar="ID|NAME")
    a.add_argument("-f", "--file", default=DEFAULT_PIPELINE, metavar="PIPELINE")
    a.set_defaults(handler=cmd_exp_apply)

    b = e.add_parser("branch", help="a git branch: HEAD with an experiment's params, lock "
                     "and record committed")
    b.add_argument("ref", metavar="ID|NAME")
    b.add_argument("branch", metavar="BRANCH")
    b.add_argument("-f", "--file", default=DEFAULT_PIPELINE, metavar="PIPELINE")
    b.set_defaults(handler=cmd_exp_branch)

    d = e.add_parser("remove", help="delete experiment records by id or name")
    d.add_argument("refs", nargs="+", metavar="ID|NAME")
    d.set_defaults(handler=cmd_exp_remove)


def _err(text: str) -> None:
    print(f"reftool: {text}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ exp run

def _pipeline(root: Path, pipeline_file: str) -> Any:
    from ..experiments.records import read_pipeline, workspace_reader
    return read_pipeline(workspace_reader(root), "workspace", pipeline_file)


def _outputs(pipeline: Any) -> set[str]:
    return {o.path for s in pipeline.stages.values() for o in s.outputs}


def _params_files(pipeline: Any) -> list[str]:
    return sorted({ref.file for s in pipeline.stages.values() for ref in s.params})


def cmd_exp_run(args: argparse.Namespace) -> int:
    from ..experiments.queue import SetError, new_entries, read_entries, taken, write_entry
    root = Path(".")
    if args.jobs < 1:
        _err("-j needs a number of at least 1")
        return EXIT_USAGE
    if args.run_all and (args.set or args.queue or args.name or args.apply):
        _err("--run-all runs the queue as it is; it takes no -S, --name, --queue or --apply")
        return EXIT_USAGE
    pipeline = _pipeline(root, args.file)
    if pipeline is None:
        _err(f"no readable {args.file} here; fix it first (reftool validate)")
        return EXIT_INVALID
    if args.run_all:
        return _run_queue(root, args, pipeline)
    try:
        entries = new_entries(_grid(root, args.set, pipeline), args.name)
    except SetError as e:
        _err(str(e))
        return EXIT_USAGE
    duplicate = taken(root, [e.name for e in entries])
    if duplicate:  # [experiments.names]
        _err(f"an experiment is already named {duplicate[0]!r}; names are unique "
             "(reftool exp remove it, or choose another --name)")
        return EXIT_USAGE
    if args.apply and len(entries) != 1:
        _err("--apply takes one experiment, not a grid of " + str(len(entries)))
        return EXIT_USAGE
    if args.queue:
        for entry in entries:
            write_entry(root, entry)
            print(f"queued {entry.name or entry.id} ({entry.id}): {entry.settings_text()}")
        print(f"{len(entries)} experiment(s) queued, {len(read_entries(root))} in the queue "
              "(reftool exp run --run-all -j N)")
        return EXIT_OK
    code = _run_locked(root, args, pipeline, entries, queued=False)
    if code == EXIT_OK and args.apply:
        return _apply(root, entries[0].id, args.file)
    return code


def _grid(root: Path, settings: list[str], pipeline: Any) -> list[dict[str, dict[str, Any]]]:
    from ..experiments.isolated import current_params
    from ..experiments.queue import grid, parse_set
    files = current_params(root, _params_files(pipeline))
    return grid([parse_set(text, files) for text in settings])


def _run_queue(root: Path, args: argparse.Namespace, pipeline: Any) -> int:
    from ..experiments.queue import read_entries
    skipped: dict[str, str] = {}
    found = read_entries(root, skipped)
    entries = [e for e in found if e.status == "queued"]
    for why in skipped.values():
        _err(f"skipped, not a valid queue entry: {why}")
    if not entries:
        failed = len(found) - len(entries)
        print(f"no queued experiment to run; {failed} marked failed (reftool exp queue lists "
              "them, exp queue remove drops them)" if failed else
              "the queue is empty (reftool exp run --queue -S ... adds to it)")
        return EXIT_OK
    return _run_locked(root, args, pipeline, entries, queued=True)


@contextmanager
def _runner_lock(root: Path) -> Iterator[bool]:
    """One experiment runner per project at a time; the lock goes with the process, even
    killed by SIGKILL (an flock)."""
    import fcntl
    import os
    from ..files.safe_io import make_dirs, refuse_links
    make_dirs(root, root / ".reftool")
    path = root / ".reftool" / "exp-runner.lock"
    refuse_links(root, path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _run_locked(root: Path, args: argparse.Namespace, pipeline: Any, entries: list[Any],
                *, queued: bool) -> int:
    from ..experiments.isolated import clear_temp
    with _runner_lock(root) as held:
        if not held:
            _err("another 'reftool exp run' is running in this project; try again when it "
                 "is done")
            return EXIT_BUSY
        clear_temp(root)  # copies of a runner that was killed
        if queued:
            entries = _drop_done(root, entries)
        return _run_entries(root, entries, args.jobs, args.file, pipeline, queued=queued)


def _drop_done(root: Path, entries: list[Any]) -> list[Any]:
    """A queued entry whose record exists finished before its runner was killed."""
    from ..experiments.queue import remove_entry
    left = []
    for entry in entries:
        if (root / "experiments" / f"{entry.id}.json").is_file():
            remove_entry(root, entry.id)
        else:
            left.append(entry)
    return left


class _Children:
    """The `reftool run` processes of the experiments running now."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: dict[str, Any] = {}
        self.stopping = False

    def started(self, entry_id: str) -> Any:
        def add(child: Any) -> None:
            with self.lock:
                self.running[entry_id] = child
                if self.stopping:
                    child.terminate()
        return add

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            for child in self.running.values():
                if child.poll() is None:
                    child.terminate()


def _run_entries(root: Path, entries: list[Any], jobs: int, pipeline_file: str,
                 pipeline: Any, *, queued: bool) -> int:
    """[experiments.isolated]: N at a time; each record written once its run completed, its
    queue entry removed after that. Interrupted: the runs stop, finished records stay, the
    unfinished stay queued."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from ..experiments.isolated import run_entry
    children = _Children()
    outputs = _outputs(pipeline)
    print(f"running {len(entries)} experiment(s), {min(jobs, len(entries))} at a time",
          flush=True)
    pool = ThreadPoolExecutor(max_workers=jobs)
    futures = [pool.submit(run_entry, root, e, pipeline_file, lock_name(pipeline_file),
                           children.started(e.id), outputs) for e in entries]
    failed = 0
    try:
        for future in as_completed(futures):
            failed += not _finished(root, future.result(), queued=queued, stopping=False)
    except KeyboardInterrupt:
        children.stop()
        pool.shutdown(wait=True, cancel_futures=True)
        for future in futures:
            if future.done() and not future.cancelled() and future.exception() is None:
                _finished(root, future.result(), queued=queued, stopping=True)
        _err("interrupted: finished experiments are recorded" +
             ("; the others are still queued" if queued else ""))
        return EXIT_INTERRUPTED
    pool.shutdown(wait=True)
    print(f"{len(entries) - failed} experiment(s) recorded, {failed} failed"
          + (" (reftool exp show compares them)" if len(entries) > failed else ""))
    return EXIT_INVALID if failed else EXIT_OK


def _finished(root: Path, outcome: Any, *, queued: bool, stopping: bool) -> bool:
    from dataclasses import replace

    from ..experiments.queue import remove_entry, write_entry
    entry = outcome.entry
    label = entry.name or entry.id
    if outcome.ok:
        if queued:
            remove_entry(root, entry.id)  # after the record: a kill in between loses nothing
        print(f"recorded {label} in {outcome.record}: {entry.settings_text()}"
              + (f" ({outcome.message})" if outcome.message else ""), flush=True)
        return True
    if stopping:
        return False
    if queued:
        write_entry(root, replace(entry, status="failed"))
    _err(f"experiment {label} failed: {outcome.message}")
    return False


# ------------------------------------------------------------------------------ exp queue

def cmd_queue(args: argparse.Namespace) -> int:
    from ..experiments.queue import read_entries
    skipped: dict[str, str] = {}
    entries = read_entries(Path("."), skipped)
    for why in skipped.values():
        _err(f"skipped, not a valid queue entry: {why}")
    if not entries:
        print("the queue is empty")
        return EXIT_OK
    for e in entries:
        print(f"{e.id}  {e.name or '-'}  {e.status}  {e.settings_text()}")
    return EXIT_OK


def cmd_queue_remove(args: argparse.Namespace) -> int:
    from ..experiments.queue import pick, read_entries, remove_entry
    root = Path(".")
    entries = read_entries(root)
    if args.all == bool(args.refs):
        _err("name the queued experiments to drop, or --all")
        return EXIT_USAGE
    chosen = entries if args.all else []
    for ref, entry in pick(entries, args.refs):
        if entry is None:
            _err(f"no queued experiment {ref!r} (reftool exp queue lists them); "
                 "nothing was removed")
            return EXIT_USAGE
        chosen.append(entry)
    for entry in chosen:
        remove_entry(root, entry.id)
        print(f"removed {entry.name or entry.id} ({entry.id}) from the queue")
    return EXIT_OK


# ------------------------------------------------------------------------------ records

def _find_record(root: Path, ref: str) -> dict[str, Any] | str:
    """The record whose id or name is `ref`, or why there is none ([experiments.names])."""
    from ..experiments.records import records
    found = [r for r in records(root) if ref in (r.get("id"), r.get("name"))]
    if not found:
        return f"no experiment {ref!r} (reftool exp show lists them)"
    if len(found) > 1:
        ids = ", ".join(str(r["id"]) for r in found)
        return f"{len(found)} experiments are named {ref!r} ({ids}); name one by its id"
    return found[0]


def cmd_exp_remove(args: argparse.Namespace) -> int:
    from ..files.safe_io import refuse_links
    root = Path(".")
    chosen = []
    for ref in args.refs:
        record = _find_record(root, ref)
        if isinstance(record, str):
            _err(record + "; nothing was removed")
            return EXIT_USAGE
        chosen.append(record)
    for record in chosen:
        path = root / "experiments" / f"{record['id']}.json"
        refuse_links(root, path)
        path.unlink(missing_ok=True)
        print(f"removed experiment {record['name']} ({path})")
    return EXIT_OK


def cmd_exp_apply(args: argparse.Namespace) -> int:
    return _apply(Path("."), args.ref, args.file)


def _changed_params(root: Path, record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The record's params whose value in the workspace differs."""
    from ..experiments.isolated import current_params
    from ..files.values import canonical_equal, from_typed_tree, resolve_pointer
    params = record.get("params") or {}
    now = current_params(root, sorted(params))
    out: dict[str, dict[str, Any]] = {}
    for file, pointers in params.items():
        for pointer, tree in pointers.items():
            try:
                same = canonical_equal(resolve_pointer(now[file], pointer),
                                       from_typed_tree(tree))
            except (KeyError, TypeError, ValueError):
                same = False
            if not same:
                out.setdefault(file, {})[pointer] = tree
    return out


def _apply(root: Path, ref: str, pipeline_file: str) -> int:
    """Params into the workspace, then `run`: outputs restored from the cache."""
    import subprocess

    from ..experiments.isolated import set_params
    from ..experiments.queue import SetError
    record = _find_record(root, ref)
    if isinstance(record, str):
        _err(record)
        return EXIT_USAGE
    try:
        changed = set_params(root, _changed_params(root, record))
    except SetError as e:
        _err(str(e))
        return EXIT_INVALID
    print(f"applied {record['name']} ({record['id']}): "
          f"{', '.join(changed) if changed else 'params already as recorded'}", flush=True)
    sys.stdout.flush()
    return subprocess.run([sys.executable, "-m", "reftool", "-C", str(root), "run", "-f",
                           pipeline_file, "--no-record", "-q"]).returncode


def cmd_exp_branch(args: argparse.Namespace) -> int:
    """A branch from HEAD in a temporary git worktree: the experiment's params, the lock and
    outputs its run gives (restored from the cache), and its record, committed."""
    import shutil

    from ..experiments.records import git
    root = Path(".")
    record = _find_record(root, args.ref)
    if isinstance(record, str):
        _err(record)
        return EXIT_USAGE
    if not git(root, "rev-parse", "--verify", "--quiet", "HEAD"):
        _err("exp branch needs a git repository with a commit")
        return EXIT_USAGE
    if git(root, "rev-parse", "--verify", "--quiet", f"refs/heads/{args.branch}"):
        _err(f"a branch {args.branch!r} already exists")
        return EXIT_USAGE
    top = Path((git(root, "rev-parse", "--show-toplevel") or ".").strip())
    prefix = (git(root, "rev-parse", "--show-prefix") or "").strip()
    tree = top / ".git" / f"reftool-branch-{record['id']}"
    if git(root, "worktree", "add", "-q", "-b", args.branch, str(tree), "HEAD") is None:
        _err(f"git could not make the branch {args.branch!r} (git check-ref-format)")
        return EXIT_USAGE
    try:
        return _commit_experiment(root, tree / prefix, record, args)
    finally:
        git(root, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(tree, ignore_errors=True)


def _commit_experiment(root: Path, work: Path, record: dict[str, Any],
                       args: argparse.Namespace) -> int:
    import subprocess

    from ..experiments.isolated import set_params
    from ..experiments.queue import SetError
    from ..experiments.records import git
    from ..files.model import canonical_json
    try:
        set_params(work, _changed_params(work, record))
    except SetError as e:
        _err(str(e))
        return EXIT_INVALID
    cache = (root / ".reftool" / "cache").resolve()
    run = subprocess.run([sys.executable, "-m", "reftool", "-C", str(work), "run", "-q",
                          "--no-record", "-f", args.file, "--remote", str(cache)],
                         capture_output=True, text=True)
    if run.returncode != 0:
        _err(f"the run in the new branch failed (exit {run.returncode}); the branch "
             f"{args.branch!r} has the params only:\n{run.stderr.strip()}")
    (work / "experiments").mkdir(exist_ok=True)
    (work / "experiments" / f"{record['id']}.json").write_text(canonical_json(record))
    git(work, "add", "-u")
    git(work, "add", f"experiments/{record['id']}.json", lock_name(args.file))
    if git(work, "commit", "-q", "-m", f"reftool exp branch: {record['name']} "
           f"({record['id']})") is None:
        _err("git commit failed (is user.name set?)")
        return EXIT_INVALID
    print(f"branch {args.branch!r}: experiment {record['name']} committed on HEAD")
    return EXIT_OK if run.returncode == 0 else EXIT_INVALID
