"""Running stages on a Dask cluster: `reftool run --executor dask --scheduler tcp://HOST:PORT`.

Workers see the project through a shared file system, mounted at the same absolute path as on
the coordinating machine, and run each stage's commands there through `/bin/sh -c`; only the
coordinating `run` hashes and writes the lock, so every guarantee of SPEC section 11 holds
([tool.dask]). Before anything is submitted the cluster is probed: every worker must import
reftool and read a token written under the project's `.reftool/`, and every stage to run must
fit some worker's advertised resources, or nothing runs and the error names what is missing.

On a worker, each attempt of a stage runs under a small supervisor process that kills the
stage's whole process group when the worker dies (Linux `PR_SET_PDEATHSIG`, and a poll of the
parent process everywhere), and an attempt waits until an earlier attempt of the same stage has
ended before it removes the outputs: a retry never runs beside an orphan. A stage runs in its
worker's environment plus only the env variables it declares and `REFTOOL_*`. Its file deps are
checked against the coordinator's digests before its commands start, and its output is
streamed back as it comes (bounded), and written whole to `.reftool/logs/STAGE.log`.
Dask is an optional extra: `pip install reftool[dask]`.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import unicodedata
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..files.ignore import Rules

# on a worker: the supervisor of each running stage, by task key, so that it can be stopped
_GROUPS: dict[str, int] = {}
_LOCK = threading.Lock()

UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KiB": 2**10,
         "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
HEARTBEAT_S = 1.0  # an attempt's claim file is touched this often while it runs
STALE_CLAIM_S = 5.0  # a claim not touched for this long belongs to a dead attempt
STREAM_BYTES_PER_S = 256 * 1024  # at most this much stage output a second goes to the client
STREAM_EVERY_S = 0.2
TAIL_LINES = 200

# The supervisor: leader of the stage's process group. It runs the command and kills the whole
# group (itself included) when its parent, the worker, dies or when it is told to stop.
SUPERVISOR = r"""
import os, signal, subprocess, sys
parent = os.getppid()
def die(*_):
    os.killpg(0, signal.SIGKILL)
signal.signal(signal.SIGTERM, die)
signal.signal(signal.SIGHUP, die)
try:
    import ctypes
    prctl = ctypes.CDLL(None).prctl
except (ImportError, OSError, AttributeError):
    prctl = None
def deathsig():
    if prctl is not None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: the shell dies with the supervisor
child = subprocess.Popen(["/bin/sh", "-c", sys.argv[1]], stdin=subprocess.DEVNULL,
                         preexec_fn=deathsig)
while True:
    try:
        code = child.wait(timeout=0.25)
        break
    except subprocess.TimeoutExpired:
        if os.getppid() != parent:
            die()
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
"""


def dask_resources(resources: Mapping[str, Any]) -> dict[str, float] | None:
    """[pipeline.resources] as Dask worker resources: cpus -> CPU, gpus -> GPU, memory ->
    MEMORY (bytes)."""
    out: dict[str, float] = {}
    if "cpus" in resources:
        out["CPU"] = float(resources["cpus"])
    if "gpus" in resources:
        out["GPU"] = float(resources["gpus"])
    if "memory" in resources:
        memory = resources["memory"]
        if isinstance(memory, str):
            number, unit = memory.strip(), "B"
            for name in sorted(UNITS, key=len, reverse=True):
                if number.endswith(name):
                    number, unit = number[: -len(name)].strip(), name
                    break
            memory = float(number) * UNITS[unit]
        out["MEMORY"] = float(memory)
    return out or None


def stage_environment(base: Mapping[str, str], declared: Mapping[str, str | None],
                      reftool: Mapping[str, str]) -> dict[str, str]:
    """[tool.dask]: the worker's own environment, then the stage's declared env variables with
    the coordinator's values (unset there: unset here), then REFTOOL_*."""
    env = dict(base)
    for name, value in declared.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    env.update(reftool)
    return env


@dataclass(frozen=True)
class Task:
    """What a worker needs to run one attempt of a stage."""
    key: str
    stage: str
    commands: tuple[str, ...]
    cwd: str
    env: Mapping[str, str | None]  # the declared env variables, from the coordinator
    reftool_env: Mapping[str, str]
    outputs: tuple[str, ...]  # absolute paths removed before the first command
    deps: Mapping[str, tuple[int, int, str]]  # absolute path -> (size, mtime_ns, digest)
    claims: str  # absolute folder of attempt claims, on the shared file system
    log: str  # absolute path of the stage's whole output
    # absolute directory path -> (its listing as the coordinator sees it, its rules)
    dir_deps: Mapping[str, tuple[str, Rules | None]] = field(default_factory=dict)


