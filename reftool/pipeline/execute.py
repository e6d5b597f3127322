"""Running a plan: SPEC section 11. The only module, with the CLI, that changes the world.

`Runner.run` executes the stages of the plan that `plan.decide` made, in its order, up to
`jobs` at a time. For each stage: its non-persistent outputs are removed; its outputs are
restored from the cache when its input signature is there, or its command is run through
`/bin/sh -c` in its working directory; every declared output must then exist; outputs are
hashed and the lock entry is appended to the journal and flushed to stable storage before any
stage that depends on it starts ([exec.record]). A failed or interrupted stage is not
recorded, and its dependents do not run ([exec.failure]).

The run's own thread starts the commands and reads their output (a selector over their pipes,
and over pidfds that say when a process ended). Once a stage's commands succeeded, its outputs
exist and its deps did not change, the next stages that do not depend on it start, and its
outputs are hashed and recorded while their commands run: the tool's work and the commands
use two cores.

A stage that the plan marked *downstream* is decided again when its upstream stages are done:
if their outputs came out byte-identical, it is up to date and skipped ([stale.early-cutoff]).
"""

from __future__ import annotations

import collections
import fcntl
import os
import queue
import selectors
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, Literal

from ..files import graph
from ..files.errors import SpecError
from ..files.values import canonical_equal
from .hashing import HashError
from .lockfile import Journal, for_pipeline
from ..files.model import Lock, LockEntry, Pipeline, Stage
from .plan import NotRecordable, Plan, cacheable, input_signature, inputs_of, record
from .plan import stage_reasons
from ..files.safe_io import UnsafePath, is_inside, open_folder, open_for_writing, open_in_folder
from ..files.safe_io import to_devnull
from .store import CorruptCache, MalformedEntry, Remote, Store, remove_output
from .workspace import Workspace

if TYPE_CHECKING:
    from ..files.ignore import Rules

# missing: not run because a source dep of it, or of a stage it waits on, is missing
# ([pipeline.deps-exist]); known before anything runs, so it stops nothing else
Status = Literal["ran", "restored", "skipped", "failed", "blocked", "missing", "interrupted"]
TAIL_LINES = 20


@dataclass
class Options:
    jobs: int = 1
    keep_going: bool = False
    use_cache: bool = True
    quiet: bool = False  # stage output to per-stage logs instead of the terminal


@dataclass
class Outcome:
    name: str
    status: Status
    seconds: float = 0.0
    message: str = ""


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)
    up_to_date: int = 0
    interrupted: bool = False

    def count(self, status: Status) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> bool:
        return any(o.status in ("failed", "blocked", "missing") for o in self.outcomes)

    def line(self, seconds: float) -> str:
        parts = [f"ran {self.count('ran')}", f"restored from cache {self.count('restored')}",
                 f"skipped by early cutoff {self.count('skipped')}",
                 f"failed {self.count('failed')}"]
        if self.count("blocked"):
            parts.append(f"not run after a failure {self.count('blocked')}")
        if self.count("missing"):
            parts.append(f"not run for a missing dep {self.count('missing')}")
        if self.interrupted:
            parts.append(f"interrupted {self.count('interrupted')}")
        parts.append(f"up to date {self.up_to_date}")
        return ", ".join(parts) + f" ({seconds:.1f} s)"


class _Printer:
    """Serializes what stages print: one line at a time, each with its stage's prefix."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.lock = threading.Lock()

    def say(self, text: str) -> None:
        with self.lock:
            try:
                self.out.write(text + "\n")
                self.out.flush()
            except BrokenPipeError:  # `reftool run | head`: the reader left, the run goes on
                to_devnull(self.out)  # every stage still runs and is recorded



@dataclass
class _Running:
    stage: Stage
    process: subprocess.Popen[bytes] | None = None
    started: float = field(default_factory=time.monotonic)
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(
        maxlen=TAIL_LINES))
    inputs: LockEntry | None = None
    signature: str | None = None  # where its outputs are cached, when they are
    # a stage run here ([exec.shell]), by the run's own thread: its commands not yet started,
    # its log (with -q), the end of its output not yet a whole line, and whether its output
    # pipe is still open
    commands: collections.deque[str] = field(default_factory=collections.deque)
    log: IO[str] | None = None
    log_error: str = ""
    partial: bytes = b""
    reading: bool = False
    pidfd: int | None = None


PIPE_BYTES = 1 << 20


def _widen(fd: int) -> None:
    """Let a command write 1 MiB of output before it waits for the tool to read it (Linux;
    the default is 64 KiB), as it may while the tool hashes another stage's outputs."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (AttributeError, OSError):
        pass  # elsewhere, or over the user's pipe quota: the default size


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when process `pid` ends (Linux 5.3 and later)."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


