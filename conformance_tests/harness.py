"""The conformance harness: runs the cases (and, on request, the properties) against an adapter.

    python conformance_tests/harness.py --adapter "python conformance_tests/adapters/reftool_adapter.py"
    python conformance_tests/harness.py --adapter "./my-tool conformance" --one-shot
    python conformance_tests/harness.py --adapter "..." --class validator --properties --seed 7
    python conformance_tests/harness.py --bundle        # write bundle/1.0.json and bundle/1.1.json

See README.md for what an adapter is and PROTOCOL.md for what it speaks.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import queue
import shlex
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from classes import CLASSES, closure  # noqa: E402

SUITE_VERSION = (HERE / "SUITE_VERSION").read_text().strip()
PROTOCOL = 1
OUTCOMES = ("passed", "failed", "errored", "skipped", "expected failure", "unexpected pass")
SPEC_VERSIONS = ("1.0", "1.1")  # the spec versions the suite has cases for, oldest first


# ---------------------------------------------------------------------------------- cases

def load_cases(spec_version: str = SPEC_VERSIONS[-1]) -> list[dict[str, Any]]:
    """Every case that applies to a spec version, in id order."""
    cases = []
    for path in sorted((HERE / "cases").glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8")):
            case["file"] = path.name
            if applies(case, spec_version):
                cases.append(case)
    return sorted(cases, key=lambda c: c["id"])


def _version_key(v: str) -> tuple[int, int]:
    major, minor = v.split(".")
    return int(major), int(minor)


def applies(case: dict[str, Any], spec_version: str) -> bool:
    v = _version_key(spec_version)
    return _version_key(case["since"]) <= v and (
        case.get("until") is None or v <= _version_key(case["until"]))


def in_classes(case: dict[str, Any], claimed: Iterable[str]) -> bool:
    """Whether a case tests a claim of these classes (a class claims what it includes)."""
    return bool(set(case["classes"]) & closure(list(claimed)))


def bundle(spec_version: str = SPEC_VERSIONS[-1]) -> Path:
    """[Data first] One ASCII-only JSON file with every case of a spec version."""
    cases = [{k: v for k, v in c.items() if k != "file"} for c in load_cases(spec_version)]
    out = HERE / "bundle" / f"{spec_version}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"suite": SUITE_VERSION, "spec": spec_version, "cases": cases},
                              indent=1, ensure_ascii=True, sort_keys=True) + "\n",
                   encoding="ascii")
    return out


# ---------------------------------------------------------------------------------- adapters

class AdapterError(Exception):
    pass


class Adapter:
    """A persistent adapter process: one JSON object per line each way."""

    def __init__(self, command: str, *, timeout: float = 30.0,
                 env: dict[str, str] | None = None) -> None:
        self.command = command
        self.timeout = timeout
        self.env = env
        self.process: subprocess.Popen[str] | None = None
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.hello: dict[str, Any] = {}
        self._next = 0
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            shlex.split(self.command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, bufsize=1,
            env={**os.environ, **(self.env or {})})
        self.lines = queue.Queue()
        threading.Thread(target=self._read, args=(self.process, self.lines),
                         daemon=True).start()
        answer = self._ask({"op": "hello", "protocol": PROTOCOL})
        if "hello" not in answer:
            raise AdapterError(f"the adapter did not greet: {answer}")
        self.hello = answer["hello"]
        if self.hello.get("protocol") != PROTOCOL:
            raise AdapterError(f"protocol {self.hello.get('protocol')} is not {PROTOCOL}")

    @staticmethod
    def _read(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process is not None and self.process.stdin is not None
        self._next += 1
        request = {"id": self._next, **request}
        try:
            self.process.stdin.write(json.dumps(request, ensure_ascii=True) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise AdapterError("the adapter is gone") from None
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AdapterError(f"no answer within {self.timeout} s") from None
            if line is None:
                raise AdapterError("the adapter exited")
            try:
                answer: dict[str, Any] = json.loads(line)
            except ValueError:
                raise AdapterError(f"not JSON: {line[:200]!r}") from None
            if answer.get("id") == request["id"]:
                return answer

    def run(self, op: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The adapter's answer; a crashed or silent adapter is restarted, the case errored."""
        try:
            return self._ask({"op": op, "input": payload})
        except AdapterError as e:
            self.close()
            self.start()
            return {"errored": str(e)}

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


