"""Property-based conformance tests, driven through the adapter protocol like the fixed cases.

Each property takes an `Adapter` and is run with Hypothesis (derandomized, no example
database). The oracle is the reference implementation run in this process, or an invariant of
SPEC.md. When a property fails, the shrunk example is written in the case format to
`failures/<property>.json`, ready to become a fixed case.
"""

from __future__ import annotations

import json
import math
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from classes import OP_CLASSES  # noqa: E402
FAILURES = HERE / "failures"
SETTINGS = settings(derandomize=True, database=None, deadline=None, max_examples=60,
                    suppress_health_check=list(HealthCheck))
_SETTINGS, _given = SETTINGS, given

# keys biased to the characters where orders and escapes differ between languages
KEY_CHARS = st.sampled_from(["a", "B", "z", "_", "é", "\u00ff", "\ue000", "\uffff",
                             "\U00010000", "\U0001f600", "\x01", "/", "~", "."])
keys = st.text(KEY_CHARS, min_size=0, max_size=3)
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([1e-7, 1e21, 1e20, 0.1, 5e-324, -0.0, 1.0, 123456789012345680000.0]))
ints = st.one_of(st.integers(-10**30, 10**30), st.sampled_from([2**53, 2**53 + 1, -2**63]))
scalars = st.one_of(st.none(), st.booleans(), ints, floats, st.text(KEY_CHARS, max_size=4))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=12)


def use_seed(seed: int | None) -> None:
    """Run the properties from this seed (None: derandomized, the default) - for the
    harness's --seed, so that an outside adapter's run can be repeated."""
    global SETTINGS, given
    if seed is None:
        SETTINGS, given = _SETTINGS, _given
        return
    SETTINGS = settings(_SETTINGS, derandomize=False)

    def seeded(*args: Any, **kw: Any) -> Callable[[Any], Any]:
        return lambda test: hypothesis_seed(seed)(_given(*args, **kw)(test))
    given = seeded


def _record(name: str, case: dict[str, Any]) -> None:
    FAILURES.mkdir(exist_ok=True)
    case = {"id": f"NEW-{name}", "title": f"found by the property {name}", "anchors": [],
            "since": "1.0", "tags": ["required"],
            "classes": OP_CLASSES.get(case.get("op", ""), ["reader"]), **case}
    (FAILURES / f"{name}.json").write_text(json.dumps([case], indent=1, ensure_ascii=True)
                                           + "\n")


def _check(name: str, condition: bool, case: dict[str, Any]) -> None:
    if not condition:
        _record(name, case)
        raise AssertionError(f"{name}: {json.dumps(case, ensure_ascii=True)[:500]}")


def _json_safe(value: Any) -> bool:
    """Whether JSON text keeps the value's type: no NaN or infinity, no -0.0, no integral
    float (JSON has 1.0, read back as a float: fine), no surrogate-free issue."""
    if isinstance(value, float):
        return math.isfinite(value) and not (value == 0 and math.copysign(1, value) < 0)
    if isinstance(value, list):
        return all(_json_safe(v) for v in value)
    if isinstance(value, dict):
        return all(_json_safe(v) for v in value.values())
    return True


def _shuffled(tree: Any, rng: random.Random) -> Any:
    """The same typed tree with its map members in another order."""
    if isinstance(tree, dict) and "map" in tree:
        items = list(tree["map"].items())
        rng.shuffle(items)
        return {"map": {k: _shuffled(v, rng) for k, v in items}}
    if isinstance(tree, dict) and "list" in tree:
        return {"list": [_shuffled(v, rng) for v in tree["list"]]}
    return tree


# ---------------------------------------------------------------------------------- properties

def canonical_forms(adapter: Any) -> None:
    """[values.jcs], [values.float-text]: canonical text agrees with the reference, and does
    not depend on the order in which map members come."""
    from reftool.files.values import jcs, typed_tree

    @SETTINGS
    @given(value=values, seed=st.integers(0, 2**16))
    def prop(value: Any, seed: int) -> None:
        tree = typed_tree(value)
        expected = jcs(tree).decode("utf-8")
        payloads: list[dict[str, Any]] = [{"value": tree},
                                          {"value": _shuffled(tree, random.Random(seed))}]
        if _json_safe(value):  # the same value as a JSON params file, laid out another way
            payloads.append({"format": "json", "text": json.dumps(
                {"v": value}, indent=seed % 3 or None, ensure_ascii=bool(seed % 2))})
            expected_json = jcs(typed_tree({"v": value})).decode("utf-8")
        for payload in payloads:
            want = expected_json if "text" in payload else expected
            got = adapter.run("canonicalize", payload).get("result", {}).get("text")
            if got is None and "text" in payload and "skipped" in adapter.run(
                    "canonicalize", payload):
                continue  # an implementation without a JSON parser
            _check("canonical_forms", got == want, {
                "op": "canonicalize", "input": payload, "expected": {"result": {"text": want}}})
    prop()