def directory_listing(top: str, rules: Rules | None) -> str:
    """[tool.dask]: a digest of what a directory holds as a stat walk sees it: each file's
    path, size and modification time, under the directory's rules ([digest.ignore]), symbolic
    links by their target's. Equal on two machines that see the same files on a shared file
    system; no file is read. "" when the directory is not there."""
    lines: list[bytes] = []
    stack = [(top, "")]
    try:
        while stack:
            folder, pre = stack.pop()
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
            for e in entries:
                rel = pre + e.name
                is_dir = e.is_dir(follow_symlinks=False)
                if rules is not None and rules.excluded(unicodedata.normalize("NFC", rel),
                                                        is_dir):
                    continue
                if is_dir:
                    stack.append((e.path, rel + "/"))
                    continue
                try:
                    st = e.stat(follow_symlinks=True)
                except OSError:
                    st = e.stat(follow_symlinks=False)
                lines.append(b"%s %d %d\n" % (os.fsencode(rel), st.st_size, st.st_mtime_ns))
    except OSError:
        return ""
    return hashlib.sha256(b"".join(lines)).hexdigest()


# -------------------------------------------------------------------------- on a worker

def _claim_path(task: Task) -> Path:
    return Path(task.claims) / f"{hashlib.sha256(task.stage.encode()).hexdigest()[:32]}.json"


def _wait_for_earlier_attempt(task: Task, me: str) -> None:
    """Fencing: an earlier attempt of this stage (its worker died) may still be ending on
    another machine. Wait until its claim says it ended or has not been touched for
    STALE_CLAIM_S, by which time its supervisor has killed it."""
    path = _claim_path(task)
    while True:
        try:
            claim = json.loads(path.read_text(encoding="utf-8"))
            age = time.time() - path.stat().st_mtime
        except (OSError, ValueError):
            return
        if claim.get("attempt") == me or claim.get("ended") or age > STALE_CLAIM_S:
            return
        time.sleep(HEARTBEAT_S / 2)


def _write_claim(path: Path, claim: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(claim), encoding="utf-8")
    os.replace(tmp, path)


def _stale_deps(task: Task) -> list[str]:
    """[tool.dask]: the file deps this worker sees differently from the coordinator."""
    from .hashing import hash_file
    stale = [path for path, (listing, rules) in sorted(task.dir_deps.items())
             if directory_listing(path, rules) != listing]
    for path, (size, mtime_ns, digest) in sorted(task.deps.items()):
        try:
            st = os.stat(path)
            if (st.st_size, st.st_mtime_ns) == (size, mtime_ns):
                continue
            if st.st_size == size and hash_file(path) == digest:
                continue
        except OSError:
            pass
        stale.append(path)
    return stale


def _remove_outputs(outputs: Sequence[str]) -> None:
    for path in outputs:  # [exec.outputs-before]: a retry starts clean
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)
        elif os.path.isdir(path):
            shutil.rmtree(path)


def _libc() -> Any:
    """libc, loaded here in the worker (never inside a forked child: imports after fork can
    deadlock); None where there is no prctl."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc if hasattr(libc, "prctl") else None
    except OSError:
        return None


def _deathsig(libc: Any) -> Callable[[], None]:
    """For the supervisor, between fork and exec: SIGTERM when the worker thread that started
    it dies (Linux PR_SET_PDEATHSIG). Elsewhere the supervisor polls its parent instead."""
    def set_deathsig() -> None:
        if libc is not None:
            libc.prctl(1, signal.SIGTERM)
    return set_deathsig


class _Output:
    """On the worker: every line of the stage's output to its log (line-buffered, so the
    coordinator can follow it on the shared file system), the last TAIL_LINES kept."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    def line(self, text: str) -> None:
        self.log.write(text + "\n")
        self.tail.append(text)


