"""Synthetic projects for the benchmarks: N stages in a layered DAG with chains and fan-in,
1-3 deps each, a params key per group of ten stages, M raw files, one directory dep of K files,
and optionally one large file. The directory dep holds folders of 1,000 files
(data/big/NNNN/NNNN.txt), or with `--flat` all its files in itself (data/big/NNNNNN.txt).

    python benchmarks/generate.py DIR --stages 1000 --raw-files 1000 --dir-files 100000 [--flat]
"""

from __future__ import annotations

import argparse
import os
import random
from pathlib import Path


def generate(root: Path, *, stages: int, raw_files: int = 100, dir_files: int = 0,
             big_file_mb: int = 0, seed: int = 0, flat: bool = False) -> None:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    raw = [f"raw/f{i:06d}.txt" for i in range(raw_files)]
    for rel in raw:
        _write(root / rel, f"raw {rel}\n".encode())
    if dir_files:
        for i in range(dir_files):
            _write(root / big_file(i, flat), f"{i}\n".encode())
    if big_file_mb:
        block = rng.randbytes(1 << 20)
        (root / "data").mkdir(parents=True, exist_ok=True)
        with open(root / "data" / "huge.bin", "wb") as f:
            for i in range(big_file_mb):
                f.write(block[i % 251:] + block[:i % 251])
    width = max(1, int(stages ** 0.5))
    lines = ['version: "1.0"', "stages:"]
    groups: dict[int, int] = {}
    for i in range(stages):
        layer = i // width
        deps: list[str] = []
        if layer == 0:
            deps.append(raw[i % len(raw)] if raw else "")
            if i == 0 and dir_files:
                deps.append("data/big/")
            if i == 0 and big_file_mb:
                deps.append("data/huge.bin")
        else:
            prev = range((layer - 1) * width, min(layer * width, stages))
            deps.append(f"out/s{i - width}.txt")  # a chain through the layers
            for _ in range(rng.randint(0, 2)):  # fan-in
                deps.append(f"out/s{rng.choice(list(prev))}.txt")
            if rng.random() < 0.3:
                deps.append(raw[rng.randrange(len(raw))])
        deps = list(dict.fromkeys(d for d in deps if d))
        groups[i // 10] = 1
        lines += [f"  s{i}:", f"    cmd: echo {i} > out/s{i}.txt",
                  f"    deps: [{', '.join(deps)}]",
                  f"    params: {{params.yaml: [/g{i // 10}/lr]}}",
                  f"    outs: [out/s{i}.txt]"]
    _write(root / "pipeline.yaml", ("\n".join(lines) + "\n").encode())
    _write(root / "params.yaml", "".join(f"g{g}:\n  lr: 0.{g + 1}\n" for g in groups).encode())
    for i in range(stages):
        _write(root / f"out/s{i}.txt", f"{i}\n".encode())


def big_file(i: int, flat: bool = False) -> str:
    """The path of the i-th file of the directory dep."""
    return f"data/big/{i:06d}.txt" if flat else f"data/big/{i // 1000:04d}/{i % 1000:04d}.txt"


def record_everything(root: Path) -> None:
    """Write the lock as if every stage had run (the outputs exist already)."""
    from reftool.pipeline.hashing import hasher_for
    from reftool.files.model import Lock, canonical_lock_text
    from reftool.pipeline.plan import record
    from reftool.files.validate import Report, validate_pipeline
    from reftool.pipeline.workspace import Workspace

    report = Report()
    project = validate_pipeline(root, "pipeline.yaml", report, with_metrics=False)
    assert not report.errors and project.pipeline is not None, report.errors[:3]
    hasher = hasher_for(root)
    ws = Workspace(root, hasher, params=project.params)
    stages = project.pipeline.stages
    lock = Lock(version="1.0", stages={n: record(s, ws) for n, s in stages.items()})
    (root / "pipeline.lock").write_text(canonical_lock_text(lock), encoding="utf-8")
    hasher.cache.save()


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except FileNotFoundError:
        os.makedirs(path.parent, exist_ok=True)
        path.write_bytes(data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--stages", type=int, default=100)
    ap.add_argument("--raw-files", type=int, default=100)
    ap.add_argument("--dir-files", type=int, default=0)
    ap.add_argument("--big-file-mb", type=int, default=0)
    ap.add_argument("--flat", action="store_true",
                    help="the directory dep's files all in one folder, none in subfolders")
    ap.add_argument("--record", action="store_true", help="also write the lock")
    a = ap.parse_args()
    generate(a.dir, stages=a.stages, raw_files=a.raw_files, dir_files=a.dir_files,
             big_file_mb=a.big_file_mb, flat=a.flat)
    if a.record:
        record_everything(a.dir)


if __name__ == "__main__":
    main()