def params_digests_sensitive(adapter: Any) -> None:
    """[params.digest]: changing any leaf, or an int to a float, changes the digest."""
    @SETTINGS
    @given(value=st.dictionaries(keys, scalars, min_size=1, max_size=5), pick=st.integers(0, 99))
    def prop(value: dict[str, Any], pick: int) -> None:
        from reftool.files.values import typed_tree
        key = sorted(value)[pick % len(value)]
        changed = dict(value)
        old = value[key]
        changed[key] = 1.0 if old == 1 and type(old) is int else (
            1 if not (isinstance(old, int) and old == 1) else 2)
        if typed_tree(changed) == typed_tree(value):
            return
        a = adapter.run("digest", {"kind": "params", "value": typed_tree(value)})
        b = adapter.run("digest", {"kind": "params", "value": typed_tree(changed)})
        _check("params_digests_sensitive", a.get("result") != b.get("result"), {
            "op": "digest", "input": {"kind": "params", "value": typed_tree(changed)},
            "expected": {"note": "differs from the digest of the unchanged value"}})
    prop()


def file_digests(adapter: Any) -> None:
    """[digest.file]: the digest of raw bytes, line endings included."""
    import base64
    import hashlib

    @SETTINGS
    @given(data=st.lists(st.sampled_from([b"a", b"\r\n", b"\n", b"\r", b"\x00", b"\xff"]),
                         max_size=20).map(b"".join))
    def prop(data: bytes) -> None:
        payload = {"kind": "file", "base64": base64.b64encode(data).decode()}
        want = "sha256:" + hashlib.sha256(data).hexdigest()
        got = adapter.run("digest", payload).get("result", {}).get("digest")
        _check("file_digests", got == want, {"op": "digest", "input": payload,
                                             "expected": {"result": {"digest": want}}})
    prop()


TROUBLE = ["on", "off", "yes", "no", "y", "n", "Yes", "ON", "1e-3", "1E5", "010", "0o17",
           "0x1F", "1_000", "0b11", ".5", "5.", "+1", "-0", "~", "null", "Null", "true",
           "TRUE", "2024-01-31", "12:30", ".inf", ".NaN", "1e400", "0.1"]


def yaml_scalars(adapter: Any) -> None:
    """[values.yaml-core]: plain YAML scalars are read by the YAML 1.2 core schema."""
    from reftool.files.documents import parse
    from reftool.files.values import typed_tree

    @SETTINGS
    @given(words=st.lists(st.one_of(st.sampled_from(TROUBLE),
                                    st.integers(-999, 999).map(str)), min_size=1, max_size=6))
    def prop(words: list[str]) -> None:
        text = "".join(f"k{i}: {w}\n" for i, w in enumerate(words))
        want = typed_tree(parse(text, display="x", fmt="yaml").value)
        payload = {"format": "yaml", "text": text}
        got = adapter.run("load", payload).get("result", {}).get("value")
        _check("yaml_scalars", got == want, {"op": "load", "input": payload,
                                             "expected": {"result": {"value": want}}})
    prop()


def version_gate(adapter: Any) -> None:
    """[version.major], [version.minor]: exactly the versions an implementation greets with
    (1.0 to 1.N) are read."""
    @SETTINGS
    @given(major=st.integers(0, 12), minor=st.integers(0, 12))
    def prop(major: int, minor: int) -> None:
        text = f'version: "{major}.{minor}"\nstages:\n  s:\n    cmd: echo\n'
        payload = {"files": {"pipeline.yaml": text}}
        errors = adapter.run("validate", payload).get("result", {}).get("errors", [])
        phases = {e["phase"] for e in errors}
        ok = f"{major}.{minor}" in adapter.hello.get("spec_versions", ["1.0"])
        _check("version_gate", ("version" in phases) != ok, {
            "op": "validate", "input": payload,
            "expected": {"result": {"errors": [] if ok else [
                {"phase": "version", "code": "major_unsupported" if major != 1
                 else "minor_newer"}]}}})
    prop()


