"""Stage `generate@KEY`: write a seeded synthetic regression data set as CSV.

Usage: python src/generate.py --rows N --seed S --out PATH

Target: y = sin(2 * x1) + 0.5 * x2**2 + noise, with x1, x2 uniform in [-2, 2].
"""

import argparse
import math
import os
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write("x1,x2,y\n")
        for _ in range(args.rows):
            x1, x2 = rng.uniform(-2, 2), rng.uniform(-2, 2)
            y = math.sin(2 * x1) + 0.5 * x2 * x2 + rng.gauss(0.0, 0.1)
            f.write(f"{x1!r},{x2!r},{y!r}\n")
    print(f"generate: {args.rows} rows -> {args.out}")


if __name__ == "__main__":
    main()
