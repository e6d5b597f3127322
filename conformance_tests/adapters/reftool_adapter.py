"""The reference adapter: `reftool` behind the conformance protocol (PROTOCOL.md).

    python conformance_tests/adapters/reftool_adapter.py

Reads one JSON request per line on stdin, writes one JSON response per line on stdout.
`MUTANT` (an environment variable) turns on one deliberate bug, for the suite's self-tests.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

PROTOCOL = 1
OPERATIONS = ["load", "validate", "canonicalize", "digest", "plan", "lock", "merge", "record",
              "run", "experiment", "signature", "metrics"]


def _text(inp: dict[str, Any], key: str = "text") -> str:
    if key + "_base64" in inp:
        return base64.b64decode(inp[key + "_base64"]).decode("utf-8", "surrogateescape")
    return str(inp[key])


def op_load(inp: dict[str, Any]) -> dict[str, Any]:
    from reftool.files.documents import decode, parse
    from reftool.files.values import typed_tree
    data = base64.b64decode(inp["base64"]) if "base64" in inp else inp["text"].encode("utf-8")
    if inp.get("as") == "plain-metrics":  # [metrics.plain] (1.1)
        from reftool.files.errors import SpecError, diagnostic
        from reftool.files.values import plain_metrics
        doc = parse(decode(data, display="input"), display="input", fmt=inp["format"],
                    nonfinite=True)
        if not isinstance(doc.value, dict):
            raise SpecError([diagnostic("schema", "type", "input", "not a mapping")])
        return {"metrics": typed_tree(plain_metrics(doc.value))}
    doc = parse(decode(data, display="input"), display="input", fmt=inp["format"])
    return {"value": typed_tree(doc.value)}


def _materialize(files: dict[str, Any], folder: Path) -> None:
    for rel, content in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict) and "symlink" in content:
            os.symlink(content["symlink"], path)
        elif isinstance(content, dict):
            path.write_bytes(base64.b64decode(content["base64"]))
        else:
            path.write_bytes(content.encode("utf-8"))


def op_validate(inp: dict[str, Any]) -> dict[str, Any]:
    from reftool.files.validate import validate_paths, validate_project
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _materialize(inp["files"], root)
        target = inp.get("target", "pipeline.yaml")
        if target == "pipeline.yaml":
            report = validate_project(root, target)
        else:
            report = validate_paths([root / target])
    errors = sorted((d.phase, d.code) for d in report.errors)  # every error, repeats included
    return {"errors": [{"phase": p, "code": c} for p, c in errors]}


def _value(inp: dict[str, Any]) -> Any:
    from reftool.files.documents import decode, parse
    from reftool.files.values import from_typed_tree
    if "value" in inp:
        return from_typed_tree(inp["value"])
    data = base64.b64decode(inp["base64"]) if "base64" in inp else inp["text"].encode("utf-8")
    return parse(decode(data, display="input"), display="input", fmt=inp["format"]).value


def op_canonicalize(inp: dict[str, Any]) -> dict[str, Any]:
    from reftool.files.values import jcs, typed_tree
    return {"text": jcs(typed_tree(_value(inp))).decode("utf-8")}


def op_digest(inp: dict[str, Any]) -> dict[str, Any]:
    from reftool.pipeline import hashing
    from reftool.files.values import params_digest
    kind = inp["kind"]
    if kind == "params":
        return {"digest": params_digest(_value(inp))}
    if kind == "file":
        return {"digest": hashing.file_digest_of_bytes(base64.b64decode(inp["base64"]))}
    return {"digest": _directory_digest(inp)}


def _directory_digest(inp: dict[str, Any]) -> str:
    """A directory written to a real folder and hashed as `plan` hashes it, under its rules:
    entries are files, `symlink`s, `fifo`s and empty `dir`s ([digest.directory],
    [digest.ignore])."""
    import tempfile
    from reftool.files.errors import SpecError, diagnostic
    from reftool.files.ignore import parse_ignore_text, rules_for
    from reftool.pipeline import hashing
    at = inp.get("at", "d/")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        top = root / at.rstrip("/")
        top.mkdir(parents=True)
        for f in inp["files"]:
            path = top / f["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            if "symlink" in f:
                os.symlink(f["symlink"], path)
            elif f.get("fifo"):
                os.mkfifo(path)
            elif f.get("dir"):
                path.mkdir(exist_ok=True)
            else:
                path.write_bytes(base64.b64decode(f["base64"]))
                path.chmod(0o755 if f.get("executable") else 0o644)
        ignore: tuple[Any, ...] = ()
        if "ignore" in inp:
            ignore, problems = parse_ignore_text(inp["ignore"].encode("utf-8"))
            if problems:
                p = problems[0]
                raise SpecError([diagnostic("parse" if p.code == "invalid_utf8" else "semantic",
                                            p.code, ".reftoolignore", p.message)])
        try:
            rules = rules_for(at, ignore, tuple(inp.get("exclude", ())))
        except ValueError as e:
            raise SpecError([diagnostic("semantic", "exclude_pattern", "pipeline.yaml",
                                        str(e))]) from None
        hasher = hashing.Hasher(root, hashing.HashCache(None, str(root)), jobs=1)
        try:
            state = hasher.state(at, rules)
        except hashing.HashError as e:
            raise SpecError([diagnostic(e.phase, e.code, e.path, e.message)]) from None  # type: ignore[arg-type]
        assert state is not None
        return state.digest


class _Observer:
    def __init__(self, inp: dict[str, Any], params: dict[str, Any]) -> None:
        self.state = inp.get("state", {})
        self.params = params
        self.ignore_text: str | None = None  # set for a pipeline of 1.1 or later
        self.environ = inp.get("env", {})

    def path_state(self, path: str, exclude: tuple[str, ...] = ()) -> Any:
        """A `state` value: a digest, or `{"digest", "size"}` (a directory: and `"files"`), the
        form `record` needs, since a lock records sizes ([lock.contents]); `plan` reads only the
        digest."""
        from reftool.files.model import FileState
        seen = self.state.get(path)
        if seen is None:
            return None
        rules = self.rules_digest(path, exclude)
        if isinstance(seen, str):
            return FileState(digest=seen, size=0, rules=rules)
        return FileState(digest=seen["digest"], size=seen["size"], files=seen.get("files"),
                         rules=rules)

    def sized(self, path: str) -> bool:
        """Whether `state` gives what a lock entry of `path` records: its size, and for a
        directory its number of files."""
        seen = self.state.get(path)
        return isinstance(seen, dict) and "size" in seen and (
            not path.endswith("/") or "files" in seen)

    def rules_digest(self, path: str, exclude: tuple[str, ...] = ()) -> str | None:
        """[lock.rules]: from `.reftoolignore` (a file of the input, 1.1 pipelines) and
        `exclude`."""
        from reftool.files.ignore import parse_ignore_text, rules_for
        if not path.endswith("/"):
            return None
        text = self.ignore_text
        ignore = parse_ignore_text(text.encode("utf-8"))[0] if text is not None else ()
        rules = rules_for(path, ignore, exclude)
        return None if rules is None else rules.digest

    def params_file(self, file: str) -> Any:
        return self.params[file]

    def env(self, name: str) -> str | None:
        return self.environ.get(name)


def _observer(inp: dict[str, Any], params: dict[str, Any], pipeline: Any) -> _Observer:
    from reftool.files.validate import ignore_applies
    observer = _Observer(inp, params)
    if ignore_applies(pipeline.version):
        observer.ignore_text = inp.get("files", {}).get(".reftoolignore")
    return observer


def _project(inp: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    """The pipeline, lock and parsed params files of a plan-shaped input."""
    from reftool.files.documents import parse
    from reftool.files.errors import SpecError
    from reftool.files.load import VarsContext, build_lock, build_pipeline
    from reftool.files.validate import Report, _versioned
    files = inp.get("files", {})
    params = {}
    for name, text in files.items():
        if name == ".reftoolignore":  # [digest.ignore-file]: not a params file
            continue
        fmt = {"yaml": "yaml", "yml": "yaml", "json": "json", "toml": "toml"}[name.rsplit(".", 1)[1]]
        params[name] = parse(text, display=name, fmt=fmt).value
    doc = parse(inp["pipeline"], display="pipeline.yaml", fmt="yaml")
    report = Report()
    if not _versioned(doc, "pipeline", "pipeline file", report):
        raise SpecError(report.errors)
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    for f in doc.value.get("vars", []):
        for k, v in params[f].items():
            values.setdefault(k, v)
            source.setdefault(k, f)
    pipeline, problems = build_pipeline(doc, VarsContext(values, source))
    if problems:
        raise SpecError(problems)
    lock = None
    if inp.get("lock") is not None:
        ldoc = parse(inp["lock"], display="pipeline.lock", fmt="json")
        if not _versioned(ldoc, "lock", "lock file", report):
            raise SpecError(report.errors)
        lock = build_lock(ldoc)
    return pipeline, lock, params


def op_record(inp: dict[str, Any]) -> dict[str, Any]:
    """The lock after the named stages completed with the workspace as `state` describes it
    ([exec.record], [lock.prune], [lock.canonical])."""
    from reftool.files.errors import SpecError, diagnostic
    from reftool.pipeline.lockfile import for_pipeline
    from reftool.files.model import Lock, canonical_lock_text
    from reftool.pipeline.plan import record
    pipeline, lock, params = _project(inp)
    observer = _observer(inp, params, pipeline)
    stages = dict(lock.stages) if lock else {}
    for name in inp["stages"]:
        stage = pipeline.stages[name]
        for o in stage.outputs:
            if observer.path_state(o.path) is None:
                raise SpecError([diagnostic("runtime", "output_not_created", "pipeline.yaml",
                                            f"{o.path} was not created")])
        for d in stage.deps:
            if observer.path_state(d.path) is None:
                raise SpecError([diagnostic("semantic", "dep_missing", "pipeline.yaml",
                                            f"{d.path} is missing")])
        unsized = [p.path for p in (*stage.deps, *stage.outputs) if not observer.sized(p.path)]
        if unsized:  # the input is not the protocol's: the suite's own fault, not the tool's
            raise ValueError(f"record: state gives no size for {', '.join(unsized)} "
                             "(PROTOCOL.md: {\"digest\", \"size\"}, and \"files\" for a directory)")
        stages[name] = record(stage, observer)
    return {"text": canonical_lock_text(for_pipeline(Lock(version="1.0", stages=stages),
                                                     pipeline))}


def op_signature(inp: dict[str, Any]) -> dict[str, Any]:
    """The input signature of one stage with the workspace as `state` says ([digest.signature]):
    what keys its outputs in a cache, before it runs."""
    from reftool.files.errors import SpecError, diagnostic
    from reftool.pipeline.plan import input_signature, inputs_of
    pipeline, _, params = _project(inp)
    observer = _observer(inp, params, pipeline)
    stage = pipeline.stages[inp["stage"]]
    inputs = inputs_of(stage, observer)
    if inputs is None:
        raise SpecError([diagnostic("semantic", "dep_missing", "pipeline.yaml",
                                    f"an input of {stage.name} is missing")])
    return {"digest": input_signature(stage, inputs, observer)}


def op_run(inp: dict[str, Any]) -> dict[str, Any]:
    """Run the pipeline of a project for real, in a temporary folder: what it recorded, and
    the files it left ([exec.outputs-before], [exec.failure], [exec.record])."""
    import subprocess
    from reftool.pipeline.hashing import file_digest_of_bytes
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _materialize(inp["files"], root)
        launch = [sys.executable, "-m", "reftool"]
        if os.environ.get("MUTANT"):  # the suite's self-test: the same mutant in the tool
            launch = [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv.pop(1)); "
                      "import mutants; mutants.apply(sys.argv.pop(1)); "
                      "from reftool.cli import main; sys.exit(main(sys.argv[1:]))",
                      str(Path(__file__).resolve().parent), os.environ["MUTANT"]]
        r = subprocess.run([*launch, "run", "-q", "--no-record",
                            "--no-cache", *inp.get("stages", [])], cwd=root,
                           capture_output=True, text=True, timeout=120)
        lock_path = root / "pipeline.lock"
        recorded = sorted(json.loads(lock_path.read_text())["stages"]) \
            if lock_path.exists() else []
        files = {}
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).as_posix()
            if path.is_file() and not rel.startswith(".reftool/") and rel != "pipeline.lock":
                files[rel] = file_digest_of_bytes(path.read_bytes())
    return {"completed": r.returncode == 0, "recorded": recorded, "files": files}


def op_plan(inp: dict[str, Any]) -> dict[str, Any]:
    from reftool.files.errors import SpecError
    from reftool.pipeline.plan import decide
    pipeline, lock, params = _project(inp)
    from reftool.files import graph
    deps = graph.dependencies(pipeline)
    cycles = graph.find_cycles(deps)
    if cycles:
        from reftool.files.errors import diagnostic
        raise SpecError([diagnostic("semantic", "cycle", "pipeline.yaml", "cycle")])
    from reftool.pipeline.plan import reason_dict
    targets, unknown = graph.select(pipeline.stages, inp.get("targets", []))
    force, _ = graph.select(pipeline.stages, inp.get("force", []))
    if unknown:
        raise ValueError(f"no stage {unknown[0]!r}")
    plan = decide(pipeline, lock, _observer(inp, params, pipeline), targets=targets,
                  force_stages=force, use_cache=False)
    stages: dict[str, Any] = {}
    for d in plan.to_run:
        stages[d.name] = {"reasons": list(d.codes), "downstream": d.downstream}
        if d.action == "blocked":  # [pipeline.deps-exist] (1.1): run cannot run it
            stages[d.name]["blocked"] = True
        if inp.get("details"):  # the reasons as `plan --json` writes them
            stages[d.name]["details"] = [reason_dict(r) for r in d.reasons]
    return {"order": [d.name for d in plan.to_run], "stages": stages,
            "up_to_date": sorted(plan.up_to_date)}


def op_lock(inp: dict[str, Any]) -> dict[str, Any]:
    from reftool.files.documents import parse
    from reftool.files.errors import SpecError
    from reftool.files.load import build_lock
    from reftool.files.model import canonical_lock_text
    from reftool.files.validate import Report, _versioned
    doc = parse(inp["text"], display="pipeline.lock", fmt="json")
    report = Report()
    if not _versioned(doc, "lock", "lock file", report):
        raise SpecError(report.errors)
    lock = build_lock(doc)
    if "stages" in inp:  # [lock.prune]: the stages of the pipeline the lock is written for
        from reftool.pipeline.lockfile import pruned
        lock = pruned(lock, set(inp["stages"]))
    return {"text": canonical_lock_text(lock)}


def op_experiment(inp: dict[str, Any]) -> dict[str, Any]:
    """An experiment record written again, byte for byte ([experiments.record],
    [lock.canonical] rule 4), after the version gate and the schema."""
    from reftool.files.documents import parse
    from reftool.files.errors import SpecError
    from reftool.files.model import canonical_json
    from reftool.files.validate import Report, _versioned
    doc = parse(inp["text"], display="experiments/x.json", fmt="json")
    report = Report()
    if not _versioned(doc, "experiment", "experiment record", report) or report.errors:
        raise SpecError(report.errors)
    return {"text": canonical_json(doc.value)}


def op_merge(inp: dict[str, Any]) -> dict[str, Any]:
    from reftool.integrations.gitmerge import merge, read_lock_text
    from reftool.files.model import canonical_lock_text
    base = read_lock_text(inp["base"], "base") if inp.get("base") else None
    merged = merge(base, read_lock_text(inp["ours"], "ours"),
                   read_lock_text(inp["theirs"], "theirs"))
    return {"text": canonical_lock_text(merged.lock), "dropped": list(merged.dropped)}


def op_metrics(inp: dict[str, Any]) -> dict[str, Any]:
    """The metrics every reader shows for a project's files ([experiments.metrics],
    [experiments.metrics-collision]): each name, keyed by file where names collide."""
    import math
    from reftool.experiments.records import snapshot
    files = {"pipeline.yaml": inp["pipeline"], **inp.get("files", {})}

    def read(path: str) -> bytes | None:
        text = files.get(path)
        return None if text is None else text.encode("utf-8")
    snap = snapshot(read, "workspace", "workspace")
    return {"metrics": {name: ("NaN" if math.isnan(v) else "Infinity" if v > 0 else
                               "-Infinity") if isinstance(v, float) and not math.isfinite(v)
                        else v for name, v in sorted(snap.metrics.items())}}


OPS = {"load": op_load, "validate": op_validate, "canonicalize": op_canonicalize,
       "digest": op_digest, "plan": op_plan, "lock": op_lock, "merge": op_merge,
       "record": op_record, "run": op_run, "experiment": op_experiment,
       "signature": op_signature, "metrics": op_metrics}


def handle(request: dict[str, Any]) -> dict[str, Any]:
    from reftool.files.errors import SpecError
    rid = request.get("id")
    if request.get("op") == "hello":
        return {"id": rid, "hello": {
            "protocol": PROTOCOL, "implementation": {"name": "reftool", "version": _version()},
            "spec_versions": ["1.0", "1.1"], "operations": OPERATIONS, "features": []}}
    op = OPS.get(request.get("op", ""))
    if op is None:
        return {"id": rid, "skipped": f"operation {request.get('op')!r} not implemented"}
    try:
        return {"id": rid, "result": op(request["input"])}
    except SpecError as e:
        first = sorted(e.diagnostics, key=lambda d: (d.line or 0, d.column or 0))[0]
        return {"id": rid, "error": {"phase": first.phase, "code": first.code}}
    except Exception as e:  # noqa: BLE001 - reported as errored, as the protocol says
        return {"id": rid, "errored": f"{type(e).__name__}: {e}"}


def _version() -> str:
    from reftool import __version__
    return __version__


def main() -> None:
    mutant = os.environ.get("MUTANT")
    if mutant:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import mutants
        mutants.apply(mutant)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except ValueError as e:
            response = {"id": None, "errored": f"bad request: {e}"}
        else:
            response = handle(request)
        sys.stdout.write(json.dumps(response, ensure_ascii=True) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
