"""Stage `summarize`: summary metrics of a learning-rate schedule.

Usage: python src/summarize.py SCHEDULE.json METRICS.json
"""

import json
import os
import sys


def main(schedule_path, metrics_path):
    with open(schedule_path, encoding="utf-8") as f:
        lr = json.load(f)["lr"]
    metrics = {"lr_peak": max(lr), "lr_final": lr[-1], "lr_mean": sum(lr) / len(lr), "steps": len(lr)}
    os.makedirs(os.path.dirname(metrics_path), exist_ok=True)
    with open(metrics_path, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps({"version": "1.0", "metrics": metrics}, indent=2, allow_nan=False) + "\n")
    print(f"summarize: {metrics} -> {metrics_path}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
