"""Stage `fit@lr=...,depth=...`: gradient-boosted regression trees, standard library only.

Usage: python src/fit.py --lr LR --depth DEPTH --rounds N --train CSV --test CSV --out JSON

Fits N trees of depth DEPTH to the residuals (squared loss), each scaled by LR,
and writes a summary metrics file (SPEC [metrics.summary]) with the train and
test root-mean-square error.
"""

import argparse
import csv
import json
import math
import os


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [(float(r["x1"]), float(r["x2"])) for r in rows], [float(r["y"]) for r in rows]


def build(xs, residuals, idx, depth):
    """A regression tree as nested tuples: ("leaf", value) or (feature, threshold, left, right)."""
    mean = sum(residuals[i] for i in idx) / len(idx)
    if depth == 0 or len(idx) < 4:
        return ("leaf", mean)
    best = None  # (sse, feature, threshold, left, right)
    for feature in range(len(xs[0])):
        order = sorted(idx, key=lambda i: xs[i][feature])
        total, total_sq = sum(residuals[i] for i in order), sum(residuals[i] ** 2 for i in order)
        left, left_sq = 0.0, 0.0
        for k in range(1, len(order)):
            r = residuals[order[k - 1]]
            left, left_sq = left + r, left_sq + r * r
            a, b = xs[order[k - 1]][feature], xs[order[k]][feature]
            if a == b:
                continue
            right, right_sq = total - left, total_sq - left_sq
            sse = left_sq - left * left / k + right_sq - right * right / (len(order) - k)
            if best is None or sse < best[0]:
                best = (sse, feature, (a + b) / 2, order[:k], order[k:])
    if best is None:
        return ("leaf", mean)
    _, feature, threshold, left_idx, right_idx = best
    return (feature, threshold, build(xs, residuals, left_idx, depth - 1), build(xs, residuals, right_idx, depth - 1))


def predict(tree, x):
    while tree[0] != "leaf":
        feature, threshold, left, right = tree
        tree = left if x[feature] <= threshold else right
    return tree[1]


def rmse(pred, ys):
    return math.sqrt(sum((p - y) ** 2 for p, y in zip(pred, ys)) / len(ys))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--depth", type=int, required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    x_train, y_train = read(args.train)
    x_test, y_test = read(args.test)
    base = sum(y_train) / len(y_train)
    pred_train, pred_test = [base] * len(y_train), [base] * len(y_test)
    for _ in range(args.rounds):
        residuals = [y - p for y, p in zip(y_train, pred_train)]
        tree = build(x_train, residuals, list(range(len(y_train))), args.depth)
        pred_train = [p + args.lr * predict(tree, x) for p, x in zip(pred_train, x_train)]
        pred_test = [p + args.lr * predict(tree, x) for p, x in zip(pred_test, x_test)]

    doc = {"version": "1.0", "metrics": {"rmse": rmse(pred_test, y_test), "train_rmse": rmse(pred_train, y_train)}}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    print(f"fit: lr={args.lr} depth={args.depth} test rmse {doc['metrics']['rmse']:.4f} -> {args.out}")


if __name__ == "__main__":
    main()
