"""Small prepared datasets built from scikit-learn's bundled data (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.data.prepared import DatasetMeta, write_prepared


def _split(x: np.ndarray, y: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """60 % train, 20 % validation, 20 % test, shuffled once."""
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order], y[order]
    a, b = int(len(y) * 0.6), int(len(y) * 0.8)
    return {"x_train": x[:a], "y_train": y[:a], "x_val": x[a:b], "y_val": y[a:b],
            "x_test": x[b:], "y_test": y[b:]}


def write_digits(folder: Path) -> Path:
    """sklearn's 8x8 digits upscaled to 28x28x1 in 0..1, so the 28x28 starters fit."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.kron(digits.images / 16.0, np.ones((3, 3)))            # 24x24
    images = np.pad(images, ((0, 0), (2, 2), (2, 2)))[..., None]      # 28x28x1
    arrays = _split(images.astype("float32"), digits.target.astype("int64"))
    meta = DatasetMeta(name="digits", kind="image", task="classification", input_shape=[28, 28, 1],
                       class_names=[str(i) for i in range(10)])
    write_prepared(folder, arrays, meta)
    return folder


def write_blobs(folder: Path, classes: int = 3) -> Path:
    """Two features, a few well separated clusters: a playground-style points2d set."""
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=300, centers=classes, n_features=2, random_state=0)
    meta = DatasetMeta(name="blobs", kind="points2d", task="classification", input_shape=[2],
                       class_names=[f"group {i}" for i in range(classes)], feature_names=["x", "y"])
    write_prepared(folder, _split(x.astype("float32"), y.astype("int64")), meta)
    return folder


def write_regression(folder: Path, features: int = 8, scale: float = 1.0) -> Path:
    """A noisy linear target of `features` numbers; scale makes the targets large."""
    from sklearn.datasets import make_regression

    x, y = make_regression(n_samples=400, n_features=features, noise=5.0, random_state=0)
    y = y / 100.0 * scale
    kind = "points2d" if features == 2 else "table"
    meta = DatasetMeta(name="linear", kind=kind, task="regression", input_shape=[features],
                       feature_names=[f"f{i}" for i in range(features)], target_name="target")
    write_prepared(folder, _split(x.astype("float32"), y.astype("float32")), meta)
    return folder
