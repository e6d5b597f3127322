"""Which rules of SPEC.md the cases check: lists every normative anchor (MUST or not), with the
cases that cite it, and exits 1 when one has none and is not in `uncovered.json` (the reviewed
list of rules no protocol operation can observe, each with where our own tests check it).
Informative anchors ([conformance.precedence]: section 15 and notes marked "(Informative.)") are
not counted.

    python conformance_tests/coverage.py [--list]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPEC = (HERE.parent / "SPEC.md").read_text(encoding="utf-8")


def rules() -> dict[str, str]:
    """Each anchor of SPEC.md with the text of its rule (up to the next anchor or heading)."""
    found = {}
    marks = list(re.finditer(r'<a id="([a-z0-9.-]+)"></a>', SPEC))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(SPEC)
        text = SPEC[m.end():end]
        found[m.group(1)] = text.split("\n#")[0]
    return found


def must_anchors() -> list[str]:
    return sorted(a for a, text in rules().items() if re.search(r"\bMUST\b", text))


def informative(anchor: str, text: str) -> bool:
    """Section 15 (the reference tool) and notes marked (Informative.) are not normative."""
    return anchor.startswith("tool.") or text.lstrip().startswith(f"**[{anchor}]** (Informative.)")


def normative_anchors() -> list[str]:
    return sorted(a for a, text in rules().items() if not informative(a, text))


def citations() -> dict[str, list[str]]:
    cited: dict[str, list[str]] = {}
    for path in sorted((HERE / "cases").glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8")):
            for anchor in case["anchors"]:
                cited.setdefault(anchor, []).append(case["id"])
    return cited


def main() -> int:
    cited = citations()
    exempt = json.loads((HERE / "uncovered.json").read_text(encoding="utf-8"))
    missing = []
    for anchor in normative_anchors():
        ids = cited.get(anchor, [])
        if "--list" in sys.argv:
            note = f"  (uncovered: {exempt[anchor]})" if anchor in exempt and not ids else ""
            print(f"{anchor:28} {len(ids):3} {' '.join(ids[:6])}{note}")
        if not ids and anchor not in exempt:
            missing.append(anchor)
    stale = sorted(a for a in exempt if cited.get(a))
    for anchor in missing:
        print(f"rule without a case: [{anchor}]")
    for anchor in stale:
        print(f"[{anchor}] has cases now: remove it from uncovered.json")
    if "--list" in sys.argv:
        covered = sum(1 for a in normative_anchors() if cited.get(a))
        print(f"{len(normative_anchors())} normative anchors: {covered} cited by a case, "
              f"{sum(1 for a in normative_anchors() if a in exempt)} listed in uncovered.json, "
              f"{len(missing)} with neither")
    return 1 if missing or stale else 0


if __name__ == "__main__":
    sys.exit(main())
