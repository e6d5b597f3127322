"""Frozen data classes of the file formats: SPEC sections 6, 9 and 12.

Raw dictionaries stay in the loaders; everything past them works on these.
"""

from __future__ import annotations

import hashlib
import json
import math
from json.encoder import encode_basestring as _encode_string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .spec import OutputSection, secret_looking
from . import values
from .values import from_typed_tree, sorted_items, typed_tree

JsonPathT = tuple[str | int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Dep:
    path: str
    index: int  # position in the stage's `deps` list, to locate it in the file
    exclude: tuple[str, ...] = ()  # 1.1, directories only: [digest.ignore]

    @property
    def is_dir(self) -> bool:
        return self.path.endswith("/")  # [paths.directory]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlotDefinition:
    """How a plots output is drawn (1.1, [plots.definition]); no input of its stage."""

    template: Literal["line", "scatter", "bar", "confusion"]
    x: str
    y: str
    count: str | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Output:
    path: str
    section: OutputSection
    index: int
    cache: bool
    persist: bool
    kind: Literal["summary", "series", "plain"] | None = None  # metrics outputs only
    exclude: tuple[str, ...] = ()  # 1.1, directories only: [digest.ignore]
    plot: PlotDefinition | None = None  # 1.1, plots outputs only: [plots.definition]

    @property
    def is_dir(self) -> bool:
        return self.path.endswith("/")


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamsRef:
    """A params file and the pointers a stage reads from it ([params.pointer])."""

    file: str
    pointers: tuple[str, ...]  # empty when `whole`
    whole: bool = False  # "*": every top-level key ([params.whole-file])
    from_template: bool = False  # recorded by templating ([template.inputs])


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    name: str
    base: str  # the key under `stages` that defines it; differs from `name` when generated
    cmd: tuple[str, ...]
    wdir: str
    desc: str | None
    deps: tuple[Dep, ...]
    params: tuple[ParamsRef, ...]
    env: tuple[str, ...]
    outputs: tuple[Output, ...]
    always_run: bool
    frozen: bool
    resources: Mapping[str, Any] = field(default_factory=dict)  # [pipeline.resources]
    #: the env names whose lock entry records a digest, never the value ([pipeline.env-record])
    env_digest: frozenset[str] = frozenset()

    @property
    def source(self) -> JsonPathT:
        return ("stages", self.base)


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricDeclaration:
    name: str
    direction: Literal["lower", "higher"] | None
    summary: Literal["last", "min", "max", "best"]
    tolerance: float | None = None  # 1.1: [metrics.tolerance]


@dataclass(frozen=True, slots=True, kw_only=True)
class Pipeline:
    file: str
    version: str
    stages: Mapping[str, Stage]
    vars: tuple[str, ...]
    metrics: Mapping[str, MetricDeclaration]
    description: str | None = None


# ---------------------------------------------------------------------------------- the lock

@dataclass(frozen=True, slots=True, kw_only=True)
class FileState:
    """What a dep or output was: [lock.contents]."""

    digest: str
    size: int
    files: int | None = None  # directories only
    rules: str | None = None  # 1.1: the digest of the rules a directory was hashed under


@dataclass(frozen=True, slots=True, kw_only=True)
class OutState:
    state: FileState
    cache: bool
    persist: bool


@dataclass(frozen=True, slots=True)
class EnvDigest:
    """An env variable recorded by its digest, never its value ([security.secrets])."""

    digest: str


#: What a lock entry records of an env variable: its value, None when unset, or its digest.
EnvValue = str | None | EnvDigest


def env_digest(name: str, value: str) -> EnvDigest:
    """SPEC [security.secrets]: `sha256:` and the hex SHA-256 of the bytes NAME `=` VALUE (the
    value's bytes as the environment holds them: os.environ's surrogate escapes undone)."""
    data = name.encode("ascii") + b"=" + value.encode("utf-8", "surrogateescape")
    return EnvDigest("sha256:" + hashlib.sha256(data).hexdigest())


def env_record(name: str, value: EnvValue, *, digest: bool) -> EnvValue:
    """The form in which an env value is recorded and compared ([pipeline.env-record]): a
    value of a variable recorded by digest becomes its digest (an unset one stays None)."""
    if digest and isinstance(value, str):
        return env_digest(name, value)
    return value


def stage_env_record(stage: Stage, name: str, value: EnvValue) -> EnvValue:
    return env_record(name, value, digest=name in stage.env_digest)


def default_env_digest(name: str, record: str | None) -> bool:
    """[pipeline.env-record]: `record` when written, else `digest` for a secret-looking name."""
    return record == "digest" if record is not None else secret_looking(name)


@dataclass(frozen=True, slots=True, kw_only=True)
class LockEntry:
    cmd: tuple[str, ...]
    wdir: str
    deps: Mapping[str, FileState]
    params: Mapping[str, Mapping[str, Any]]  # file -> pointer -> value
    env: Mapping[str, EnvValue]
    outs: Mapping[str, OutState]


@dataclass(frozen=True, slots=True, kw_only=True)
class Lock:
    version: str
    stages: Mapping[str, LockEntry]


def _state_dict(s: FileState) -> dict[str, Any]:
    d: dict[str, Any] = {"digest": s.digest, "size": s.size}
    if s.files is not None:
        d["files"] = s.files
    if s.rules is not None:  # [lock.rules]
        d["rules"] = s.rules
    return d


def _state(d: Mapping[str, Any]) -> FileState:
    return FileState(digest=d["digest"], size=d["size"], files=d.get("files"),
                     rules=d.get("rules"))


def env_dict(v: EnvValue) -> dict[str, Any]:
    """[lock.contents]: {"str": value}, {"null": null}, or (1.1) {"digest": ...}."""
    if isinstance(v, EnvDigest):
        return {"digest": v.digest}
    return {"null": None} if v is None else {"str": v}


def env_from_dict(d: Mapping[str, Any]) -> EnvValue:
    if "digest" in d:
        return EnvDigest(d["digest"])
    return d.get("str")


def hide_secrets(entry: LockEntry, stage: Stage) -> LockEntry:
    """[security.secrets]: a lock entry whose env values the stage records by digest hold
    their digests (an entry written before the name was so recorded may hold the value)."""
    env = {n: stage_env_record(stage, n, v) for n, v in entry.env.items()}
    if env == dict(entry.env):
        return entry
    return LockEntry(cmd=entry.cmd, wdir=entry.wdir, deps=entry.deps, params=entry.params,
                     env=env, outs=entry.outs)


def entry_to_dict(e: LockEntry) -> dict[str, Any]:
    return {
        "cmd": list(e.cmd),
        "wdir": e.wdir,
        "deps": {p: _state_dict(s) for p, s in e.deps.items()},
        "params": {f: {k: typed_tree(v) for k, v in kv.items()} for f, kv in e.params.items()},
        "env": {n: env_dict(v) for n, v in e.env.items()},
        "outs": {p: {**_state_dict(o.state), "cache": o.cache, "persist": o.persist}
                 for p, o in e.outs.items()},
    }


def entry_from_dict(d: Mapping[str, Any]) -> LockEntry:
    """A lock entry from a dictionary that the lock schema accepted."""
    return LockEntry(
        cmd=tuple(d["cmd"]),
        wdir=d["wdir"],
        deps={p: _state(s) for p, s in d["deps"].items()},
        params={f: {k: from_typed_tree(v) for k, v in kv.items()}
                for f, kv in d["params"].items()},
        env={n: env_from_dict(v) for n, v in d["env"].items()},
        outs={p: OutState(state=_state(o), cache=o["cache"], persist=o["persist"])
              for p, o in d["outs"].items()},
    )


def lock_to_dict(lock: Lock) -> dict[str, Any]:
    """[version.write]: a lock that records rules ([lock.rules], 1.1) or an env digest
    ([security.secrets], 1.1) declares at least 1.1."""
    version = lock.version
    if version == "1.0" and any(_uses_1_1(e) for e in lock.stages.values()):
        version = "1.1"
    return {"version": version,
            "stages": {n: entry_to_dict(e) for n, e in lock.stages.items()}}


def _uses_1_1(e: LockEntry) -> bool:
    states = [*e.deps.values(), *(o.state for o in e.outs.values())]
    return any(s.rules is not None for s in states) or \
        any(isinstance(v, EnvDigest) for v in e.env.values())


def lock_from_dict(d: Mapping[str, Any]) -> Lock:
    return Lock(version=d["version"],
                stages={n: entry_from_dict(e) for n, e in d["stages"].items()})


def canonical_order(value: Any) -> Any:
    """The same JSON value with object members in UTF-16 order at every level."""
    if isinstance(value, dict):
        return {k: canonical_order(v) for k, v in sorted_items(value)}
    if isinstance(value, list):
        return [canonical_order(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """[lock.canonical]: the one serialization of a lock and of experiment records: members in
    UTF-16 order, two-space indentation, strings escaped as JCS does, integers in decimal, floats
    by ECMAScript Number::toString ([values.float-text]: `3.0` is `3`, `1e-07` is `1e-7`), NaN
    and the infinities as the strings of [metrics.nonfinite]; one final LF.

    Written in one pass into one list (issue 18: the lock of a 10,000-stage run is 8 MB, and
    an encoder per string made writing it 0.75 s)."""
    out: list[str] = []
    _emit(value, "\n", out)
    out.append("\n")
    return "".join(out)


def _emit(value: Any, newline: str, out: list[str]) -> None:
    """`value` appended to `out`; `newline` is a line break and the indentation of its level."""
    kind = type(value)
    if kind is str:
        out.append(_string(value))
    elif kind is int:
        out.append(int.__repr__(value))
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = newline + "  "
        lead = "{" + inner
        for k, v in sorted_items(value):
            kind = type(v)
            if kind is str:  # the common leaves, without a call of their own
                out.append(f"{lead}{_string(k)}: {_string(v)}")
            elif kind is int:
                out.append(f"{lead}{_string(k)}: {int.__repr__(v)}")
            else:
                out.append(f"{lead}{_string(k)}: ")
                _emit(v, inner, out)
            lead = "," + inner
        out.append(newline + "}")
    elif isinstance(value, list):
        if not value:
            out.append("[]")
            return
        inner = newline + "  "
        lead = "[" + inner
        for v in value:
            if type(v) is str:
                out.append(lead + _string(v))
            else:
                out.append(lead)
                _emit(v, inner, out)
            lead = "," + inner
        out.append(newline + "]")
    elif isinstance(value, float):
        text = values.float_text(value)
        out.append(text if math.isfinite(value) else _string(text))
    elif isinstance(value, str):
        out.append(_string(value))
    else:
        out.append(json.dumps(value))  # null, true, false, integers


def _string(text: str) -> str:
    return _encode_string(text)  # JCS escapes: \", \\, \n ..., \u00xx; no other escaping


def canonical_lock_text(lock: Lock) -> str:
    return canonical_json(lock_to_dict(lock))
