"""Loading a built-in dataset into arrays (or a raw table), ready to be split.

Runs in a worker process: it imports numpy, scikit-learn and pillow. The scikit-learn
sets ship inside the package; MNIST and Fashion-MNIST come from the cache folder
(see `keras_datasets`). Parameters are expected already validated by the catalog.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from app.data.catalog import DATASETS, get_dataset
from app.data.generated import GENERATORS, generate_points
from app.data.keras_datasets import load_keras_dataset
from app.data.raw import LabeledArrays
from app.data.sequences import motif_sequences
from app.data.tables import RawTable, TableColumn

# The scikit-learn tables: loader name and what their target column is called here.
_SKLEARN_TABLES = {
    "iris": ("load_iris", "species"),
    "wine": ("load_wine", "cultivar"),
    "breast_cancer": ("load_breast_cancer", "diagnosis"),
    "diabetes": ("load_diabetes", "progression"),
}
DIGITS_MAX = 16.0     # scikit-learn's digits are counts of ink from 0 to 16 per pixel
TABLE_PREVIEW_ROWS = 10
SUBSET_SEED = 0       # the train_samples subset of MNIST is the same whatever the split seed


def load_builtin(key: str, params: dict[str, Any], cache_dir: Path,
                 mirror: str | None = None) -> RawTable | LabeledArrays:
    spec = get_dataset(key)
    if key in GENERATORS:
        points = generate_points(key, params["n_samples"], params["noise"], params["seed"])
        return LabeledArrays("points2d", spec.task, points.x, points.y, points.class_names,
                             feature_names=["x", "y"],
                             target_name="label" if spec.task == "classification" else "value")
    if key == "motif":
        x, y = motif_sequences(params["n_samples"], params["seed"])
        return LabeledArrays("sequence", spec.task, x, y, list(spec.class_names),
                             feature_names=[f"step {i + 1}" for i in range(x.shape[1])], target_name="motif")
    if key in ("digits", "digits28"):
        return _digits(upscale=key == "digits28")
    if key in _SKLEARN_TABLES:
        return _sklearn_table(key)
    if key in ("mnist", "fashion_mnist"):
        return _keras_images(key, params["train_samples"], Path(cache_dir), mirror)
    raise AssertionError(f"no loader for {key}")


def _digits(upscale: bool) -> LabeledArrays:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / DIGITS_MAX).astype(np.float32)
    if upscale:
        # Bilinear resampling of the float image keeps the soft strokes of the original.
        images = np.stack([np.asarray(Image.fromarray(image).resize((28, 28), Image.Resampling.BILINEAR))
                           for image in images]).clip(0, 1)
    spec = DATASETS["digits28" if upscale else "digits"]
    return LabeledArrays("image", "classification", images[..., None].astype(np.float32),
                         bunch.target.astype(np.int64), list(spec.class_names), target_name="digit")


def _sklearn_table(key: str) -> RawTable:
    import sklearn.datasets

    loader_name, target_name = _SKLEARN_TABLES[key]
    loader = getattr(sklearn.datasets, loader_name)
    # Diabetes comes pre-scaled by default; the raw values (age in years...) read better
    # in the preview, and the encoder standardises them anyway.
    bunch = loader(scaled=False) if key == "diabetes" else loader()
    data = bunch.data.astype(np.float64)
    columns = [TableColumn(str(name), data[:, j].copy()) for j, name in enumerate(bunch.feature_names)]
    spec = DATASETS[key]
    if spec.task == "classification":
        target = TableColumn(target_name, bunch.target.astype(np.int32), list(spec.class_names))
        target_text = [spec.class_names[int(t)] for t in bunch.target[:TABLE_PREVIEW_ROWS]]
    else:
        target = TableColumn(target_name, bunch.target.astype(np.float64))
        target_text = [f"{t:g}" for t in bunch.target[:TABLE_PREVIEW_ROWS]]
    first_rows = [[f"{v:g}" for v in data[i]] + [target_text[i]] for i in range(TABLE_PREVIEW_ROWS)]
    return RawTable([*columns, target], first_rows)


def _keras_images(key: str, train_samples: int, cache_dir: Path, mirror: str | None) -> LabeledArrays:
    arrays = load_keras_dataset(key, cache_dir, mirror)
    x, y = arrays["x_train"], arrays["y_train"].astype(np.int64)
    if train_samples < len(x):
        chosen = np.sort(np.random.default_rng(SUBSET_SEED).permutation(len(x))[:train_samples])
        x, y = x[chosen], y[chosen]
    return LabeledArrays("image", "classification", x[..., None], y, list(DATASETS[key].class_names),
                         target_name="label", x_test=arrays["x_test"][..., None],
                         y_test=arrays["y_test"].astype(np.int64),
                         notes={"test_split": "the dataset's own 10000 test images"})
