"""The conformance classes of SPEC.md [conformance.classes]: which anchors bind each, and the
class of each case, derived from its operation.

    python conformance_tests/classes.py          # (re)write each case's "classes"
    python conformance_tests/classes.py --check  # exit 1 if a case's classes are not derived
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CLASSES: dict[str, dict[str, list[str]]] = json.loads(
    (HERE / "classes.json").read_text(encoding="utf-8"))
#: The class(es) whose claim a case of each operation tests.
OP_CLASSES = {"load": ["reader"], "canonicalize": ["reader"], "digest": ["planner", "recorder"],
              "validate": ["validator"], "plan": ["planner"], "lock": ["recorder"],
              "merge": ["recorder"], "record": ["recorder"], "run": ["runner"],
              "experiment": ["experiment-writer"], "signature": ["runner"],
              "metrics": ["experiment-writer"]}


def derived(case: dict[str, Any]) -> list[str]:
    """The classes of a case: those of its operation; reading a plain metrics file
    ([metrics.plain], `load` with `"as": "plain-metrics"`) is the experiment writer's."""
    if case["op"] == "load" and case.get("input", {}).get("as") == "plain-metrics":
        return ["experiment-writer"]
    return OP_CLASSES[case["op"]]


def closure(names: list[str]) -> set[str]:
    """The classes named and every class they include."""
    out: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in out:
            out.add(name)
            todo.extend(CLASSES[name]["includes"])
    return out


def binds(name: str, anchor: str) -> bool:
    """Whether a rule binds a class (through the classes it includes too)."""
    return any(anchor == b or (b.endswith(".") and anchor.startswith(b))
               for c in closure([name]) for b in CLASSES[c]["binds"])


def outside(case: dict[str, Any]) -> list[str]:
    """The anchors a case cites that bind none of its classes."""
    return [a for a in case["anchors"] if not any(binds(c, a) for c in case["classes"])]


def main() -> int:
    stale = []
    for path in sorted((HERE / "cases").glob("*.json")):
        text = path.read_text(encoding="utf-8")
        cases = json.loads(text)
        for case in cases:
            if case.get("classes") != derived(case):
                stale.append(case["id"])
                case["classes"] = derived(case)
        if "--check" not in sys.argv:
            path.write_text(json.dumps(cases, indent=1, ensure_ascii=text.isascii()) + "\n",
                            encoding="utf-8")
    if "--check" in sys.argv and stale:
        print("classes not derived; run python conformance_tests/classes.py:", *stale)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