class _Follower:
    """On the coordinator: the lines a stage's log gained since last asked, at most
    STREAM_BYTES_PER_S a second; what is skipped to keep up is said, not held in memory."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def read(self, budget: int) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < self.offset:  # a retry started the log again
                    self.offset, self.partial = 0, b""
                lines: list[str] = []
                if size - self.offset > budget:
                    f.seek(size - budget)
                    f.readline()  # to the next line start
                    skipped = f.tell() - self.offset
                    lines.append(f"... {skipped} byte(s) of output not shown here (see "
                                 f"{os.path.basename(self.path)} in .reftool/logs)")
                    self.partial = b""
                else:
                    f.seek(self.offset)
                data = self.partial + f.read(budget)
                self.offset = f.tell()
        except OSError:
            return []
        *complete, self.partial = data.split(b"\n")
        return lines + [c.decode("utf-8", "replace") for c in complete]


def _heartbeat(path: Path, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        try:
            os.utime(path)
        except OSError:
            return


def _run_command(task: Task, command: str, env: Mapping[str, str], stream: _Output) -> int:
    process = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", SUPERVISOR, command], cwd=task.cwd, env=dict(env),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True, preexec_fn=_deathsig(_libc()))
    with _LOCK:
        _GROUPS[task.key] = process.pid
    assert process.stdout is not None
    for raw in process.stdout:
        stream.line(raw.decode("utf-8", "replace").rstrip("\n"))
    return process.wait()


def run_on_worker(task: Task) -> dict[str, Any]:
    """On a worker: one attempt of a stage. Returns its exit code, the last lines of its
    output and, when it did not run, why ("stale_deps")."""
    me = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(8)}"
    stale = _stale_deps(task)
    if stale:
        return {"code": 1, "lines": [], "stale_deps": stale, "host": socket.gethostname()}
    _wait_for_earlier_attempt(task, me)
    claim = _claim_path(task)
    _write_claim(claim, {"attempt": me, "stage": task.stage, "ended": False})
    stop = threading.Event()
    threading.Thread(target=_heartbeat, args=(claim, stop), daemon=True).start()
    env = stage_environment(os.environ, task.env, task.reftool_env)
    code = 0
    Path(task.log).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(task.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0),
                 0o644)  # [security.symlinks]
    with open(fd, "w", encoding="utf-8", buffering=1) as log:
        stream = _Output(log)
        try:
            _remove_outputs(task.outputs)
            for command in task.commands:
                code = _run_command(task, command, env, stream)
                if code != 0:
                    break
        finally:
            stop.set()
            with _LOCK:
                _GROUPS.pop(task.key, None)
            _write_claim(claim, {"attempt": me, "stage": task.stage, "ended": True})
    return {"code": code, "lines": list(stream.tail)}


def stop_on_worker(keys: Sequence[str]) -> int:
    """On a worker: stop the process groups of these stages; how many were running here."""
    stopped = 0
    with _LOCK:
        groups = [_GROUPS[k] for k in keys if k in _GROUPS]
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
            stopped += 1
        except (ProcessLookupError, PermissionError):
            pass
    return stopped


# --------------------------------------------------------------------- on the coordinator

class ClusterError(Exception):
    """The scheduler cannot be reached, went away, or cannot run what was asked."""


def _quiet_distributed() -> None:
    """The client's own error messages say what happened; distributed's log lines (30 lines
    of traceback when the scheduler dies) are not for the user of `run`."""
    import logging
    for name in ("distributed", "distributed.client", "distributed.comm",
                 "distributed.core", "distributed.batched"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def _probe_lambda(token_path: str) -> Callable[[], dict[str, Any]]:
    # A lambda is pickled by value (cloudpickle), so it runs on a worker without reftool and
    # can say so; a module-level function would fail to unpickle there, silently.
    return lambda: {  # noqa: E731
        "reftool": (lambda: __import__("importlib.util").util.find_spec("reftool")
                    is not None)(),
        "token": (lambda p: open(p, encoding="utf-8").read()
                  if __import__("os").path.isfile(p) else None)(token_path),
        "host": __import__("socket").gethostname(),
    }


def unplaceable(needs: Mapping[str, float], workers: Mapping[str, Mapping[str, float]]
                ) -> str | None:
    """Why no worker can run a stage that needs these Dask resources; None when one can."""
    for resources in workers.values():
        if all(resources.get(name, 0.0) >= amount for name, amount in needs.items()):
            return None
    wanted = ", ".join(f"{n}={_amount(a)}" for n, a in sorted(needs.items()))
    have = "; ".join(f"{address}: " + (", ".join(f"{n}={_amount(a)}" for n, a in
                                                sorted(r.items())) or "none")
                     for address, r in sorted(workers.items())) or "no workers"
    return (f"needs {wanted}, which no worker advertises (workers: {have}); start workers "
            f"with --resources \"{','.join(f'{n}={_amount(a)}' for n, a in sorted(needs.items()))}"
            "\" (README, Running on a cluster)")


def _amount(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


class DaskExecutor:
    def __init__(self, address: str, *, timeout: float = 10.0) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise ClusterError("the Dask executor needs Dask: pip install 'reftool[dask]'") \
                from None
        _quiet_distributed()
        try:
            self.client: Any = Client(  # type: ignore[no-untyped-call]
                address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as e:
            raise ClusterError(f"cannot reach the Dask scheduler at {address}: {e}") from None
        self.address = address
        self.futures: dict[str, Any] = {}

    def workers(self) -> dict[str, dict[str, Any]]:
        info: dict[str, dict[str, Any]] = self.client.scheduler_info()["workers"]
        return info

    def threads(self) -> int:
        """How many stages the cluster can run at once: its workers' threads."""
        return sum(int(w.get("nthreads", 1)) for w in self.workers().values())

    def check(self, root: Path, needs: Mapping[str, Mapping[str, Any]]) -> None:
        """[tool.dask] Before anything is submitted: workers exist, import reftool, see the
        project at the same absolute path, and each stage (name -> its `resources`) fits some
        worker. Raises ClusterError naming what is missing."""
        workers = self.workers()
        if not workers:
            raise ClusterError(f"the Dask scheduler at {self.address} has no workers")
        problems = self._probe(root)
        advertised = {a: dict(w.get("resources") or {}) for a, w in workers.items()}
        for stage, resources in sorted(needs.items()):
            wanted = dask_resources(resources)
            why = unplaceable(wanted, advertised) if wanted else None
            if why:
                problems.append(f"stage {stage!r} {why}")
        if problems:
            raise ClusterError("the cluster cannot run this pipeline:\n  " +
                               "\n  ".join(problems))

    def _probe(self, root: Path) -> list[str]:
        folder = root.resolve() / ".reftool" / "probe"
        folder.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(16)
        path = folder / f"{token}.txt"
        path.write_text(token, encoding="utf-8")
        try:
            answers = self.client.run(_probe_lambda(str(path)), on_error="return")
        finally:
            path.unlink(missing_ok=True)
        problems = []
        for address, answer in sorted(answers.items()):
            if isinstance(answer, BaseException) or not isinstance(answer, dict):
                problems.append(f"worker {address} did not answer the probe: {answer!r}")
            elif not answer["reftool"]:
                problems.append(f"worker {address} ({answer['host']}) cannot import reftool: "
                                "install reftool, the same version, in the workers' "
                                "environment")
            elif answer["token"] != token:
                problems.append(f"worker {address} ({answer['host']}) does not see the "
                                f"project at {root.resolve()}: every worker must see it on a "
                                "shared file system at the same absolute path")
        return problems

    def run(self, task: Task, resources: Mapping[str, Any],
            on_lines: Callable[[list[str]], None]) -> dict[str, Any]:
        """Run one stage on the cluster and wait for it; its output, followed in its log on the
        shared file system, reaches `on_lines` as it comes. The worker's answer: code, lines
        (the tail) and, if it did not run, why."""
        future = self.client.submit(run_on_worker, task, key=task.key, pure=False,
                                    resources=dask_resources(resources))
        self.futures[task.key] = future
        follower = _Follower(task.log)
        budget = int(STREAM_BYTES_PER_S * STREAM_EVERY_S)
        # Not future.result(timeout=...): in distributed 2026.8 a timeout racing the result
        # raises UnboundLocalError from its sync() (about 1 call in 50 on two busy cores), which
        # failed a stage that had succeeded. Wait for the done callback instead.
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        try:
            while not done.wait(STREAM_EVERY_S):
                on_lines(follower.read(budget))
            result: dict[str, Any] = future.result()
            on_lines(follower.read(budget) + ([follower.partial.decode("utf-8", "replace")]
                                              if follower.partial else []))
        finally:
            self.futures.pop(task.key, None)
        return result

    def cancel_all(self) -> None:
        """Ctrl-C: cancel the cluster's tasks and stop the stages already running."""
        keys = list(self.futures)
        if not keys:
            return
        try:
            self.client.cancel(list(self.futures.values()), force=True)
            self.client.run(stop_on_worker, keys)
        except Exception:  # noqa: BLE001 - the cluster may be gone already: nothing to stop
            pass

    def close(self) -> None:
        try:
            self.client.close(timeout=5)
        except Exception:  # noqa: BLE001
            pass