class _Threads:
    """Daemon threads that wait on stages run on a cluster ([tool.dask]), each reused once
    its stage is done: as many as ran at once (issue 18: starting a thread per stage was a
    tenth of a trivial stage's cost). Stages run here need none (`Runner._launch`)."""

    def __init__(self) -> None:
        self.tasks: queue.SimpleQueue[tuple[Callable[[Any], None], Any]] = queue.SimpleQueue()
        self.idle = 0
        self.lock = threading.Lock()

    def submit(self, work: Callable[[Any], None], arg: Any) -> None:
        self.tasks.put((work, arg))
        with self.lock:
            if self.idle:
                self.idle -= 1  # a waiting thread takes it
                return
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            work, arg = self.tasks.get()
            try:
                work(arg)
            finally:
                with self.lock:
                    self.idle += 1


def _changed(before: dict[str, Any], now: Any) -> list[str]:
    """The paths whose state in `before` differs from `now`'s (paths not in `before` are
    not compared)."""
    return [p for p, state in before.items() if p in now and (state is None or (
        now[p].digest, now[p].size, now[p].files) != (state.digest, state.size, state.files))]


def _blocked_by(decision: Any) -> str:
    missing = [r.path for r in decision.reasons if r.code == "dep_missing"]
    if missing:
        return f"not run: its dep {missing[0]!r} is missing and no stage produces it"
    return "not run: it waits on a stage that cannot run"


def _missing_input(stage: Stage, workspace: Workspace) -> str:
    """What `inputs_of` found missing, in words."""
    for d in stage.deps:
        if workspace.path_state(d.path, d.exclude) is None:
            return f"its dep {d.path!r} does not exist"
    return "a params key it reads is missing"


class _Progress:
    """Where a run stands: the stages still to start, and how those that ended did."""

    def __init__(self, plan: Plan, deps: dict[str, set[str]]) -> None:
        self.summary = Summary(up_to_date=len(plan.up_to_date))
        self.decisions = {d.name: d for d in plan.to_run}
        self.waits_on = {n: {u for u in deps[n] if u in self.decisions} for n in self.decisions}
        self.todo = [d.name for d in plan.to_run]
        self.finished: dict[str, Status] = {}
        self.stop = False

    def done(self, outcome: Outcome, keep_going: bool) -> None:
        self.finished[outcome.name] = outcome.status
        self.summary.outcomes.append(outcome)
        if outcome.status == "failed" and not keep_going:
            self.stop = True  # [exec.failure]: nothing more starts


