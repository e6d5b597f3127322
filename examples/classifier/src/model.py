"""The model shared by `train` and `evaluate`: a one-hidden-layer MLP (ReLU, softmax).

The weights are a dict of arrays: W1, b1 (absent for softmax regression), W2, b2.
"""

import numpy as np


def init(rng, n_in, hidden, n_out):
    if hidden == 0:
        return {"W2": np.zeros((n_in, n_out)), "b2": np.zeros(n_out)}
    return {
        "W1": rng.normal(0.0, np.sqrt(2.0 / n_in), (n_in, hidden)),  # He init for ReLU
        "b1": np.zeros(hidden),
        "W2": rng.normal(0.0, np.sqrt(1.0 / hidden), (hidden, n_out)),
        "b2": np.zeros(n_out),
    }


def forward(w, x):
    """Returns (hidden activations, class probabilities)."""
    h = np.maximum(x @ w["W1"] + w["b1"], 0.0) if "W1" in w else x
    z = h @ w["W2"] + w["b2"]
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return h, p / p.sum(axis=1, keepdims=True)


def loss_and_accuracy(w, x, y):
    _, p = forward(w, x)
    loss = -np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean()
    return float(loss), float((p.argmax(axis=1) == y).mean())


def sgd_step(w, x, y, lr, weight_decay):
    h, p = forward(w, x)
    g = p
    g[np.arange(len(y)), y] -= 1.0
    g /= len(y)
    grads = {"W2": h.T @ g + weight_decay * w["W2"], "b2": g.sum(axis=0)}
    if "W1" in w:
        gh = g @ w["W2"].T
        gh[h <= 0.0] = 0.0
        grads["W1"] = x.T @ gh + weight_decay * w["W1"]
        grads["b1"] = gh.sum(axis=0)
    for name, grad in grads.items():
        w[name] -= lr * grad
