"""Stage `schedule`: compute a learning-rate schedule (warmup, then decay).

Usage: python src/schedule.py --steps N --lr-max X --lr-min Y --out PATH

The decay shape and the warmup come from config.toml; the environment variable
SCHEDULE_TAG (an input of the stage: unset differs from empty) is copied into
the output. Writes a JSON file {"title", "tag", "shape", "lr": [...]}.
"""

import argparse
import json
import math
import os
import tomllib


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--lr-max", type=float, required=True)
    ap.add_argument("--lr-min", type=float, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    with open("config.toml", "rb") as f:
        config = tomllib.load(f)

    warmup = config["warmup"]["steps"]
    start = config["warmup"]["start_factor"] * args.lr_max
    lr = []
    for step in range(args.steps):
        if step < warmup:
            lr.append(start + (args.lr_max - start) * step / warmup)
            continue
        t = (step - warmup) / max(1, args.steps - warmup - 1)
        if config["shape"] == "cosine":
            decay = 0.5 * (1 + math.cos(math.pi * t))
        elif config["shape"] == "linear":
            decay = 1 - t
        else:
            raise SystemExit(f"config.toml: unknown shape {config['shape']!r}")
        lr.append(args.lr_min + (args.lr_max - args.lr_min) * decay)

    doc = {"title": config["title"], "tag": os.environ.get("SCHEDULE_TAG"), "shape": config["shape"], "lr": lr}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(doc, indent=2) + "\n")
    print(f"schedule: {args.steps} steps, tag {doc['tag']!r} -> {args.out}")


if __name__ == "__main__":
    main()