class Runner:
    def __init__(self, *, root: Path, pipeline: Pipeline, lock: Lock | None,
                 workspace: Workspace, journal: Journal, store: Store | None, options: Options,
                 out: IO[str], err: IO[str], remote: Remote | None = None,
                 executor: Any = None, pipeline_file: str = "pipeline.yaml") -> None:
        self.root = root
        self.pipeline = pipeline
        self.entries: dict[str, LockEntry] = dict(lock.stages) if lock else {}
        self.workspace = workspace
        self.journal = journal
        self.store = store
        self.remote = remote
        self.executor = executor  # None: stages run here; else a DaskExecutor
        self.options = options
        self.printer = _Printer(out)
        self.err = err
        self.events: queue.Queue[tuple[str, int | None, str]] = queue.Queue()
        self.running: dict[str, _Running] = {}
        self.interrupts = 0
        self.index = graph.output_index(pipeline)
        self.reserved = graph.reserved_of(pipeline, pipeline_file)
        self.rejected: set[str] = set()  # malformed cache entries already reported
        self.deps = graph.dependencies(pipeline, self.index)
        self.threads = _Threads()  # the threads that wait on the cluster's stages
        self._selector_: selectors.BaseSelector | None = None  # the output pipes of the rest
        self._environment: dict[bytes, bytes] | None = None
        self._logs_fd: int | None = None
        self._logs_lock = threading.Lock()

    # ------------------------------------------------------------------------------ the loop

    def run(self, plan: Plan) -> Summary:
        state = _Progress(plan, self.deps)
        previous = self._install_signals()
        try:
            while state.todo or self.running:
                if not state.stop and not self.interrupts:
                    self._start_ready(state)
                if not self.running:
                    if state.stop or self.interrupts or not state.todo:
                        break
                    continue
                event = self._next_event()
                if event is None:
                    continue
                name, code, error = event
                running = self.running.pop(name)
                outcome = self._ended(running, code, error)
                if outcome is None:
                    # It succeeded ([exec.failure] has nothing to stop): the next stages in
                    # the plan's order that do not depend on it start now, and its outputs are
                    # hashed and recorded while their commands run (issue 18). Its dependents
                    # wait for its record ([exec.record]).
                    if not state.stop and not self.interrupts:
                        self._start_ready(state, ending=name)
                    outcome = self._finish(running)
                state.done(outcome, self.options.keep_going)
        finally:
            self._restore_signals(previous)
        for name in state.todo:
            if name not in state.finished:
                state.summary.outcomes.append(Outcome(
                    name, "interrupted" if self.interrupts else "blocked", 0.0, "not started"))
        state.summary.interrupted = bool(self.interrupts)
        if not self.running:
            self.close()
        return state.summary

    def _start_ready(self, state: _Progress, ending: str | None = None) -> None:
        """Start the stages whose upstream stages are done, in the plan's order, while there is
        room. `ending`: a stage whose commands succeeded but which is not yet recorded; the
        stages are started in the order they would be once it is, up to the first that waits
        on it."""
        for name in list(state.todo):
            if state.stop or len(self.running) >= max(1, self.options.jobs):
                return
            ups = state.waits_on[name]
            early = self._not_started(state.decisions[name], ups, state.finished)
            if early is not None:
                state.todo.remove(name)
                state.done(early, self.options.keep_going)
                continue
            if not all(u in state.finished for u in ups):
                if ending in ups and all(u in state.finished or u == ending for u in ups):
                    return  # its turn comes next, once `ending` is recorded
                continue
            state.todo.remove(name)
            if not self.journal.unsynced.isdisjoint(self.deps[name]):
                self.journal.sync()  # [exec.record]: durable before it starts
            decision = state.decisions[name]
            outcome = self._start(name, decision.downstream, "forced" in decision.codes)
            if outcome is not None:
                state.done(outcome, self.options.keep_going)

    def _not_started(self, decision: Any, ups: set[str],
                     finished: dict[str, Status]) -> Outcome | None:
        """The outcome of a stage that will not start: a source dep of it (or of a stage it
        waits on) is missing, known from the plan ([pipeline.deps-exist]), or a stage it waits
        on failed ([exec.failure])."""
        if decision.action == "blocked":
            self.printer.say(f"{decision.name}: {_blocked_by(decision)}")
            return Outcome(decision.name, "missing", 0.0, _blocked_by(decision))
        if any(finished.get(u) in ("failed", "blocked") for u in ups):
            return Outcome(decision.name, "blocked", 0.0, "an upstream stage failed")
        return None

    def lock(self) -> Lock:
        """The lock with everything recorded, pruned to the pipeline's stages."""
        return for_pipeline(Lock(version="1.0", stages=self.entries), self.pipeline)

    # ------------------------------------------------------------------------------ a stage

    def _start(self, name: str, downstream: bool, forced: bool) -> Outcome | None:
        """Start a stage; an Outcome when it finished at once (skipped, restored, failed)."""
        stage = self.pipeline.stages[name]
        started = time.monotonic()
        for o in stage.outputs:  # what the stage writes is not known until it has run
            self.workspace.hasher.forget(o.path)
        try:
            before = self._refresh(stage)  # [security.deps-during-run]: as they are now
            if downstream and not stage_reasons(stage, self.entries.get(name), self.workspace):
                self.printer.say(f"{name}: skipped, its inputs came out unchanged "
                                 "(early cutoff)")
                return Outcome(name, "skipped", time.monotonic() - started)
            inputs = inputs_of(stage, self.workspace)
        except (HashError, OSError, SpecError) as e:
            return self._failed(name, started, f"cannot read its inputs: {e}")
        if inputs is None:
            return self._failed(name, started, _missing_input(stage, self.workspace))
        for path in _changed(before, inputs.deps):
            self.printer.say(f"{name}: its dep {path!r} changed after the plan; it runs, "
                             "and is recorded, with the dep as it is now")
        if name in self.entries:  # from here on, the old entry no longer holds
            self.journal.append(name, None)
            del self.entries[name]
        try:
            for o in stage.outputs:  # [exec.outputs-before], never a reserved path
                if not o.persist:
                    remove_output(self.root, o.path, reserved=self.reserved,  # its real
                                  real_root=self.workspace.hasher.real_root)  # path, found once
        except UnsafePath as e:
            return self._failed(name, started, f"refused: {e}")
        signature = self._signature(stage, inputs)
        restored = None if forced or signature is None else self._restore(
            stage, inputs, signature, started)
        if restored is not None:
            return restored
        for o in stage.outputs:
            (self.root / o.path.rstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        wdir = self.root / stage.wdir
        if stage.wdir == ".":
            pass  # the project's own folder
        elif not wdir.is_dir():
            return self._failed(name, started, f"working directory {stage.wdir!r} does not exist")
        elif not is_inside(self.root, wdir,  # [security.symlinks]
                           real_base=self.workspace.hasher.real_root):
            return self._failed(name, started, f"working directory {stage.wdir!r} resolves "
                                "outside the project")
        self.printer.say(f"{name}: running {' && '.join(stage.cmd)}")
        running = _Running(stage=stage, inputs=inputs, started=started, signature=signature)
        self.running[name] = running
        if self.executor is not None:
            self.threads.submit(self._execute_remotely, running)
        else:
            self._launch(running)
        return None

    def _signature(self, stage: Stage, inputs: LockEntry) -> str | None:
        """[digest.signature]: where the stage's outputs are found and kept in the cache; None
        when they are not ([exec.cache]). Computed once a stage run: what it depends on does
        not change while the stage runs (its inputs as they were when it started, its
        outputs' declarations, the project's ignore rules read once)."""
        if self.store is None or not self.options.use_cache or not cacheable(stage):
            return None
        return input_signature(stage, inputs, self.workspace)

    def _restore(self, stage: Stage, inputs: LockEntry, signature: str,
                 started: float) -> Outcome | None:
        """[exec.cache]: the outputs of these inputs, from the cache, verified."""
        assert self.store is not None
        try:
            outs = self._lookup(stage, signature)
        except MalformedEntry as e:  # [security.paths]: told once, never used
            if str(e) not in self.rejected:
                self.rejected.add(str(e))
                self.err.write(f"reftool: {stage.name}: {e}; running the stage instead\n")
            return None
        if outs is None or set(outs) != {o.path for o in stage.outputs}:
            return None
        try:
            self.store.restore(outs)
        except (CorruptCache, OSError) as e:
            self.err.write(f"reftool: {stage.name}: the cache entry is unusable ({e}); "
                           "running the stage instead\n")
            for o in stage.outputs:
                remove_output(self.root, o.path, reserved=self.reserved)
            return None
        for o in stage.outputs:
            self.workspace.hasher.forget(o.path)
        try:
            entry = record(stage, self.workspace)
        except (NotRecordable, HashError, OSError) as e:
            return self._failed(stage.name, started, f"restored outputs are not right: {e}")
        if {p: o.state for p, o in entry.outs.items()} != {p: o.state for p, o in outs.items()}:
            return self._failed(stage.name, started, "restored outputs differ from the cache")
        self._commit(stage.name, entry)
        self.printer.say(f"{stage.name}: restored from the cache")
        return Outcome(stage.name, "restored", time.monotonic() - started)

    def _lookup(self, stage: Stage, signature: str) -> dict[str, Any] | None:
        """The cached outputs of a signature, fetched from the remote when it has them."""
        assert self.store is not None
        try:
            outs = self.store.lookup(signature)
        except MalformedEntry as e:
            raise MalformedEntry(f"the local cache holds a malformed entry for this stage "
                                 f"({e}); it is not used") from None
        if outs is None and self.remote is not None and self.remote.fetch_run(signature,
                                                                              self.store):
            outs = self.store.lookup(signature)
            if outs is not None:
                self.printer.say(f"{stage.name}: outputs fetched from {self.remote.url}")
        return outs

    # ----------------------------------------------------------- commands run here

    # The run's own thread starts each command and reads its output (issue 18). With a thread
    # per running stage, a stage's Popen and its reads waited for the interpreter lock while
    # this thread hashed and recorded the stage before it: spawning took twice as long. Now
    # only the commands run beside the tool's work, on the other cores.

    def _launch(self, running: _Running) -> None:
        """Start a stage's first command ([exec.shell]). With -q, its log from an earlier run
        is emptied first; a log that is not there is made when the stage first writes a line
        (making a file per stage cost 0.2-1.3 ms here, most of a quiet stage's own time)."""
        stage = running.stage
        running.commands.extend(stage.cmd)
        if self.options.quiet:
            try:  # [security.symlinks]: never through a link
                running.log = open_in_folder(self._logs(), f"{stage.name}.log",
                                             f".reftool/logs/{stage.name}.log", create=False)
            except OSError as e:
                self._ended_here(running, 1, f"cannot write its log: {e}")
                return
        self._next_command(running)

    def _next_command(self, running: _Running) -> None:
        """Start the stage's next command, or report the stage's end when none is left."""
        stage = running.stage
        if self.interrupts:
            self._ended_here(running, None, "")
            return
        if not running.commands:
            self._ended_here(running, 0, "")
            return
        if self._environment is None:  # encoded once a run, not once a command (issue 18)
            self._environment = {os.fsencode(k): os.fsencode(v)
                                 for k, v in self.workspace.environ.items()}
            self._environment[b"REFTOOL_PROJECT"] = os.fsencode(self.root.resolve())
        env = dict(self._environment)
        env[b"REFTOOL_STAGE"] = os.fsencode(stage.name)
        try:
            running.process = subprocess.Popen(
                ["/bin/sh", "-c", running.commands.popleft()], cwd=self.root / stage.wdir,
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            self._ended_here(running, 127, f"cannot start the command: {e}")
            return
        assert running.process.stdout is not None
        _widen(running.process.stdout.fileno())
        running.reading = True
        self._selector().register(running.process.stdout.fileno(), selectors.EVENT_READ,
                                  (running, False))
        running.pidfd = _pidfd(running.process.pid)
        if running.pidfd is not None:  # readable once the process is gone
            self._selector().register(running.pidfd, selectors.EVENT_READ, (running, True))

    def _selector(self) -> selectors.BaseSelector:
        if self._selector_ is None:
            self._selector_ = selectors.DefaultSelector()
        return self._selector_

    def _ended_here(self, running: _Running, code: int | None, error: str) -> None:
        if running.log is not None:
            running.log.close()
            running.log = None
        if code == 0 and running.log_error:
            code, error = 1, running.log_error
        self.events.put((running.stage.name, code, error))

    def _next_event(self) -> tuple[str, int | None, str] | None:
        """The next stage whose commands ended, waiting at most 0.2 s (signals are handled
        meanwhile); None when none did."""
        if self.events.empty() and self.executor is None:
            self._pump(0.2)
        try:
            return self.events.get(timeout=None if self.executor is None else 0.2,
                                   block=self.executor is not None)
        except queue.Empty:
            return None

    def _pump(self, timeout: float) -> None:
        """Read what the running commands wrote, and go on with those that ended."""
        lingering = [r for r in self.running.values() if r.process is not None
                     and r.pidfd is None and not r.reading and r.process.returncode is None]
        if lingering:  # no pidfd here: a process whose output closed is polled
            timeout = min(timeout, 0.001)
        ready = self._selector().select(timeout) if self._selector_ is not None else []
        for key, _ in ready:
            running, exited = key.data
            if exited:
                self._selector().unregister(key.fd)
                os.close(key.fd)
                running.pidfd = None
                self._reap(running)
            else:
                self._read(running)
        for running in lingering:
            self._reap(running)

    def _read(self, running: _Running) -> None:
        """One read of a stage's output; its lines to its log or, prefixed, to stdout."""
        assert running.process is not None and running.process.stdout is not None
        fd = running.process.stdout.fileno()
        chunk = os.read(fd, 65536)
        lines = (running.partial + chunk).split(b"\n")
        running.partial = lines.pop() if chunk else b""
        if not chunk and lines == [b""]:
            lines = []
        for raw in lines:
            self._show(running, raw.decode("utf-8", "replace"))
        if not chunk:  # end of its output
            self._selector().unregister(fd)
            running.process.stdout.close()
            running.reading = False
            self._reap(running)

    def _show(self, running: _Running, line: str) -> None:
        running.tail.append(line)
        if not self.options.quiet:
            self.printer.say(f"[{running.stage.name}] {line}")
            return
        if running.log is None and not running.log_error:
            name = running.stage.name
            try:  # [security.symlinks]: never through a link
                running.log = open_in_folder(self._logs(), f"{name}.log",
                                             f".reftool/logs/{name}.log")
            except OSError as e:  # the stage fails when its commands end
                running.log_error = f"cannot write its log: {e}"
        if running.log is not None:
            running.log.write(line + "\n")

    def _reap(self, running: _Running) -> None:
        """When a command's output is closed and its process gone: the next command."""
        assert running.process is not None
        if running.reading or running.pidfd is not None:
            return
        code = running.process.poll()
        if code is None:
            return
        if code != 0:
            self._ended_here(running, code, "")
        else:
            self._next_command(running)

    def _logs(self) -> int:
        """.reftool/logs/, checked and opened once a run (issue 18: checking every folder of
        the path again for each stage's log was a tenth of a stage thread's time)."""
        with self._logs_lock:
            if self._logs_fd is None:
                self._logs_fd = open_folder(self.root / ".reftool" / "logs", base=self.root)
            return self._logs_fd

    def close(self) -> None:
        if self._selector_ is not None:
            self._selector_.close()
            self._selector_ = None
        if self._logs_fd is not None:
            os.close(self._logs_fd)
            self._logs_fd = None

    def _execute_remotely(self, running: _Running) -> None:
        """In a thread: the stage on the cluster ([tool.dask]); its output shown as it comes
        (unless --quiet), the whole of it in .reftool/logs/STAGE.log, written by the worker."""
        self.events.put((running.stage.name, *self._on_cluster(running)))

    def _on_cluster(self, running: _Running) -> tuple[int | None, str]:
        from .dask_executor import Task, directory_listing
        stage = running.stage
        assert running.inputs is not None
        root = self.root.resolve()
        log = root / ".reftool" / "logs" / f"{stage.name}.log"
        try:  # [security.symlinks]: the worker writes it, never through a link
            open_for_writing(log, base=self.root).close()
        except OSError as e:
            return 1, f"cannot write its log: {e}"
        task = Task(
            key=f"reftool-{stage.name}-{os.getpid()}-{time.monotonic_ns()}", stage=stage.name,
            commands=tuple(stage.cmd), cwd=str((self.root / stage.wdir).resolve()),
            env={name: self.workspace.environ.get(name) for name in running.inputs.env},
            reftool_env={"REFTOOL_STAGE": stage.name, "REFTOOL_PROJECT": str(root)},
            outputs=tuple(str(root / o.path.rstrip("/")) for o in stage.outputs
                          if not o.persist),
            deps=self._file_deps(running.inputs), claims=str(root / ".reftool" / "attempts"),
            log=str(log), dir_deps=self._dir_deps(stage, directory_listing))

        def show(lines: list[str]) -> None:
            for line in lines:
                running.tail.append(line)
                if not self.options.quiet:
                    self.printer.say(f"[{stage.name}] {line}")
        try:
            result = self.executor.run(task, stage.resources, show)
        except Exception as e:  # noqa: BLE001 - whatever the cluster raised, the stage failed
            if self.interrupts:
                return None, ""
            return 1, f"the cluster did not run it: {type(e).__name__}: {e}"
        if result.get("stale_deps"):
            shown = ", ".join(os.path.relpath(p, root) for p in result["stale_deps"])
            return 1, (f"worker {result.get('host')} sees other contents of {shown} than this "
                       "machine: every worker must see the project's files as they are here "
                       "(runtime/dep_changed); nothing was run")
        if not running.tail:  # nothing was streamed (events lost): the worker's last lines
            running.tail.extend(result["lines"])
        return int(result["code"]), ""

    def _file_deps(self, inputs: LockEntry) -> dict[str, tuple[int, int, str]]:
        """The file deps as this machine sees them: absolute path -> (size, mtime_ns, digest),
        for a worker to check before it runs the stage."""
        root = self.root.resolve()
        out = {}
        for path, state in inputs.deps.items():
            if path.endswith("/"):
                continue
            try:
                st = os.stat(root / path)
            except OSError:
                continue
            out[str(root / path)] = (st.st_size, st.st_mtime_ns, state.digest)
        return out

    def _dir_deps(self, stage: Stage, listing: Callable[[str, Rules | None], str]
                  ) -> dict[str, tuple[str, Rules | None]]:
        """[tool.dask]: the directory deps as this machine sees them (a stat walk under their
        rules), for a worker to compare with its own before it runs the stage."""
        root = self.root.resolve()
        out = {}
        for dep in stage.deps:
            if dep.path.endswith("/"):
                full = str(root / dep.path.rstrip("/"))
                rules = self.workspace.rules_of(dep.path, dep.exclude)
                out[full] = (listing(full, rules), rules)
        return out

    def _ended(self, running: _Running, code: int | None, error: str) -> Outcome | None:
        """The outcome of a stage whose commands ended, when it failed or was interrupted;
        None when they succeeded, every declared output exists and its deps and params are
        as it started with them ([security.deps-during-run])."""
        stage, name = running.stage, running.stage.name
        if code is None or (code != 0 and self.interrupts):
            return Outcome(name, "interrupted", time.monotonic() - running.started,
                           "interrupted; not recorded")
        if code != 0:
            return self._failed(name, running.started, error or (
                f"exit code {code}" if code > 0 else f"killed by signal {-code}"), running.tail,
                logged=not running.log_error)
        missing = [o.path for o in stage.outputs
                   if not os.path.lexists(self.root / o.path.rstrip("/"))]
        if missing:  # [exec.record]: every declared output must exist
            return self._failed(name, running.started, "declared output"
                                f"{'s' if len(missing) > 1 else ''} not created: "
                                + ", ".join(missing), running.tail)
        for o in stage.outputs:
            self.workspace.hasher.forget(o.path)
        assert running.inputs is not None
        changed = self._changed_while_running(stage, running.inputs)
        if changed:  # [security.deps-during-run]: outputs of inputs that no longer exist
            return self._failed(name, running.started, f"{changed} (runtime/dep_changed); "
                                "not recorded, outputs not cached: run it again", running.tail)
        return None

    def _finish(self, running: _Running) -> Outcome:
        """A stage whose commands succeeded, whose outputs exist and whose deps did not change
        while it ran: its outputs hashed, its entry recorded ([exec.record]) and its outputs
        cached ([exec.cache])."""
        stage, name = running.stage, running.stage.name
        assert running.inputs is not None
        try:
            entry = record(stage, self.workspace)
        except (NotRecordable, HashError, OSError) as e:
            return self._failed(name, running.started, f"cannot record it: {e}", running.tail)
        entry = LockEntry(cmd=entry.cmd, wdir=entry.wdir, deps=running.inputs.deps,
                          params=running.inputs.params, env=running.inputs.env, outs=entry.outs)
        self._commit(name, entry)
        if self.store is not None and running.signature is not None:
            try:
                self.store.save(running.signature,
                                {p: o for p, o in entry.outs.items()},
                                rules={o.path: self.workspace.rules_of(o.path, o.exclude)
                                       for o in stage.outputs})
            except (CorruptCache, OSError) as e:
                self.err.write(f"reftool: {name}: outputs not cached: {e}\n")
        seconds = time.monotonic() - running.started
        self.printer.say(f"{name}: done in {seconds:.1f} s")
        return Outcome(name, "ran", seconds)

    def _refresh(self, stage: Stage) -> dict[str, Any]:
        """Forget what is known of a stage's deps and params files; what was known before."""
        return self.workspace.refresh([d.path for d in stage.deps],
                                      [ref.file for ref in stage.params])

    def _changed_while_running(self, stage: Stage, inputs: LockEntry) -> str | None:
        """What of a stage's deps and params differs from what it started with, in words."""
        self._refresh(stage)
        try:
            now = inputs_of(stage, self.workspace)
        except (HashError, OSError, SpecError) as e:
            return f"its inputs became unreadable while it ran ({e})"
        if now is None:
            return _missing_input(stage, self.workspace) + " any more"
        for path in _changed(dict(inputs.deps), now.deps):
            return f"its dep {path!r} changed while it ran"
        for file in sorted(inputs.params):
            old, new = inputs.params[file], now.params.get(file, {})
            if old.keys() != new.keys() or not all(
                    canonical_equal(old[k], new[k]) for k in old):
                return f"its params file {file!r} changed while it ran"
        return None

    def _commit(self, name: str, entry: LockEntry) -> None:
        """[exec.record]: durable before anything that depends on it starts."""
        self.journal.append(name, entry)
        self.entries[name] = entry

    def _failed(self, name: str, started: float, message: str,
                tail: collections.deque[str] | None = None, *, logged: bool = True) -> Outcome:
        """A failed stage's outcome, said with the last lines of its output and, with -q,
        where the whole of it is (`logged`: its log could be written)."""
        self.printer.say(f"{name}: FAILED: {message}")
        if tail:
            shown = "\n".join(f"    {line}" for line in tail)
            self.printer.say(f"{name}: last {len(tail)} lines of its output:\n{shown}")
        if self.options.quiet and tail and logged:
            self.printer.say(f"{name}: full output in .reftool/logs/{name}.log")
        return Outcome(name, "failed", time.monotonic() - started, message)

    # ------------------------------------------------------------------------------ signals

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, self._on_signal)
        return previous

    def _restore_signals(self, previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        """First Ctrl-C or SIGTERM: stop the running stages' process groups and record no
        more. Second: kill them and leave at once (what was recorded stays in the journal)."""
        self.interrupts += 1
        if self.interrupts == 1:
            self.err.write(f"\nreftool: interrupted; stopping {len(self.running)} running "
                           "stage(s) (Ctrl-C again to stop at once)\n")
            self._signal_all(signal.SIGTERM)
            timer = threading.Timer(10.0, self._signal_all, args=(signal.SIGKILL,))
            timer.daemon = True  # never keeps the process alive after the run ended
            timer.start()
        else:
            self._signal_all(signal.SIGKILL)
            self.err.write("reftool: stopped\n")
            self.journal.close()
            os._exit(130)

    def _signal_all(self, sig: int) -> None:
        if self.executor is not None:
            self.executor.cancel_all()
        for running in list(self.running.values()):
            process = running.process
            if process is not None and process.poll() is None:
                try:
                    os.killpg(process.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass


__all__ = ["Options", "Outcome", "Runner", "Summary"]
