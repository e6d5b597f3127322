"""SIGKILL `reftool run` at random moments of a multi-stage run, 50 times (seeded): every
time the lock parses and is canonical, every recorded stage's outputs on disk match their
recorded digests, and the next run completes and converges to an empty plan."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import time
from pathlib import Path

from conftest import Project
from planning import plan
from reftool.pipeline.lockfile import replay
from reftool.files.model import canonical_lock_text, lock_from_dict

# a chain with a fan-in and a directory output; every output depends on the params value
STAGES = """\
version: "1.0"
stages:
  s0:
    cmd: sleep 0.05 && cat params.yaml > out/s0.txt
    deps: [params.yaml]
    outs: [out/s0.txt]
  s1:
    cmd: sleep 0.05 && cat out/s0.txt out/s0.txt > out/s1.txt
    deps: [out/s0.txt]
    outs: [out/s1.txt]
  s2:
    cmd: mkdir -p out/s2 && for i in 1 2 3; do cat out/s0.txt > out/s2/$i.txt; done
    deps: [out/s0.txt]
    outs: [out/s2/]
  s3:
    cmd: sleep 0.05 && cat out/s1.txt out/s2/1.txt > out/s3.txt
    deps: [out/s1.txt, out/s2/]
    outs: [out/s3.txt]
  s4:
    cmd: sleep 0.05 && wc -c out/s3.txt > out/s4.txt
    deps: [out/s3.txt]
    outs: [out/s4.txt]
  s5:
    cmd: cat out/s4.txt > out/s5.txt
    deps: [out/s4.txt]
    outs: [out/s5.txt]
"""


def digest_on_disk(root: Path, path: str) -> str | None:
    target = root / path.rstrip("/")
    if path.endswith("/"):
        if not target.is_dir():
            return None
        from reftool.pipeline.hashing import HashCache, Hasher
        state = Hasher(root, HashCache(None, str(root))).state(path)
        return state.digest if state else None
    if not target.is_file():
        return None
    return "sha256:" + hashlib.sha256(target.read_bytes()).hexdigest()


def test_sigkill_at_random_moments(project: Project) -> None:
    root = project.root
    project.write("pipeline.yaml", STAGES)
    (root / "out").mkdir()
    rng = random.Random(20261128)
    for trial in range(50):
        project.write("params.yaml", f"trial: {trial}\n")  # everything is stale again
        p = subprocess.Popen([sys.executable, "-m", "reftool", "run", "--no-cache", "-q"],
                             cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, 0.9))
        p.kill()
        p.wait()
        lock_path = root / "pipeline.lock"
        lock = None
        if lock_path.exists():
            text = lock_path.read_text()
            lock = lock_from_dict(json.loads(text))
            assert canonical_lock_text(lock) == text, f"trial {trial}: lock not canonical"
        recorded, _, _ = replay(root, lock_path, lock)
        for name, entry in (recorded.stages.items() if recorded else ()):
            for path, out in entry.outs.items():
                assert digest_on_disk(root, path) == out.state.digest, (
                    f"trial {trial}: {name} recorded {path} but the disk differs")
    r = subprocess.run([sys.executable, "-m", "reftool", "run", "--no-cache", "-q"], cwd=root,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert plan(root).to_run == ()
    assert (root / "out/s5.txt").read_text().split()[0].isdigit()
