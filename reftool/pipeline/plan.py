"""The one decision: which stages run, and exactly why. SPEC section 10.

`decide` is a pure function of the pipeline, the lock, what an `Observer` reports of the
workspace, and the options. `plan` shows its result; `run` executes the same result
([stale.decision]). The observer is asked only for what the decision needs: deps that an
upstream stage will rewrite are not looked at, nor are stages outside the selection.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..files import graph
from ..files.model import (
    EnvDigest,
    EnvValue,
    FileState,
    Lock,
    LockEntry,
    OutState,
    Pipeline,
    Stage,
    env_dict,
    stage_env_record,
)
from ..files.spec import REASON_ORDER, ReasonCode
from ..files.values import canonical_equal, pointer_for, typed_tree, utf16_key

ABSENT: Any = object()  # a value that is not there (an old value never recorded, a new one gone)


class Observer(Protocol):
    """What the decision may ask of the workspace."""

    def path_state(self, path: str, exclude: tuple[str, ...] = ()) -> FileState | None:
        """The state of a dep or output path; None when it does not exist. A directory is
        hashed under the project's ignore rules and `exclude` ([digest.ignore]), and its
        state names their digest ([lock.rules])."""

    def rules_digest(self, path: str, exclude: tuple[str, ...] = ()) -> str | None:
        """The digest of the rules the directory `path` is hashed under; None for none."""

    def params_file(self, file: str) -> Mapping[str, Any]:
        """The parsed contents of a params file (a mapping)."""

    def env(self, name: str) -> str | None:
        """The value of an environment variable; None when unset."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reason:
    """One reason code with its details ([stale.reasons])."""

    code: ReasonCode
    path: str | None = None
    file: str | None = None
    key: str | None = None
    old: Any = ABSENT
    new: Any = ABSENT
    stages: tuple[str, ...] = ()

    def sort_key(self) -> tuple[int, bytes, bytes, bytes]:
        return (REASON_ORDER.index(self.code), utf16_key(self.path or ""),
                utf16_key(self.file or ""), utf16_key(self.key or ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class StageDecision:
    name: str
    reasons: tuple[Reason, ...]
    # restore: its outputs are in the cache; blocked: a source dep of it, or of a stage it
    # waits on, is missing, so `run` cannot run it ([pipeline.deps-exist], 1.1)
    action: Literal["run", "restore", "blocked"] = "run"

    @property
    def downstream(self) -> bool:
        """Runs only because an upstream stage runs: early cutoff may skip it."""
        return all(r.code == "upstream" for r in self.reasons)

    @property
    def codes(self) -> tuple[ReasonCode, ...]:
        return tuple(r.code for r in self.reasons)


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    to_run: tuple[StageDecision, ...]  # in run order ([stale.order])
    up_to_date: tuple[str, ...]
    frozen: tuple[str, ...] = ()
    selected: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> int:
        return sum(not d.downstream for d in self.to_run)

    @property
    def downstream(self) -> int:
        return sum(d.downstream for d in self.to_run)

    @property
    def restore(self) -> int:
        return sum(d.action == "restore" for d in self.to_run)

    @property
    def blocked(self) -> int:
        return sum(d.action == "blocked" for d in self.to_run)

    def missing(self) -> list[tuple[str, str]]:
        """(stage, path) of each missing source dep ([pipeline.deps-exist]), in run order."""
        return [(d.name, r.path or "") for d in self.to_run for r in d.reasons
                if r.code == "dep_missing"]

    def summary(self) -> str:
        """One line, in the manner of Terraform's plan."""
        n = len(self.to_run)
        frozen = f", {len(self.frozen)} frozen" if self.frozen else ""
        if n == 0:
            return f"Nothing to run: {_count(len(self.up_to_date), 'stage')} up to date{frozen}."
        cached = f"; {self.restore} from the cache" if self.restore else ""
        blocked = f"; {self.blocked} blocked by a missing dep" if self.blocked else ""
        return (f"{_count(n, 'stage')} to run ({self.changed} changed, {self.downstream} "
                f"downstream{cached}{blocked}), {len(self.up_to_date)} up to date{frozen}.")


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def decide(pipeline: Pipeline, lock: Lock | None, observer: Observer, *,
           targets: Collection[str] = (), force: bool = False,
           force_stages: Collection[str] = (), use_cache: bool = True,
           pipeline_file: str = "pipeline.yaml") -> Plan:
    """[stale.decision]: the stages to run, in order, each with its ordered reasons.

    `targets` restricts the plan to those stages and what they need ([stale.selection]);
    `force` forces every selected stage, `force_stages` those named ([stale.force]).
    A stage whose outputs the cache holds for its input signature is to be restored, when
    the observer can tell (`has_outputs`) and `use_cache` ([exec.cache]).
    A dep that no stage produces and that is not there is a `dep_missing` reason: its stage,
    and the stages that wait on it, are `blocked` ([pipeline.deps-exist]). Raises SpecError
    when a selected stage waits on an output of a frozen stage that is missing
    ([stale.frozen-missing]).
    """
    has_outputs = getattr(observer, "has_outputs", None) if use_cache else None
    deps = graph.dependencies(pipeline)
    names = graph.upstream_closure(deps, targets) if targets else set(pipeline.stages)
    order = graph.topological_order(deps, names)
    index = graph.output_index(pipeline)
    entries = lock.stages if lock is not None else {}
    frozen = [n for n in order if pipeline.stages[n].frozen and n not in force_stages]
    missing = check_sources(pipeline, order, set(frozen), index, observer, pipeline_file)
    running: set[str] = set()
    blocked: set[str] = set()
    to_run: list[StageDecision] = []
    up_to_date: list[str] = []
    for name in order:
        if name in frozen:  # [stale.frozen]
            continue
        stage = pipeline.stages[name]

        def pending(path: str) -> bool:
            return bool(running) and any(p in running for p, _ in index.producers(path))

        forced = name in force_stages or force
        reasons = stage_reasons(stage, entries.get(name), observer, forced=forced,
                                pending=pending, missing=missing.get(name, ()))
        upstream = sorted((d for d in deps[name] if d in running), key=utf16_key)
        if upstream and name in entries:  # [stale.upstream]; never with never_run
            reasons.append(Reason(code="upstream", stages=tuple(upstream)))
        if not reasons:
            up_to_date.append(name)
            continue
        running.add(name)
        if name in missing or any(d in blocked for d in deps[name]):
            blocked.add(name)  # [pipeline.deps-exist]: it cannot run, nor what waits on it
            to_run.append(StageDecision(name=name, reasons=tuple(reasons), action="blocked"))
            continue
        restore = has_outputs is not None and not forced and not upstream and \
            _restorable(stage, observer, pending, has_outputs)
        to_run.append(StageDecision(name=name, reasons=tuple(reasons),
                                    action="restore" if restore else "run"))
    return Plan(to_run=tuple(to_run), up_to_date=tuple(up_to_date), frozen=tuple(frozen),
                selected=tuple(order))


def _restorable(stage: Stage, observer: Observer, pending: Any, has_outputs: Any) -> bool:
    """[exec.cache]: whether the cache holds this stage's outputs for its inputs now."""
    if not cacheable(stage) or any(pending(d.path) for d in stage.deps):
        return False
    inputs = inputs_of(stage, observer)
    return inputs is not None and bool(has_outputs(input_signature(stage, inputs, observer)))


def check_sources(pipeline: Pipeline, order: Collection[str], frozen: Collection[str],
                  index: graph.OutputIndex, observer: Observer,
                  pipeline_file: str) -> dict[str, list[str]]:
    """The deps of selected stages that are missing and that no running stage will produce.
    A source dep (no stage produces it) is returned, by stage: it is a `dep_missing` reason,
    not an error ([pipeline.deps-exist], 1.1). An output of a frozen stage raises SpecError
    ([stale.frozen-missing], `semantic/frozen_output_missing`)."""
    from ..files.errors import SpecError, diagnostic
    problems = []
    missing: dict[str, list[str]] = {}
    for name in order:
        if name in frozen:
            continue
        for d in pipeline.stages[name].deps:
            producers = sorted({p for p, _ in index.producers(d.path)}, key=utf16_key)
            if any(p not in frozen for p in producers) or observer.path_state(d.path):
                continue
            if not producers:
                missing.setdefault(name, []).append(d.path)
            else:
                problems.append(diagnostic(
                    "semantic", "frozen_output_missing", pipeline_file,
                    f"dep {d.path!r} of stage {name!r} is missing, and the stage that "
                    f"produces it, {', '.join(map(repr, producers))}, is frozen",
                    hint=f"unfreeze it, or run it once with: reftool run --force "
                    f"{producers[0]}", anchor="stale.frozen-missing"))
    if problems:
        raise SpecError(problems)
    return missing


def missing_dep_diagnostics(plan: Plan, pipeline_file: str) -> list[Any]:
    """`semantic/dep_missing` for each missing source dep of a plan: what `run` says of the
    stages it cannot run ([pipeline.deps-exist])."""
    from ..files.errors import diagnostic
    return [diagnostic("semantic", "dep_missing", pipeline_file,
                       f"dep {path!r} of stage {name!r} does not exist and no stage produces "
                       "it; the stage and those that wait on it are not run",
                       hint="fetch the data it names (it is not in the project's files)",
                       anchor="pipeline.deps-exist")
            for name, path in plan.missing()]


def effective_params(stage: Stage, observer: Observer, *,
                     skip: Collection[str] = ()) -> dict[str, list[str]]:
    """Each params file of a stage and the pointers read from it, whole files expanded
    ([params.whole-file], [template.inputs]); the files in `skip` are left out."""
    found: dict[str, list[str]] = {}
    for ref in stage.params:
        if ref.file in skip:
            continue
        pointers = found.setdefault(ref.file, [])
        keys = [pointer_for(k) for k in observer.params_file(ref.file)] if ref.whole \
            else list(ref.pointers)
        pointers.extend(k for k in keys if k not in pointers)
    return found


def param_value(observer: Observer, file: str, pointer: str) -> Any:
    from ..files.values import resolve_pointer
    try:
        return resolve_pointer(observer.params_file(file), pointer)
    except KeyError:
        return ABSENT


def stage_reasons(stage: Stage, entry: LockEntry | None, observer: Observer, *,
                  forced: bool = False, pending: Any = lambda path: False,
                  missing: Collection[str] = ()) -> list[Reason]:
    """The reasons of one stage, in the order of [stale.reasons]; `upstream` is added by
    `decide`. `pending(path)` tells whether an upstream stage will rewrite a dep or a params
    file; `missing` are its source deps that are not there ([pipeline.deps-exist]).
    [stale.never-run]: with no lock entry the only other reasons are `forced` and
    `dep_missing`; [stale.force]: a forced stage with an entry lists every other reason."""
    gone = [Reason(code="dep_missing", path=p,
                   old=entry.deps[p].digest if entry is not None and p in entry.deps
                   else ABSENT) for p in missing]
    if entry is None:
        return [Reason(code="never_run")] + ([Reason(code="forced")] if forced else []) + \
            sorted(gone, key=Reason.sort_key)
    reasons: list[Reason] = []
    if forced:
        reasons.append(Reason(code="forced"))
    if stage.always_run:
        reasons.append(Reason(code="always_run"))
    reasons += _definition(stage, entry)
    if tuple(entry.cmd) != stage.cmd:
        reasons.append(Reason(code="command_changed", old=list(entry.cmd), new=list(stage.cmd)))
    reasons += _env(stage, entry, observer)
    reasons += _deps(stage, entry, observer, lambda p: pending(p) or p in missing) + gone
    reasons += _params(stage, entry, observer, pending)
    reasons += _outputs(stage, entry, observer)
    return sorted(reasons, key=Reason.sort_key)


def _definition(stage: Stage, entry: LockEntry) -> list[Reason]:
    out = []
    if entry.wdir != stage.wdir:
        out.append(Reason(code="definition_changed", key="wdir", old=entry.wdir,
                          new=stage.wdir))
    declared = {o.path: {"cache": o.cache, "persist": o.persist} for o in stage.outputs}
    locked = {p: {"cache": o.cache, "persist": o.persist} for p, o in entry.outs.items()}
    for path in sorted(declared.keys() | locked.keys(), key=utf16_key):
        if declared.get(path) != locked.get(path):
            out.append(Reason(code="definition_changed", key="outs", path=path,
                              old=locked.get(path, ABSENT), new=declared.get(path, ABSENT)))
    return out


def _env(stage: Stage, entry: LockEntry, observer: Observer) -> list[Reason]:
    out = []
    for name in sorted(set(stage.env) | set(entry.env), key=utf16_key):
        # [security.secrets]: compared as recorded, so a value the lock holds of a variable
        # now recorded by digest is compared by its digest, and no value is shown
        old = stage_env_record(stage, name, entry.env[name]) if name in entry.env else ABSENT
        new = recorded_env(stage, name, observer) if name in stage.env else ABSENT
        if old is ABSENT or new is ABSENT or old != new:
            out.append(Reason(code="env_changed", key=name, old=old, new=new))
    return out


def _deps(stage: Stage, entry: LockEntry, observer: Observer, pending: Any) -> list[Reason]:
    out = []
    declared = [d.path for d in stage.deps]
    for d in stage.deps:
        path = d.path
        if path not in entry.deps:
            out.append(Reason(code="dep_added", path=path))
        elif not pending(path):
            state = observer.path_state(path, d.exclude)
            out += _rules_changed(path, entry.deps[path], state)
            old = entry.deps[path].digest
            if state is None or state.digest != old:
                out.append(Reason(code="dep_modified", path=path, old=old,
                                  new=None if state is None else state.digest))
    for path in entry.deps:
        if path not in declared:
            out.append(Reason(code="dep_removed", path=path))
    return out


def _params(stage: Stage, entry: LockEntry, observer: Observer,
            pending: Any = lambda path: False) -> list[Reason]:
    """Params reasons; a params file an upstream stage will rewrite is not read: its values
    are not yet known ([pipeline.params-edge])."""
    out: list[Reason] = []
    waiting = {ref.file for ref in stage.params if pending(ref.file)}
    declared = effective_params(stage, observer, skip=waiting)
    for file, pointers in declared.items():
        locked = entry.params.get(file, {})
        for pointer in pointers:
            new = param_value(observer, file, pointer)
            if pointer not in locked:
                out.append(Reason(code="param_added", file=file, key=pointer, new=new))
            elif new is ABSENT or not canonical_equal(locked[pointer], new):
                out.append(Reason(code="param_changed", file=file, key=pointer,
                                  old=locked[pointer], new=new))
    for file, values in entry.params.items():
        for pointer, old in values.items():
            if file not in waiting and pointer not in declared.get(file, ()):
                out.append(Reason(code="param_removed", file=file, key=pointer, old=old))
    return out


def _outputs(stage: Stage, entry: LockEntry, observer: Observer) -> list[Reason]:
    out = []
    for o in stage.outputs:
        state = observer.path_state(o.path, o.exclude)
        if o.path in entry.outs:
            out += _rules_changed(o.path, entry.outs[o.path].state, state)
        if state is None:
            out.append(Reason(code="output_missing", path=o.path))
        elif o.path in entry.outs and entry.outs[o.path].state.digest != state.digest:
            out.append(Reason(code="output_modified", path=o.path,
                              old=entry.outs[o.path].state.digest, new=state.digest))
    return out


def _rules_changed(path: str, old: FileState, new: FileState | None) -> list[Reason]:
    """[lock.rules]: a directory hashed under other rules than its lock entry names."""
    if new is None or old.rules == new.rules:
        return []
    return [Reason(code="definition_changed", key="rules", path=path,
                   old=ABSENT if old.rules is None else old.rules,
                   new=ABSENT if new.rules is None else new.rules)]


# ---------------------------------------------------------------------------------- recording

class NotRecordable(Exception):
    """A stage's inputs or outputs are not all there, so no lock entry can say what it ran with."""


def record(stage: Stage, observer: Observer) -> LockEntry:
    """The lock entry of a stage that has just completed ([lock.contents], [exec.record])."""
    def state(path: str, role: str, exclude: tuple[str, ...]) -> FileState:
        found = observer.path_state(path, exclude)
        if found is None:
            raise NotRecordable(f"{role} {path!r} of stage {stage.name!r} does not exist")
        return found

    params: dict[str, dict[str, Any]] = {}
    for file, pointers in effective_params(stage, observer).items():
        values = params.setdefault(file, {})
        for pointer in pointers:
            value = param_value(observer, file, pointer)
            if value is ABSENT:
                raise NotRecordable(f"params key {pointer!r} is not in {file!r}")
            values[pointer] = value
    return LockEntry(
        cmd=stage.cmd, wdir=stage.wdir,
        deps={d.path: state(d.path, "dep", d.exclude) for d in stage.deps},
        params=params,
        env={name: recorded_env(stage, name, observer) for name in stage.env},
        outs={o.path: OutState(state=state(o.path, "output", o.exclude), cache=o.cache,
                               persist=o.persist) for o in stage.outputs},
    )


def input_signature(stage: Stage, entry: LockEntry, observer: Any = None) -> str:
    """[digest.signature]: the key of a stage's outputs in the cache, from what it ran with."""
    from ..files.values import params_digest
    return params_digest({
        "cmd": list(entry.cmd), "wdir": entry.wdir,
        "deps": {p: s.digest for p, s in entry.deps.items()},
        "params": {f: dict(v) for f, v in entry.params.items()},
        "env": {n: _signature_env(v) for n, v in entry.env.items()},
        "outs": {o.path: _signature_out(o, observer) for o in stage.outputs},
    })


def _signature_env(value: EnvValue) -> Any:
    """[digest.signature]: a value as a string or null; 1.1: a digest as {"digest": ...}."""
    return {"digest": value.digest} if isinstance(value, EnvDigest) else value


def recorded_env(stage: Stage, name: str, observer: Observer) -> EnvValue:
    """[pipeline.env-record]: the variable's value, or its digest ([security.secrets])."""
    return stage_env_record(stage, name, observer.env(name))


def _signature_out(o: Any, observer: Any) -> dict[str, Any]:
    """An output's part of [digest.signature]; 1.1: with `rules` when it is a directory with
    rules ([lock.rules]), so that outputs cached under other rules are never restored."""
    out: dict[str, Any] = {"cache": o.cache, "persist": o.persist}
    rules = observer.rules_digest(o.path, o.exclude) if observer is not None else None
    if rules is not None:
        out["rules"] = rules
    return out


def cacheable(stage: Stage) -> bool:
    """[exec.cache]: whether a stage's outputs may be restored from the cache instead of run."""
    return not stage.always_run and bool(stage.outputs) and all(
        o.cache and not o.persist for o in stage.outputs)


def inputs_of(stage: Stage, observer: Observer) -> LockEntry | None:
    """What a stage would run with now (outputs left empty); None when a dep is missing."""
    deps = {}
    for d in stage.deps:
        state = observer.path_state(d.path, d.exclude)
        if state is None:
            return None
        deps[d.path] = state
    params: dict[str, dict[str, Any]] = {}
    for file, pointers in effective_params(stage, observer).items():
        params[file] = {p: param_value(observer, file, p) for p in pointers}
        if any(v is ABSENT for v in params[file].values()):
            return None
    return LockEntry(cmd=stage.cmd, wdir=stage.wdir, deps=deps, params=params,
                     env={n: recorded_env(stage, n, observer) for n in stage.env}, outs={})


# ---------------------------------------------------------------------------------- JSON

def reason_dict(r: Reason) -> dict[str, Any]:
    """A reason as `schemas/plan.schema.json` writes it: param values as typed value trees,
    env values as {"str": ...} or {"null": null}; absent values are left out."""
    d: dict[str, Any] = {"code": r.code}
    for name in ("path", "file", "key"):
        value = getattr(r, name)
        if value is not None:
            d[name] = value
    for name in ("old", "new"):
        value = getattr(r, name)
        if value is ABSENT:
            continue
        if r.code.startswith("param_"):
            d[name] = typed_tree(value)
        elif r.code == "env_changed":
            d[name] = env_dict(value)
        else:
            d[name] = value
    if r.stages:
        d["stages"] = list(r.stages)
    return d


def plan_dict(plan: Plan) -> dict[str, Any]:
    from .. import __version__
    from ..files.spec import WRITTEN_VERSION_TEXT
    # [version.write]: a plan that uses a 1.1 addition (dep_missing, blocked, an env digest)
    # says 1.1
    digests = any(isinstance(v, EnvDigest) for d in plan.to_run for r in d.reasons
                  if r.code == "env_changed" for v in (r.old, r.new))
    return {
        "version": "1.1" if plan.blocked or digests else WRITTEN_VERSION_TEXT,
        "tool": {"name": "reftool", "version": __version__},
        "summary": {"to_run": len(plan.to_run), "changed": plan.changed,
                    "downstream": plan.downstream, "restore": plan.restore,
                    "up_to_date": len(plan.up_to_date),
                    "frozen": len(plan.frozen), "text": plan.summary(),
                    **({"blocked": plan.blocked} if plan.blocked else {})},
        "stages": [{"name": d.name, "action": d.action, "downstream": d.downstream,
                    "reasons": [reason_dict(r) for r in d.reasons]} for d in plan.to_run],
        "up_to_date": list(plan.up_to_date),
        "frozen": list(plan.frozen),
    }