# the plan model ------------------------------------------------------------------------

PARAM_VALUES = [1, 1.0, True, "1", 2, None]


@st.composite
def dags(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(2, 6))
    stages = []
    for i in range(n):
        stages.append({
            "ups": sorted(draw(st.sets(st.integers(0, i - 1), max_size=2))) if i else [],
            "raw": draw(st.booleans()),
            "keys": sorted(draw(st.sets(st.integers(0, 2), max_size=2)))})
    return {"stages": stages}


def _pipeline(dag: dict[str, Any], cmd_of: Callable[[int], str]) -> str:
    lines = ['version: "1.0"', "stages:"]
    for i, s in enumerate(dag["stages"]):
        deps = ([f"raw{i}.txt"] if s["raw"] else []) + [f"s{u}.out" for u in s["ups"]]
        lines += [f"  s{i}:", f"    cmd: {cmd_of(i)}", f"    outs: [s{i}.out]"]
        if deps:
            lines.append(f"    deps: [{', '.join(deps)}]")
        if s["keys"]:
            lines.append(f"    params: {{p.yaml: [{', '.join(f'/k{k}' for k in s['keys'])}]}}")
    return "\n".join(lines) + "\n"


def _lock(dag: dict[str, Any], params: dict[str, Any]) -> str:
    from reftool.files.values import typed_tree
    d = "sha256:" + "1" * 64
    stages = {}
    for i, s in enumerate(dag["stages"]):
        deps = {**({f"raw{i}.txt": {"digest": d, "size": 0}} if s["raw"] else {}),
                **{f"s{u}.out": {"digest": d, "size": 0} for u in s["ups"]}}
        stages[f"s{i}"] = {"cmd": [f"make {i}"], "wdir": ".", "deps": deps, "env": {},
                           "params": {"p.yaml": {f"/k{k}": typed_tree(params[f"k{k}"])
                                                 for k in s["keys"]}} if s["keys"] else {},
                           "outs": {f"s{i}.out": {"digest": d, "size": 0, "cache": True,
                                                  "persist": False}}}
    return json.dumps({"version": "1.0", "stages": stages})


def _yaml_value(v: Any) -> str:
    return "null" if v is None else json.dumps(v) if not isinstance(v, float) else repr(v)


def plans(adapter: Any) -> None:
    """[stale.reasons], [stale.upstream], [stale.order]: against a model, for random DAGs and
    one random edit: exactly the stages that use the changed thing are stale on their own
    (a param changing type, or removed from a stage, included), exactly their descendants
    run downstream, in topological order; and with nothing changed, nothing runs."""
    @SETTINGS
    @given(dag=dags(), edit=st.sampled_from(["none", "raw", "param", "unrelated", "cmd",
                                             "output", "remove_param"]),
           which=st.integers(0, 99), new_value=st.sampled_from(PARAM_VALUES))
    def prop(dag: dict[str, Any], edit: str, which: int, new_value: Any) -> None:
        n = len(dag["stages"])
        d = "sha256:" + "1" * 64
        params: dict[str, Any] = {"k0": 1, "k1": 1, "k2": 1, "other": 0}
        lock = _lock(dag, params)
        state = {**{f"raw{i}.txt": d for i in range(n)}, **{f"s{i}.out": d for i in range(n)}}
        cmds: dict[int, str] = {}
        own: set[int] = set()
        stage = which % n
        if edit == "raw" and dag["stages"][stage]["raw"]:
            state[f"raw{stage}.txt"] = "sha256:" + "2" * 64
            own = {stage}
        elif edit == "param":
            key = which % 3
            if new_value == 1 and type(new_value) is int:
                new_value = 2
            params[f"k{key}"] = new_value
            own = {i for i, s in enumerate(dag["stages"]) if key in s["keys"]}
        elif edit == "unrelated":
            params["other"] = 1
        elif edit == "cmd":
            cmds[stage] = f"make {stage} --again"
            own = {stage}
        elif edit == "output":
            state[f"s{stage}.out"] = None
            own = {stage}
        elif edit == "remove_param" and dag["stages"][stage]["keys"]:
            dag = json.loads(json.dumps(dag))
            dag["stages"][stage]["keys"] = dag["stages"][stage]["keys"][1:]
            own = {stage}
        down: set[int] = set()
        for i, s in enumerate(dag["stages"]):
            if i not in own and any(u in own or u in down for u in s["ups"]):
                down.add(i)
        payload = {"pipeline": _pipeline(dag, lambda i: cmds.get(i, f"make {i}")),
                   "lock": lock, "state": state,
                   "files": {"p.yaml": "".join(f"{k}: {_yaml_value(v)}\n"
                                               for k, v in params.items())}}
        got = adapter.run("plan", payload).get("result", {})
        stages = got.get("stages", {})
        got_own = {int(k[1:]) for k, v in stages.items() if not v["downstream"]}
        got_down = {int(k[1:]) for k, v in stages.items() if v["downstream"]}
        order = [int(k[1:]) for k in got.get("order", [])]
        topological = all(order.index(u) < order.index(i) for i in order
                          for u in dag["stages"][i]["ups"] if u in order)
        _check("plans", (got_own, got_down) == (own, down) and topological, {
            "op": "plan", "input": payload,
            "expected": {"note": f"own {sorted(own)}, downstream {sorted(down)}"}})
    prop()


