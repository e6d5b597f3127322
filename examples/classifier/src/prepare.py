"""Stage `prepare`: generate a seeded spiral data set and split it into train/test.

Writes data/prepared/train.csv and data/prepared/test.csv with columns x1,x2,label.
Reads params /prepare/* of params.yaml.
"""

import os

import numpy as np

from common import param

OUT_DIR = "data/prepared"


def spirals(rng, n_samples, n_classes, turns, noise):
    """`n_classes` interleaved spiral arms in the plane, `noise` = std of Gaussian jitter."""
    per_class = n_samples // n_classes
    xs, ys = [], []
    for k in range(n_classes):
        r = rng.uniform(0.05, 1.0, per_class)
        theta = r * turns * 2.0 * np.pi + 2.0 * np.pi * k / n_classes
        points = np.column_stack([r * np.cos(theta), r * np.sin(theta)])
        xs.append(points + rng.normal(0.0, noise, points.shape))
        ys.append(np.full(per_class, k))
    return np.vstack(xs), np.concatenate(ys)


def write_csv(path, x, y):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("x1,x2,label\n")
        for (a, b), label in zip(x.tolist(), y.tolist()):
            f.write(f"{a!r},{b!r},{label}\n")


def main():
    rng = np.random.default_rng(param("/prepare/seed"))
    x, y = spirals(
        rng,
        n_samples=param("/prepare/n_samples"),
        n_classes=param("/prepare/n_classes"),
        turns=param("/prepare/turns"),
        noise=param("/prepare/noise"),
    )
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    n_test = int(round(len(y) * param("/prepare/test_ratio")))
    if not 0 < n_test < len(y):
        raise SystemExit(f"/prepare/test_ratio leaves an empty split ({n_test} of {len(y)})")

    os.makedirs(OUT_DIR, exist_ok=True)
    write_csv(f"{OUT_DIR}/train.csv", x[n_test:], y[n_test:])
    write_csv(f"{OUT_DIR}/test.csv", x[:n_test], y[:n_test])
    print(f"prepare: {len(y) - n_test} train rows, {n_test} test rows -> {OUT_DIR}/")


if __name__ == "__main__":
    main()
