"""Running stages on a Dask cluster: `reftool run --executor dask --scheduler tcp://HOST:PORT`.

Workers see the project through a shared file system (as Snakemake's cluster modes assume) and
run each stage's commands there through `/bin/sh -c`; only the coordinating `run` hashes and
writes the lock, so every guarantee of SPEC section 11 holds. A stage's declared `resources`
become Dask worker resources (`CPU`, `GPU`, `MEMORY`); stages without run anywhere. A worker
that dies mid-stage is replaced by the scheduler, which runs the stage again on another worker
(up to its `distributed.scheduler.allowed-failures`, then the stage fails cleanly). Dask is an
optional extra: `pip install reftool[dask]`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from typing import Any

# on a worker: the process group of each running stage, by task key, so that it can be stopped
_GROUPS: dict[str, int] = {}
_LOCK = threading.Lock()

UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KiB": 2**10,
         "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


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


def run_on_worker(key: str, commands: Sequence[str], cwd: str, env: Mapping[str, str],
                  outputs: Sequence[str]) -> dict[str, Any]:
    """On a worker: the stage's commands, one after another. Outputs are removed first, so a
    stage run again after a worker died starts clean ([exec.outputs-before])."""
    for path in outputs:
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)
        elif os.path.isdir(path):
            shutil.rmtree(path)
    lines: list[str] = []
    try:
        for command in commands:
            process = subprocess.Popen(["/bin/sh", "-c", command], cwd=cwd, env=dict(env),
                                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, start_new_session=True)
            with _LOCK:
                _GROUPS[key] = process.pid
            assert process.stdout is not None
            lines += process.stdout.read().decode("utf-8", "replace").splitlines()
            code = process.wait()
            if code != 0:
                return {"code": code, "lines": lines}
    finally:
        with _LOCK:
            _GROUPS.pop(key, None)
    return {"code": 0, "lines": lines}


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


class ClusterError(Exception):
    """The scheduler cannot be reached, or went away."""


class DaskExecutor:
    def __init__(self, address: str, *, timeout: float = 10.0) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise ClusterError("the Dask executor needs Dask: pip install 'reftool[dask]'") \
                from None
        try:
            self.client: Any = Client(  # type: ignore[no-untyped-call]
                address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as e:
            raise ClusterError(f"cannot reach the Dask scheduler at {address}: {e}") from None
        self.address = address
        self.futures: dict[str, Any] = {}

    def run(self, key: str, commands: Sequence[str], cwd: str, env: Mapping[str, str],
            outputs: Sequence[str], resources: Mapping[str, Any]) -> tuple[int, list[str]]:
        """Run a stage on the cluster and wait for it: (exit code, output lines)."""
        future = self.client.submit(run_on_worker, key, list(commands), cwd, dict(env),
                                    list(outputs), key=key, pure=False,
                                    resources=dask_resources(resources))
        self.futures[key] = future
        try:
            result = future.result()
        finally:
            self.futures.pop(key, None)
        return int(result["code"]), list(result["lines"])

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