# generated documents ------------------------------------------------------------------

NAME = st.from_regex(r"\A[a-z_][a-z0-9_.-]{0,8}\Z")
# text a YAML double-quoted scalar holds as itself (no surrogates, controls, YAML 1.1 breaks)
COMMAND_CHARS = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
                              blacklist_characters="\x85\ufeff")


@st.composite
def pipelines(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """A valid pipeline file and the files it needs: stages in a chain of their outputs."""
    names = draw(st.lists(NAME, min_size=1, max_size=5, unique_by=str.casefold))
    lines = ['version: "1.0"', "stages:"]
    files = {"in.txt": "x\n", "p.yaml": "a: {b: 1}\nc: [1, 2]\n"}
    for i, name in enumerate(names):
        cmd = draw(st.text(COMMAND_CHARS, min_size=1, max_size=20).filter(str.strip))
        lines += [f'  "{name}":', f"    cmd: {json.dumps(cmd, ensure_ascii=False)}"]
        deps = ["in.txt"] + ([f"out/{i - 1}.txt"] if i else [])
        lines.append(f"    deps: [{', '.join(deps)}]")
        lines.append(f"    outs: [out/{i}.txt]")
        if draw(st.booleans()):
            lines.append("    params: {p.yaml: [/a/b, /c/1]}")
        if draw(st.booleans()):
            env = draw(st.from_regex(r"\A[A-Z_][A-Z0-9_]{0,6}\Z"))
            lines.append(f"    env: [{env}]")
        if draw(st.booleans()):
            lines.append(f"    always_run: {draw(st.sampled_from(['true', 'false']))}")
    return "\n".join(lines) + "\n", files


BREAKS = [("    dpes: [x]\n", "an unknown key"), ("    always_run: yes\n", "a string for a boolean"),
          ("    outs: [../up]\n", "a path that leaves the project"), ("    env: [1X]\n", "a bad name")]


def documents(adapter: Any) -> None:
    """[pipeline.top], [pipeline.stage-keys]: generated valid pipelines are accepted; one
    schema-breaking change makes them rejected with a schema error."""
    @SETTINGS
    @given(doc=pipelines(), broken=st.sampled_from(BREAKS), which=st.integers(0, 9))
    def prop(doc: tuple[str, dict[str, str]], broken: tuple[str, str], which: int) -> None:
        text, files = doc
        payload = {"files": {"pipeline.yaml": text, **files}}
        errors = adapter.run("validate", payload).get("result", {}).get("errors")
        _check("documents", errors == [], {"op": "validate", "input": payload,
                                           "expected": {"result": {"errors": []}}})
        stage_lines = [i for i, line in enumerate(text.split("\n")) if line.startswith("    cmd:")]
        at = stage_lines[which % len(stage_lines)] + 1
        lines = text.split("\n")
        if "outs:" in broken[0]:  # replace that stage's outputs rather than repeat the key
            outs_at = next(i for i in range(at, len(lines)) if lines[i].startswith("    outs:"))
            lines[outs_at] = broken[0].rstrip("\n")
            bad = "\n".join(lines)
        else:
            bad = "\n".join(lines[:at] + [broken[0].rstrip("\n")] + lines[at:])
        payload = {"files": {"pipeline.yaml": bad, **files}}
        errors = adapter.run("validate", payload).get("result", {}).get("errors", [])
        _check("documents", any(e["phase"] in ("schema", "parse") for e in errors), {
            "op": "validate", "input": payload,
            "expected": {"note": f"rejected with a schema error: {broken[1]}"}})
    prop()


@st.composite
def locks(draw: st.DrawFn) -> dict[str, Any]:
    from reftool.files.values import typed_tree
    digest = st.sampled_from(["sha256:" + c * 64 for c in "0123456789abcdef"])
    path_chars = st.sampled_from(["a", "B", "z", "_", "é", "\U0001f600", "\U00010000", "-"])
    paths = st.lists(st.text(path_chars, min_size=1, max_size=3), max_size=3, unique=True)
    stages = {}
    for name in draw(st.lists(NAME, max_size=4, unique=True)):
        stages[name] = {
            "cmd": draw(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=2)),
            "wdir": ".",
            "deps": {p: {"digest": draw(digest), "size": draw(st.integers(0, 10**12))}
                     for p in draw(paths)},
            "params": {"p.yaml": {"/" + k: typed_tree(draw(scalars)) for k in draw(paths)}},
            "env": {"A": {"str": draw(st.text(max_size=5))}},
            "outs": {p: {"digest": draw(digest), "size": 1, "cache": draw(st.booleans()),
                         "persist": False} for p in draw(paths)}}
    return {"version": "1.0", "stages": stages}


