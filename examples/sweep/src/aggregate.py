"""Stage `aggregate`: collect the results of the `fit` sweep into one table.

Usage: python src/aggregate.py --table CSV --best JSON RESULT.json...

Each RESULT is named results/lr-<LR>_depth-<DEPTH>.json by the `fit` stages. Writes
a CSV table sorted by test RMSE (declared as plot data) and a summary metrics
file with the best run's RMSE.
"""

import argparse
import json
import os
import re

NAME = re.compile(r"lr-(?P<lr>[^_/]+)_depth-(?P<depth>[0-9]+)\.json")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--table", required=True)
    ap.add_argument("--best", required=True)
    ap.add_argument("results", nargs="+")
    args = ap.parse_args()

    rows = []
    for path in args.results:
        m = NAME.fullmatch(os.path.basename(path))
        if not m:
            raise SystemExit(f"aggregate: unexpected result name {path}")
        with open(path, encoding="utf-8") as f:
            metrics = json.load(f)["metrics"]
        rows.append((metrics["rmse"], metrics["train_rmse"], float(m["lr"]), int(m["depth"]), path))
    rows.sort()

    with open(args.table, "w", encoding="utf-8", newline="\n") as f:
        f.write("lr,depth,rmse,train_rmse\n")
        for test_rmse, train_rmse, lr, depth, _ in rows:
            f.write(f"{lr!r},{depth},{test_rmse!r},{train_rmse!r}\n")
    test_rmse, train_rmse, lr, depth, path = rows[0]
    doc = {"version": "1.0", "metrics": {"rmse": test_rmse, "train_rmse": train_rmse}}
    with open(args.best, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    print(f"aggregate: best of {len(rows)} runs is lr={lr} depth={depth} (test rmse {test_rmse:.4f}) -> {args.best}")


if __name__ == "__main__":
    main()
