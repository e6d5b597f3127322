"""Schema validation of a generated pipeline (benchmarks/generate.py): jsonschema, as
`reftool/files/validate.py` ran it before, against the compiled predicate of
`reftool/files/schemacheck.py`, side by side in one run, alternating, medians.

    python benchmarks/bench_schema.py [--stages 1000] [--runs 7]

Each round validates the same parsed document once each way (validator and predicate built
before: their one-off costs are printed apart). Prints medians and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from reftool.files.documents import parse  # noqa: E402
from reftool.files.schemacheck import compile_schema  # noqa: E402
from reftool.files.schemas import validator  # noqa: E402


def timed(f: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = f()
    return time.perf_counter() - start, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stages", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(HERE / "benchmarks" / "generate.py"), tmp,
                        "--stages", str(args.stages)], check=True, stdout=subprocess.DEVNULL)
        text = (Path(tmp) / "pipeline.yaml").read_text(encoding="utf-8")
    value = parse(text, display="pipeline.yaml", fmt="yaml").value
    build_js, check_js = timed(lambda: validator("pipeline"))
    build_fast, check_fast = timed(lambda: compile_schema("pipeline"))
    slow: list[float] = []
    fast: list[float] = []
    for _ in range(args.runs):
        t, errors = timed(lambda: list(check_js.iter_errors(value)))
        slow.append(t)
        t, ok = timed(lambda: check_fast(value))
        fast.append(t)
        assert ok and not errors, "the generated pipeline must be valid"
    js, pred = statistics.median(slow), statistics.median(fast)
    print(f"{args.stages} stages, medians of {args.runs}:")
    print(f"  jsonschema iter_errors   {js * 1000:9.2f} ms   (import + validator: "
          f"{build_js * 1000:.0f} ms, once)")
    print(f"  compiled predicate       {pred * 1000:9.2f} ms   (compile: "
          f"{build_fast * 1000:.1f} ms, once)")
    print(f"  ratio jsonschema / predicate: {js / pred:.1f}x")


if __name__ == "__main__":
    main()
