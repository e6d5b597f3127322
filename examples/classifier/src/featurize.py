"""Stage `featurize`: standardize with train statistics and add polynomial features.

Reads data/prepared/{train,test}.csv, writes data/features/{train,test}.npz (arrays
X and y) and data/features/features.json (feature names and scaling statistics).
Reads param /featurize/degree of params.yaml.
"""

import json

import numpy as np

from common import param, save_npz

IN_DIR = "data/prepared"
OUT_DIR = "data/features"


def read_csv(path):
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    return data[:, :2], data[:, 2].astype(np.int64)


def polynomial(x, degree):
    """All monomials x1^i * x2^j with 1 <= i + j <= degree, and their names."""
    columns, names = [], []
    for total in range(1, degree + 1):
        for j in range(total + 1):
            i = total - j
            columns.append(x[:, 0] ** i * x[:, 1] ** j)
            names.append("*".join(["x1"] * i + ["x2"] * j))
    return np.column_stack(columns), names


def main():
    degree = param("/featurize/degree")
    if not isinstance(degree, int) or degree < 1:
        raise SystemExit(f"/featurize/degree must be an integer >= 1, got {degree!r}")
    x_train, y_train = read_csv(f"{IN_DIR}/train.csv")
    x_test, y_test = read_csv(f"{IN_DIR}/test.csv")

    # Standardize the raw inputs with train statistics only, then expand, then
    # standardize the expanded features (again with train statistics).
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    f_train, names = polynomial((x_train - mean) / std, degree)
    f_test, _ = polynomial((x_test - mean) / std, degree)
    f_mean, f_std = f_train.mean(axis=0), f_train.std(axis=0)
    f_std[f_std == 0] = 1.0
    f_train = (f_train - f_mean) / f_std
    f_test = (f_test - f_mean) / f_std

    save_npz(f"{OUT_DIR}/train.npz", X=f_train, y=y_train)
    save_npz(f"{OUT_DIR}/test.npz", X=f_test, y=y_test)
    meta = {
        "features": names,
        "input_mean": mean.tolist(),
        "input_std": std.tolist(),
        "feature_mean": f_mean.tolist(),
        "feature_std": f_std.tolist(),
    }
    with open(f"{OUT_DIR}/features.json", "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(meta, indent=2) + "\n")
    print(f"featurize: {len(names)} features (degree {degree}) -> {OUT_DIR}/")


if __name__ == "__main__":
    main()
