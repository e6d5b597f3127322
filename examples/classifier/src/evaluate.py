"""Stage `evaluate`: score the model on the test split.

Reads model/model.npz and data/features/test.npz; writes metrics/eval.json (a
summary metrics file, SPEC [metrics.summary]) and plots/confusion.json (one
{"actual", "predicted", "count"} row per cell of the confusion matrix).
"""

import json
import os

import numpy as np

from common import load_npz
from reftool import track
from model import forward, loss_and_accuracy

MODEL = "model/model.npz"
FEATURES = "data/features/test.npz"
METRICS = "metrics/eval.json"
CONFUSION = "plots/confusion.json"


def main():
    model = load_npz(MODEL)
    n_classes = len(model["b2"])
    data = load_npz(FEATURES)
    x, y = data["X"], data["y"]

    loss, accuracy = loss_and_accuracy(model, x, y)
    predicted = forward(model, x)[1].argmax(axis=1)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (y, predicted), 1)

    per_class = {}
    for k in range(n_classes):
        tp = confusion[k, k]
        predicted_k, actual_k = confusion[:, k].sum(), confusion[k, :].sum()
        precision = tp / predicted_k if predicted_k else float("nan")
        recall = tp / actual_k if actual_k else float("nan")
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[str(k)] = {"precision": float(precision), "recall": float(recall), "f1": float(f1)}
    track.summary(METRICS, accuracy=accuracy, loss=loss, per_class=per_class)

    os.makedirs(os.path.dirname(CONFUSION), exist_ok=True)
    rows = [
        {"actual": str(a), "predicted": str(p), "count": int(confusion[a, p])}
        for a in range(n_classes)
        for p in range(n_classes)
    ]
    with open(CONFUSION, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(rows, indent=2) + "\n")
    print(f"evaluate: accuracy {accuracy:.4f}, loss {loss:.4f} on {len(y)} test rows -> {METRICS}")


if __name__ == "__main__":
    main()
