"""Stage `train`: a one-hidden-layer MLP (ReLU, softmax) trained with mini-batch SGD.

Reads data/features/train.npz, holds out /train/val_ratio of it for validation,
logs train_loss, val_loss and val_accuracy after every epoch to
metrics/train.jsonl (a series metrics file, SPEC [metrics.series]) and writes the
weights to model/model.npz. `/train/hidden: 0` trains plain softmax regression.
"""

import numpy as np

from common import load_npz, param, save_npz
from reftool import track
from model import init, loss_and_accuracy, sgd_step

FEATURES = "data/features/train.npz"
MODEL = "model/model.npz"
SERIES = "metrics/train.jsonl"


def main():
    seed = param("/train/seed")
    lr = param("/train/lr")
    epochs = param("/train/epochs")
    batch_size = param("/train/batch_size")
    hidden = param("/train/hidden")
    weight_decay = param("/train/weight_decay")
    val_ratio = param("/train/val_ratio")

    data = load_npz(FEATURES)
    x, y = data["X"], data["y"]
    n_classes = int(y.max()) + 1
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_val = int(round(len(y) * val_ratio))
    val, fit = order[:n_val], order[n_val:]
    x_val, y_val, x_fit, y_fit = x[val], y[val], x[fit], y[fit]

    w = init(rng, x.shape[1], hidden, n_classes)
    with track.Series(SERIES, resume=False) as series:
        for epoch in range(1, epochs + 1):
            batches = rng.permutation(len(y_fit))
            for start in range(0, len(batches), batch_size):
                idx = batches[start : start + batch_size]
                sgd_step(w, x_fit[idx], y_fit[idx], lr, weight_decay)
            train_loss, _ = loss_and_accuracy(w, x_fit, y_fit)
            val_loss, val_accuracy = loss_and_accuracy(w, x_val, y_val)
            series.log(epoch, train_loss=train_loss, val_loss=val_loss, val_accuracy=val_accuracy)
    save_npz(MODEL, **w)
    print(f"train: {epochs} epochs, val_loss {val_loss:.4f}, val_accuracy {val_accuracy:.4f} -> {MODEL}")


if __name__ == "__main__":
    main()
