"""The stage graph: SPEC [pipeline.graph], [stale.order]. Pure functions."""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Mapping

from .model import Output, Pipeline, Stage
from .values import utf16_key


def bare(path: str) -> str:
    """A path without the final `/` that marks a directory."""
    return path[:-1] if path.endswith("/") else path


class OutputIndex:
    """Which stage produces a path, or a directory around it, or something inside it."""

    def __init__(self, outputs: Iterable[tuple[str, Output]]) -> None:
        self.by_path: dict[str, tuple[str, Output]] = {}
        for stage, out in outputs:
            self.by_path.setdefault(bare(out.path), (stage, out))
        self.sorted = sorted(self.by_path)
        self._found: dict[str, list[tuple[str, Output]]] = {}  # answers already given

    def producers(self, path: str) -> list[tuple[str, Output]]:
        """Outputs equal to `path`, directories containing it, and outputs inside it."""
        found = self._found.get(path)
        if found is None:
            found = self._found[path] = self._producers(path)
        return list(found)

    def _producers(self, path: str) -> list[tuple[str, Output]]:
        key = bare(path)
        found: list[tuple[str, Output]] = []
        if key in self.by_path:
            found.append(self.by_path[key])
        parts = key.split("/")
        for i in range(1, len(parts)):
            hit = self.by_path.get("/".join(parts[:i]))
            if hit is not None and hit[1].is_dir:
                found.append(hit)
        prefix = key + "/"
        i = bisect.bisect_left(self.sorted, prefix)
        while i < len(self.sorted) and self.sorted[i].startswith(prefix):
            found.append(self.by_path[self.sorted[i]])
            i += 1
        return found


# The last pipeline's index and graph: validation, planning and running all ask for them,
# and building them is the largest cost of a no-op plan after reading the files (issue 18).
# A Pipeline is frozen, so the memo holds it (keeping its id from being reused) and compares
# identity.
_memo: dict[str, tuple[Pipeline, object]] = {}


def output_index(pipeline: Pipeline) -> OutputIndex:
    held = _memo.get("index")
    if held is not None and held[0] is pipeline:
        return held[1]  # type: ignore[return-value]
    index = OutputIndex((s.name, o) for s in pipeline.stages.values() for o in s.outputs)
    _memo["index"] = (pipeline, index)
    return index


def dependencies(pipeline: Pipeline, index: OutputIndex | None = None) -> dict[str, set[str]]:
    """For each stage, the stages it depends on directly ([pipeline.graph]): through its deps
    and through its params files, when a stage writes one ([pipeline.params-edge])."""
    held = _memo.get("deps")
    if index is None and held is not None and held[0] is pipeline:
        return {k: set(v) for k, v in held[1].items()}  # type: ignore[attr-defined]
    index = index or output_index(pipeline)
    deps = {
        s.name: {producer for path in input_paths(s) for producer, _ in index.producers(path)}
        for s in pipeline.stages.values()
    }
    _memo["deps"] = (pipeline, deps)
    return {k: set(v) for k, v in deps.items()}


def input_paths(stage: Stage) -> list[str]:
    """The paths whose producers a stage waits on: its deps, then its params files (not its
    vars files, which no stage may write: [template.vars-source])."""
    return [d.path for d in stage.deps] + [
        ref.file for ref in stage.params if not ref.from_template]


def select(names: Iterable[str], targets: Iterable[str]) -> tuple[list[str], list[str]]:
    """[stale.selection]: the stages that the targets name, and the targets that name none.

    A target names the stage of that name; a target that is no stage's name but the base of
    generated stages (`train` for `train@a`, `train@b`) names every one of them, in UTF-16
    order."""
    known = set(names)
    chosen: list[str] = []
    unknown: list[str] = []
    for target in targets:
        group = [target] if target in known else sorted(
            (n for n in known if n.startswith(target + "@")), key=utf16_key)
        if not group:
            unknown.append(target)
        chosen.extend(n for n in group if n not in chosen)
    return chosen, unknown


def find_cycles(deps: Mapping[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component that has one, each in dependency order."""
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(deps, key=utf16_key):
        if start in index_of:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(deps[start], key=utf16_key))]
        index_of[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop(0)
                if nxt not in deps:
                    continue
                if nxt not in index_of:
                    index_of[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(deps[nxt], key=utf16_key)))
                elif nxt in on_stack:
                    low[node] = min(low[node], index_of[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index_of[node]:
                comp = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.append(member)
                    if member == node:
                        break
                if len(comp) > 1 or node in deps[node]:
                    components.append(_cycle_in(set(comp), deps))
    return components


def _cycle_in(component: set[str], deps: Mapping[str, set[str]]) -> list[str]:
    """A simple cycle through the first member of a strongly connected component."""
    start = min(component, key=utf16_key)
    path = [start]
    seen = {start}
    node = start
    while True:
        nexts = sorted((d for d in deps[node] if d in component), key=utf16_key)
        if start in nexts:
            return path
        step = next((d for d in nexts if d not in seen), None)
        if step is None:  # cannot happen in a strongly connected component; be safe
            return path
        path.append(step)
        seen.add(step)
        node = step


def topological_order(deps: Mapping[str, set[str]],
                      names: Iterable[str] | None = None) -> list[str]:
    """[stale.order]: dependencies first; ties broken by UTF-16 order of the names.

    `names` restricts the order to those stages (their dependencies outside it are ignored).
    Raises ValueError on a cycle.
    """
    chosen = set(deps if names is None else names)
    waiting = {n: {d for d in deps[n] if d in chosen} for n in chosen}
    users: dict[str, list[str]] = {n: [] for n in chosen}
    for n, ds in waiting.items():
        for d in ds:
            users[d].append(n)
    ready = [(utf16_key(n), n) for n, ds in waiting.items() if not ds]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, n = heapq.heappop(ready)
        order.append(n)
        for u in users[n]:
            waiting[u].discard(n)
            if not waiting[u]:
                heapq.heappush(ready, (utf16_key(u), u))
    if len(order) != len(chosen):
        raise ValueError("the stage graph has a cycle")
    return order


def upstream_closure(deps: Mapping[str, set[str]], names: Iterable[str]) -> set[str]:
    """[stale.selection]: the named stages and every stage they depend on."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo.extend(deps.get(n, ()))
    return seen


def reserved_of(pipeline: Pipeline, pipeline_file: str) -> frozenset[str]:
    """[security.reserved]: the files this pipeline reads that no output may touch, besides
    spec.RESERVED_PATHS: the pipeline file, its lock ([files.lock-name]), every vars file and
    every params file that no other stage than its reader writes ([pipeline.params-edge])."""
    import posixpath
    name = posixpath.normpath(pipeline_file.replace("\\", "/"))
    lock = posixpath.splitext(name)[0] + ".lock"
    index = output_index(pipeline)
    params = {ref.file for stage in pipeline.stages.values() for ref in stage.params
              if not ref.from_template and all(
                  producer == stage.name for producer, _ in index.producers(ref.file))}
    return frozenset({name, lock, *pipeline.vars, *params})