class OneShotAdapter(Adapter):
    """For simple command-line tools: the command runs once per request, the request on its
    stdin, the answer on its stdout."""

    def start(self) -> None:
        self.hello = self._once({"id": 0, "op": "hello", "protocol": PROTOCOL}).get("hello", {})
        if not self.hello:
            raise AdapterError("the one-shot command did not greet")

    def _once(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            r = subprocess.run(shlex.split(self.command), input=json.dumps(request) + "\n",
                               capture_output=True, text=True, timeout=self.timeout,
                               env={**os.environ, **(self.env or {})})
            return dict(json.loads(r.stdout.strip().splitlines()[-1]))
        except (subprocess.TimeoutExpired, ValueError, IndexError, OSError) as e:
            return {"errored": f"{type(e).__name__}: {e}"}

    def run(self, op: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._once({"id": 1, "op": op, "input": payload})

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------- judging

def _pairs(result: Any) -> Counter[tuple[str, str]]:
    return Counter((e["phase"], e["code"]) for e in (result or {}).get("errors", []))


def judge(case: dict[str, Any], answer: dict[str, Any]) -> tuple[str, str]:
    """(outcome, detail) of one answer against a case's expectation."""
    if "skipped" in answer:
        return "skipped", str(answer["skipped"])
    if "errored" in answer:
        return "errored", str(answer["errored"])
    expected = case["expected"]
    if "error" in expected:
        got = answer.get("error")
        if got and (got.get("phase"), got.get("code")) == (
                expected["error"]["phase"], expected["error"]["code"]):
            return "passed", ""
        return "failed", f"expected error {expected['error']}, got {_short(answer)}"
    if "result" not in answer:
        return "failed", f"expected a result, got {_short(answer)}"
    want, got = expected["result"], answer["result"]
    if case["op"] == "validate":
        # the reported (phase, code) multiset is exactly the expected one: no extra, no repeat
        want_pairs, got_pairs = _pairs(want), _pairs(got)
        ok = want_pairs == got_pairs
        return ("passed", "") if ok else (
            "failed", f"expected {sorted(want_pairs.elements())}, "
                      f"got {sorted(got_pairs.elements())}")
    return ("passed", "") if got == want else ("failed", f"expected {want}, got {got}")


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) < 300 else text[:300] + "..."


@dataclass
class Outcome:
    case: dict[str, Any]
    outcome: str
    detail: str
    seconds: float


@dataclass
class Run:
    adapter: dict[str, Any]
    outcomes: list[Outcome] = field(default_factory=list)
    spec: str = SPEC_VERSIONS[-1]
    classes: tuple[str, ...] = ()
    properties: dict[str, str] = field(default_factory=dict)  # name -> passed | failed: ...

    def count(self, outcome: str) -> int:
        return sum(o.outcome == outcome for o in self.outcomes)

    def level(self) -> str:
        """core: every required case passed and nothing errored; full: every case run passed."""
        bad = {"failed", "errored", "unexpected pass"}
        required = [o for o in self.outcomes if "required" in o.case["tags"]]
        if any(o.outcome in bad or o.outcome == "skipped" for o in required) or \
                any(o.outcome == "errored" for o in self.outcomes):
            return "none"
        if any(o.outcome in bad for o in self.outcomes) or any(
                p != "passed" for p in self.properties.values()):
            return "core"
        return "full"


def run_cases(adapter: Adapter, cases: Iterable[dict[str, Any]],
              expected_failures: set[str] = frozenset()) -> Run:  # type: ignore[assignment]
    run = Run(adapter=adapter.hello)
    supported = set(adapter.hello.get("operations", []))
    features = set(adapter.hello.get("features", []))
    for case in cases:
        started = time.monotonic()
        wanted = {t.split(":", 1)[1] for t in case["tags"] if t.startswith("feature:")}
        if case["op"] not in supported:
            outcome, detail = "skipped", f"operation {case['op']} not supported"
        elif wanted - features:
            outcome, detail = "skipped", f"feature {', '.join(sorted(wanted - features))} " \
                                         "not implemented"
        else:
            outcome, detail = judge(case, adapter.run(case["op"], case["input"]))
        if case["id"] in expected_failures:
            outcome = {"failed": "expected failure", "passed": "unexpected pass"}.get(
                outcome, outcome)
        run.outcomes.append(Outcome(case, outcome, detail, time.monotonic() - started))
    return run


# ---------------------------------------------------------------------------------- reports

def write_reports(run: Run, folder: Path, *, seed: int | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    header = {"suite": SUITE_VERSION, "protocol": PROTOCOL, "spec": run.spec,
              "classes": list(run.classes) or sorted(CLASSES),
              "implementation": run.adapter.get("implementation"), "seed": seed,
              "time": _dt.datetime.now(_dt.timezone.utc).isoformat()}
    with open(folder / "report.jsonl", "w", encoding="utf-8") as f:
        f.write(json.dumps({"header": header}) + "\n")
        for o in run.outcomes:
            f.write(json.dumps({"id": o.case["id"], "op": o.case["op"], "tags": o.case["tags"],
                                "classes": o.case["classes"],
                                "anchors": o.case["anchors"], "outcome": o.outcome,
                                "detail": o.detail, "seconds": round(o.seconds, 4)}) + "\n")
        for name, verdict in run.properties.items():
            f.write(json.dumps({"property": name, "outcome": verdict.split(":", 1)[0],
                                "detail": verdict.partition(": ")[2]}) + "\n")
    (folder / "junit.xml").write_text(junit(run), encoding="utf-8")
    (folder / "summary.md").write_text(summary(run), encoding="utf-8")


def junit(run: Run) -> str:
    failures = run.count("failed") + run.count("unexpected pass")
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<testsuite name="reftool-conformance" tests="{len(run.outcomes)}" '
             f'failures="{failures}" errors="{run.count("errored")}" '
             f'skipped="{run.count("skipped") + run.count("expected failure")}">']
    for o in run.outcomes:
        name = escape(f"{o.case['id']} {o.case['title']}", {'"': "&quot;"})
        lines.append(f'  <testcase classname="{o.case["op"]}" name="{name}" '
                     f'time="{o.seconds:.4f}">')
        if o.outcome in ("failed", "unexpected pass"):
            lines.append(f'    <failure message="{escape(o.outcome)}">{escape(o.detail)}</failure>')
        elif o.outcome == "errored":
            lines.append(f'    <error message="errored">{escape(o.detail)}</error>')
        elif o.outcome in ("skipped", "expected failure"):
            lines.append(f'    <skipped message="{escape(o.outcome)}"/>')
        lines.append("  </testcase>")
    lines.append("</testsuite>")
    return "\n".join(lines) + "\n"


def summary(run: Run) -> str:
    impl = run.adapter.get("implementation", {})
    lines = [f"# Conformance: {impl.get('name')} {impl.get('version')}", "",
             f"Suite {SUITE_VERSION}, spec {run.spec}, protocol {PROTOCOL}, classes "
             f"{', '.join(run.classes or sorted(CLASSES))}. Level: **{run.level()}**.",
             "", "| operation | " + " | ".join(OUTCOMES) + " |",
             "|---|" + "---:|" * len(OUTCOMES)]
    groups: dict[str, list[Outcome]] = {}
    for o in run.outcomes:
        groups.setdefault(f"op {o.case['op']}", []).append(o)
        for name in o.case["classes"]:
            groups.setdefault(f"class {name}", []).append(o)
        for tag in o.case["tags"]:
            groups.setdefault(f"tag {tag}", []).append(o)
    for name in sorted(groups):
        counts = [sum(o.outcome == k for o in groups[name]) for k in OUTCOMES]
        lines.append(f"| {name} | " + " | ".join(map(str, counts)) + " |")
    if run.properties:
        lines += ["", "| property | outcome |", "|---|---|"]
        lines += [f"| {k} | {v.split(':', 1)[0]} |" for k, v in run.properties.items()]
    failing = [o for o in run.outcomes if o.outcome in ("failed", "errored", "unexpected pass")]
    if failing:
        lines += ["", "## Not passing", ""]
        lines += [f"- `{o.case['id']}` ({o.outcome}) {o.case['title']}: {o.detail}"
                  for o in failing]
    return "\n".join(lines) + "\n"


def run_properties(adapter: Adapter, *, seed: int | None) -> dict[str, str]:
    """Each Hypothesis property of properties.py through the adapter: passed, or failed with
    the example (also written to failures/NAME.json)."""
    import properties
    properties.use_seed(seed)
    verdicts = {}
    for name, prop in properties.PROPERTIES.items():
        try:
            prop(adapter)
            verdicts[name] = "passed"
        except AssertionError as e:
            verdicts[name] = f"failed: {str(e)[:300]}"
    return verdicts


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adapter", help="the command that starts the adapter")
    ap.add_argument("--one-shot", action="store_true", help="run the command once per case")
    ap.add_argument("--level", choices=("core", "full"), default="core",
                    help="the level to claim: exit 0 only if it is reached")
    ap.add_argument("--report", type=Path, default=Path("conformance-report"), metavar="DIR")
    ap.add_argument("--expected-failures", type=Path, metavar="FILE",
                    help="a file of case ids, one a line, that are known to fail")
    ap.add_argument("--bundle", action="store_true",
                    help="write bundle/VERSION.json for every spec version and exit")
    ap.add_argument("--spec", choices=SPEC_VERSIONS,
                    help="the spec version claimed (default: the newest the adapter greets with)")
    ap.add_argument("--class", dest="classes", action="append", choices=sorted(CLASSES),
                    default=[], help="a conformance class claimed (repeatable; default: all)")
    ap.add_argument("--properties", action="store_true",
                    help="also run the Hypothesis properties (needs hypothesis) through the adapter")
    ap.add_argument("--seed", type=int, help="the properties' seed (default: derandomized)")
    return ap


def _spec_of(adapter: Adapter, asked: str | None) -> str:
    if asked:
        return asked
    greeted = [v for v in SPEC_VERSIONS if v in adapter.hello.get("spec_versions", [])]
    return greeted[-1] if greeted else SPEC_VERSIONS[0]


def main(argv: list[str] | None = None) -> int:
    ap = _parser()
    a = ap.parse_args(argv)
    if a.bundle:
        for version in SPEC_VERSIONS:
            print(bundle(version))
        return 0
    if not a.adapter:
        ap.error("--adapter is required")
    xfail = set(a.expected_failures.read_text().split()) if a.expected_failures else set()
    adapter = (OneShotAdapter if a.one_shot else Adapter)(a.adapter)
    try:
        spec = _spec_of(adapter, a.spec)
        cases = [c for c in load_cases(spec) if not a.classes or in_classes(c, a.classes)]
        run = run_cases(adapter, cases, xfail)
        run.spec, run.classes = spec, tuple(a.classes)
        if a.properties:
            run.properties = run_properties(adapter, seed=a.seed)
    finally:
        adapter.close()
    write_reports(run, a.report, seed=a.seed)
    sys.stdout.write(summary(run))
    counts = ", ".join(f"{run.count(k)} {k}" for k in OUTCOMES if run.count(k))
    print(f"\n{counts}; reports in {a.report}/")
    reached = run.level()
    return 0 if reached == "full" or (reached == "core" and a.level == "core") else 1


if __name__ == "__main__":
    sys.exit(main())
