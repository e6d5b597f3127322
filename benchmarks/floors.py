"""The floors of issue 18, as programs run in a fresh process like the tool is.

    python benchmarks/floors.py plan DIR      parse the files, load the lock, stat every path
    python benchmarks/floors.py commands DIR [N]  run the first N stage commands, no tool
    python benchmarks/floors.py hash DIR/SUB  walk, read and sha256 every file on one core

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


def plan(root: str) -> None:
    from ruamel.yaml import YAML  # the C loader when ruamel.yaml.clib is there

    yaml = YAML(typ="safe")
    with open(os.path.join(root, "pipeline.yaml"), encoding="utf-8") as f:
        yaml.load(f)
    with open(os.path.join(root, "params.yaml"), encoding="utf-8") as f:
        yaml.load(f)
    with open(os.path.join(root, "pipeline.lock"), encoding="utf-8") as f:
        lock = json.load(f)
    for entry in lock["stages"].values():
        for path in [*entry["deps"], *entry["outs"]]:
            full = os.path.join(root, path)
            if stat.S_ISDIR(os.stat(full).st_mode):
                _walk_stat(full)


def commands(root: str, limit: int | None) -> None:
    from ruamel.yaml import YAML

    with open(os.path.join(root, "pipeline.yaml"), encoding="utf-8") as f:
        stages = YAML(typ="safe").load(f)["stages"]
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
    else:
        hash_tree(where)
