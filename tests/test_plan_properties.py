"""Property test ([stale.reasons], [stale.upstream], [stale.order]): random DAG pipelines, random
edits, and a simple model of what must be stale.

The model: exactly the stages that use the changed thing are stale on their own; exactly their
descendants are marked downstream; the order is topological; and after recording everything as
run, the plan is empty.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planning import plan, record_all

RAW = ["r0.txt", "r1.txt", "r2.txt"]
KEYS = ["k0", "k1", "k2"]


@dataclass(frozen=True)
class Spec:
    deps: tuple[tuple[int, ...], ...]  # per stage: upstream stage indexes
    raws: tuple[tuple[int, ...], ...]  # per stage: raw file indexes
    keys: tuple[tuple[int, ...], ...]  # per stage: params keys


@st.composite
def pipelines(draw: st.DrawFn) -> Spec:
    n = draw(st.integers(2, 7))
    deps, raws, keys = [], [], []
    for i in range(n):
        deps.append(tuple(sorted(draw(st.sets(st.integers(0, i - 1), max_size=3)))) if i else ())
        raws.append(tuple(sorted(draw(st.sets(st.integers(0, len(RAW) - 1), max_size=2)))))
        keys.append(tuple(sorted(draw(st.sets(st.integers(0, len(KEYS) - 1), max_size=2)))))
    return Spec(tuple(deps), tuple(raws), tuple(keys))


def _name(i: int) -> str:
    return f"s{i}"


def write_project(root: Path, spec: Spec, commands: dict[int, str] | None = None) -> None:
    lines = ['version: "1.0"', "stages:"]
    for i in range(len(spec.deps)):
        deps = [RAW[r] for r in spec.raws[i]] + [f"out/{_name(d)}.txt" for d in spec.deps[i]]
        lines += [f"  {_name(i)}:", f"    cmd: {(commands or {}).get(i, f'make {i}')}",
                  f"    deps: [{', '.join(deps)}]", f"    outs: [out/{_name(i)}.txt]"]
        if spec.keys[i]:
            lines.append(f"    params: {{params.yaml: [{', '.join('/' + KEYS[k] for k in spec.keys[i])}]}}")
    (root / "pipeline.yaml").write_text("\n".join(lines) + "\n")


def write_params(root: Path, values: dict[str, int]) -> None:
    (root / "params.yaml").write_text("".join(f"{k}: {v}\n" for k, v in values.items()))


def descendants(spec: Spec, start: set[int]) -> set[int]:
    found: set[int] = set()
    for i in range(len(spec.deps)):  # stage indexes are a topological order
        if any(d in start or d in found for d in spec.deps[i]):
            found.add(i)
    return found - start


edits = st.one_of(
    st.tuples(st.just("raw"), st.integers(0, len(RAW) - 1)),
    st.tuples(st.just("param"), st.integers(0, len(KEYS) - 1)),
    st.tuples(st.just("unrelated_param"), st.just(0)),
    st.tuples(st.just("command"), st.integers(0, 6)),
    st.tuples(st.just("delete_output"), st.integers(0, 6)),
)


@settings(derandomize=True, database=None, deadline=None, max_examples=60,
          suppress_health_check=[HealthCheck.too_slow])
@given(spec=pipelines(), edit=edits)
def test_plan_matches_model(spec: Spec, edit: tuple[str, int]) -> None:
    n = len(spec.deps)
    kind, which = edit
    which = which % n if kind in ("command", "delete_output") else which
    params = {"k0": 1, "k1": 2, "k2": 3, "unused": 0}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "out").mkdir()
        for r in RAW:
            (root / r).write_text(r)
        for i in range(n):
            (root / f"out/{_name(i)}.txt").write_text(f"output {i}")
        write_params(root, params)
        write_project(root, spec)
        record_all(root)
        assert plan(root).to_run == ()

        # one edit
        if kind == "raw":
            (root / RAW[which]).write_text("changed")
            own = {i for i in range(n) if which in spec.raws[i]}
        elif kind == "param":
            params[KEYS[which]] += 10
            write_params(root, params)
            own = {i for i in range(n) if which in spec.keys[i]}
        elif kind == "unrelated_param":
            params["unused"] += 1
            write_params(root, params)
            own = set()
        elif kind == "command":
            write_project(root, spec, {which: f"make {which} --again"})
            own = {which}
        else:
            os.remove(root / f"out/{_name(which)}.txt")
            own = {which}

        p = plan(root)
        stale_own = {int(d.name[1:]) for d in p.to_run if not d.downstream}
        downstream = {int(d.name[1:]) for d in p.to_run if d.downstream}
        assert stale_own == own
        assert downstream == descendants(spec, own)
        position = {d.name: k for k, d in enumerate(p.to_run)}
        for d in p.to_run:  # topological: every upstream that runs comes first
            for up in spec.deps[int(d.name[1:])]:
                if _name(up) in position:
                    assert position[_name(up)] < position[d.name]
        assert len(p.to_run) + len(p.up_to_date) == n

        # run everything (recreate what was deleted) and record: the fixpoint is empty
        for i in range(n):
            (root / f"out/{_name(i)}.txt").write_text(f"output {i}")
        record_all(root)
        assert plan(root).to_run == ()
