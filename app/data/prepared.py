"""The on-disk form of a dataset ready for training: the contract between data and training.

A prepared dataset is a folder holding
  arrays.npz   x_train, y_train, x_val, y_val, x_test, y_test (float32 features;
               int64 class indices for classification, float32 targets for regression)
  meta.json    DatasetMeta as JSON: what the web process shows and wires to models.
Both are written to temporary names and renamed into place, so a reader never sees
half a dataset.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ARRAYS = "arrays.npz"
META = "meta.json"
SPLITS = ("train", "val", "test")


@dataclass
class DatasetMeta:
    name: str
    kind: str                      # "image", "table", "points2d" or "sequence" (token ids)
    task: str                      # "classification" or "regression"
    input_shape: list[int]         # one sample, without the batch axis
    class_names: list[str] = field(default_factory=list)  # classification only, index = label
    feature_names: list[str] = field(default_factory=list)
    target_name: str = ""
    split_sizes: dict[str, int] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)  # how it was made (built-in key, params, file)
    preview: dict[str, Any] = field(default_factory=dict)  # rows, statistics, scatter points...

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> DatasetMeta:
        return cls(**json.loads(text))


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def write_prepared(folder: Path, arrays: dict[str, Any], meta: DatasetMeta) -> None:
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    expected = {f"{part}_{split}" for part in ("x", "y") for split in SPLITS}
    if set(arrays) != expected:
        raise ValueError(f"prepared arrays must be exactly {sorted(expected)}, got {sorted(arrays)}")
    meta.split_sizes = {split: len(arrays[f"y_{split}"]) for split in SPLITS}

    def save_arrays(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    _atomic_write(folder / ARRAYS, save_arrays)
    _atomic_write(folder / META, lambda tmp: tmp.write_text(meta.to_json()))


def read_meta(folder: Path) -> DatasetMeta:
    return DatasetMeta.from_json((folder / META).read_text())


def read_arrays(folder: Path) -> dict[str, Any]:
    import numpy as np

    with np.load(folder / ARRAYS, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}
