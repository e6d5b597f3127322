"""The floors of issue 18, as programs run in a fresh process like the tool is.

    python benchmarks/floors.py plan DIR      read and digest the files, load their parsed form
                                              and the lock, stat every path
    python benchmarks/floors.py parse DIR     the same, parsing the YAML with libyaml each time
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


def _parsed(path: str, cache: str) -> object:
    """A YAML file's parsed form as any careful tool keeps it between runs: its bytes read and
    digested, and the parse of those bytes loaded from a JSON file keyed by the digest (parsed
    with libyaml, and stored, the first time). Parsing 1.5 MB of YAML takes libyaml 2 s, so a
    floor that parses on every plan is not the least work a tool must do."""
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    stored = os.path.join(cache, digest + ".json")
    try:
        with open(stored, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        data = _yaml(path)
        os.makedirs(cache, exist_ok=True)
        with open(stored, "w", encoding="utf-8") as f:
            json.dump(data, f)
        return data


def plan(root: str, parse: bool = False) -> None:
    cache = os.path.join(root, ".floor-cache")
    for name in ("pipeline.yaml", "params.yaml"):
        _yaml(os.path.join(root, name)) if parse else _parsed(os.path.join(root, name), cache)
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
    if what in ("plan", "parse"):
        plan(where, parse=what == "parse")
    elif what == "commands":
        commands(where, int(sys.argv[3]) if len(sys.argv) > 3 else None)
    elif what == "walk":
        _walk_stat(where)
    else:
        hash_tree(where)
