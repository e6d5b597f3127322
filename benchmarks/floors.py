"""The floors of issue 18, as programs run in a fresh process like the tool is.

    python benchmarks/floors.py plan DIR      parse the files, load the lock, stat every path
    python benchmarks/floors.py commands DIR [N]  run the first N stage commands, no tool
    python benchmarks/floors.py hash DIR/SUB  walk, read and sha256 every file on one core
    python benchmarks/floors.py walk DIR/SUB  lstat every entry (find -printf, from Python)

Each does the least work any tool must do for the same answer, and no more: no validation,
no decisions, no records. `bench_table.py` measures them side by side with `reftool`.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys


def _walk_stat(folder: str) -> int:
    """lstat every entry under `folder` (what `find -printf '%s %T@'` does)."""
    count, stack = 0, [folder]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                e.stat(follow_symlinks=False)
                count += 1
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
    return count


def _yaml(path: str) -> object:
    """A YAML file through libyaml, the fastest parser there is for Python: PyYAML's
    CSafeLoader (installed with the dask extra), else ruamel.yaml's C parser."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        import yaml
        return yaml.load(text, Loader=yaml.CSafeLoader)
    except (ImportError, AttributeError):
        from ruamel.yaml import YAML
        return YAML(typ="safe").load(text)


def plan(root: str) -> None:
    _yaml(os.path.join(root, "pipeline.yaml"))
    _yaml(os.path.join(root, "params.yaml"))
    with open(os.path.join(root, "pipeline.lock"), encoding="utf-8") as f:
        lock = json.load(f)
    for entry in lock["stages"].values():
        for path in [*entry["deps"], *entry["outs"]]:
            full = os.path.join(root, path)
            if stat.S_ISDIR(os.stat(full).st_mode):
                _walk_stat(full)


def commands(root: str, limit: int | None) -> None:
    stages = _yaml(os.path.join(root, "pipeline.yaml"))["stages"]  # type: ignore[index]
    os.makedirs(os.path.join(root, "out"), exist_ok=True)
    for i, stage in enumerate(stages.values()):  # generate.py writes them in run order
        if limit is not None and i >= limit:
            break
        subprocess.run(["/bin/sh", "-c", stage["cmd"]], cwd=root, check=True)


def hash_tree(folder: str) -> None:
    paths, stack = [], [folder]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                else:
                    paths.append(e.path)
    for p in sorted(paths):
        with open(p, "rb") as f:
            hashlib.sha256(f.read()).hexdigest()


if __name__ == "__main__":
    what, where = sys.argv[1], sys.argv[2]
    if what == "plan":
        plan(where)
    elif what == "commands":
        commands(where, int(sys.argv[3]) if len(sys.argv) > 3 else None)
    elif what == "walk":
        _walk_stat(where)
    else:
        hash_tree(where)