def lock_bytes(adapter: Any) -> None:
    """[lock.canonical], [lock.read-canonical]: any valid lock, in any member order and layout,
    is written as the reference's bytes, and writing that again changes nothing."""
    from reftool.files.model import canonical_lock_text, lock_from_dict

    @SETTINGS
    @given(lock=locks(), indent=st.sampled_from([None, 1, 4]))
    def prop(lock: dict[str, Any], indent: int | None) -> None:
        want = canonical_lock_text(lock_from_dict(lock))
        payload = {"text": json.dumps(lock, indent=indent, ensure_ascii=bool(indent))}
        got = adapter.run("lock", payload).get("result", {}).get("text")
        again = adapter.run("lock", {"text": got or ""}).get("result", {}).get("text")
        _check("lock_bytes", got == want and again == want, {
            "op": "lock", "input": payload, "expected": {"result": {"text": want}}})
    prop()


# the state machine ------------------------------------------------------------------------

def state_machine(adapter: Any) -> None:
    """[stale.decision], [exec.record]: over a random pipeline, random edits and runs, the plan
    always matches a model, stays topological, and running what it names (recording it) reaches
    a fixpoint: an empty plan."""
    from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

    class Machine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.dag: dict[str, Any] | None = None

        @rule(dag=dags())
        @precondition(lambda self: self.dag is None)
        def start(self, dag: dict[str, Any]) -> None:
            self.dag = dag
            self.n = len(dag["stages"])
            self.params: dict[str, Any] = {"k0": 1, "k1": 1, "k2": 1, "other": 0}
            self.cmds = {i: f"make {i}" for i in range(self.n)}
            self.raw = {i: 0 for i in range(self.n)}
            self.outs: dict[int, str | None] = {}
            self.lock: str | None = None
            self.dirty: set[int] = set(range(self.n))  # never run
            self.recorded: dict[str, Any] = {}  # the params as the last run recorded them
            self.run_all()

        def payload(self) -> dict[str, Any]:
            assert self.dag is not None
            state = {f"raw{i}.txt": "sha256:" + f"{self.raw[i]:x}" * 64 for i in range(self.n)}
            state.update({f"s{i}.out": self.outs.get(i) for i in range(self.n)})
            return {"pipeline": _pipeline(self.dag, lambda i: self.cmds[i]), "lock": self.lock,
                    "state": state, "files": {"p.yaml": "".join(
                        f"{k}: {_yaml_value(v)}\n" for k, v in self.params.items())}}

        def plan(self) -> dict[str, Any]:
            answer = adapter.run("plan", self.payload())
            _check("state_machine", "result" in answer, {"op": "plan", "input": self.payload(),
                                                        "expected": {"note": str(answer)}})
            return dict(answer["result"])

        def expected(self) -> tuple[set[int], set[int]]:
            assert self.dag is not None
            from reftool.files.values import typed_tree
            own = set(self.dirty)  # params are compared with what was recorded, not with
            for i, s in enumerate(self.dag["stages"]):  # edits: k0 1 -> 1.0 -> 1 is unchanged
                if any(typed_tree(self.params[f"k{k}"]) != typed_tree(self.recorded[f"k{k}"])
                       for k in s["keys"]):
                    own.add(i)
            down: set[int] = set()
            for i, s in enumerate(self.dag["stages"]):
                if i not in own and any(u in own or u in down for u in s["ups"]):
                    down.add(i)
            return own, down

        @rule(i=st.integers(0, 5))
        @precondition(lambda self: self.dag is not None)
        def edit_raw(self, i: int) -> None:
            i %= self.n
            if self.dag and self.dag["stages"][i]["raw"]:
                self.raw[i] += 1
                self.dirty.add(i)

        @rule(k=st.integers(0, 2), value=st.sampled_from(PARAM_VALUES))
        @precondition(lambda self: self.dag is not None)
        def edit_param(self, k: int, value: Any) -> None:
            self.params[f"k{k}"] = value  # expected() compares with the recorded value

        @rule()
        @precondition(lambda self: self.dag is not None)
        def edit_unrelated(self) -> None:
            self.params["other"] += 1

        @rule(i=st.integers(0, 5))
        @precondition(lambda self: self.dag is not None)
        def edit_cmd(self, i: int) -> None:
            i %= self.n
            self.cmds[i] += " x"
            self.dirty.add(i)

        @rule(i=st.integers(0, 5))
        @precondition(lambda self: self.dag is not None)
        def delete_output(self, i: int) -> None:
            i %= self.n
            self.outs[i] = None
            self.dirty.add(i)

        @rule()
        @precondition(lambda self: self.dag is not None)
        def run_all(self) -> None:
            """Run what the plan names: new outputs, then record them."""
            names = self.plan().get("order", [])
            for name in names:
                i = int(name[1:])
                self.outs[i] = "sha256:" + hashlib_hex(f"{name} {self.cmds[i]} {self.raw[i]} "
                                                       f"{self.params} {self.outs}")
            if names:
                request = self.payload()
                # record is given sizes (PROTOCOL.md): a lock records them ([lock.contents])
                request["state"] = {path: None if d is None else {"digest": d, "size": len(path)}
                                    for path, d in request["state"].items()}
                answer = adapter.run("record", {**request, "stages": names})
                _check("state_machine", "result" in answer, {
                    "op": "record", "input": {**request, "stages": names},
                    "expected": {"note": str(answer)}})
                self.lock = answer["result"]["text"]
            self.dirty = set()
            self.recorded = dict(self.params)
            after = self.plan()
            _check("state_machine", after.get("order") == [], {
                "op": "plan", "input": self.payload(),
                "expected": {"result": {"order": [], "stages": {},
                                        "up_to_date": sorted(f"s{i}" for i in range(self.n))}}})

        @invariant()
        def plan_matches_the_model(self) -> None:
            if self.dag is None:
                return
            got = self.plan()
            stages = got.get("stages", {})
            own = {int(k[1:]) for k, v in stages.items() if not v["downstream"]}
            down = {int(k[1:]) for k, v in stages.items() if v["downstream"]}
            order = [int(k[1:]) for k in got.get("order", [])]
            topological = all(order.index(u) < order.index(i) for i in order
                              for u in self.dag["stages"][i]["ups"] if u in order)
            want_own, want_down = self.expected()
            _check("state_machine", (own, down) == (want_own, want_down) and topological, {
                "op": "plan", "input": self.payload(),
                "expected": {"note": f"own {sorted(want_own)}, downstream {sorted(want_down)}"}})

    Machine.TestCase.settings = settings(SETTINGS, max_examples=25, stateful_step_count=12)
    Machine.TestCase().runTest()


def hashlib_hex(text: str) -> str:
    import hashlib
    return hashlib.sha256(text.encode()).hexdigest()


PROPERTIES = {"canonical_forms": canonical_forms, "params_digests_sensitive":
              params_digests_sensitive, "file_digests": file_digests,
              "yaml_scalars": yaml_scalars, "version_gate": version_gate, "plans": plans,
              "documents": documents, "lock_bytes": lock_bytes, "state_machine": state_machine}
__all__ = ["PROPERTIES", "math"]
