"""Preparing a dataset for training: load, split, scale or encode, preview, write.

The two entry points run in a worker process and write one folder in the form
`app.data.prepared` describes; nothing else is written anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import UserError
from app.data.builtin import load_builtin
from app.data.catalog import (
    UploadLimits,
    get_dataset,
    validate_dataset_params,
    validate_split_options,
    validate_upload_options,
)
from app.data.prepared import DatasetMeta, write_prepared
from app.data.preview import array_statistics, label_summary, scatter_points, split_shapes, write_sample_grid
from app.data.raw import LabeledArrays
from app.data.splits import split_indices
from app.data.tables import (
    FeatureEncoder,
    RawTable,
    column_statistics,
    encode_target,
    infer_task,
    plan_columns,
    take_rows,
)
from app.data.uploads import read_upload

SPLITS = ("train", "val", "test")
MIN_ROWS = 10


def prepare_builtin(key: str, params: dict[str, Any] | None, options: dict[str, Any] | None, folder: Path,
                    cache_dir: Path, mirror: str | None = None) -> DatasetMeta:
    """Prepare built-in dataset `key` into `folder`; return the metadata written there."""
    spec = get_dataset(key)
    params = validate_dataset_params(key, params)
    split = validate_split_options(options)
    loaded = load_builtin(key, params, Path(cache_dir), mirror)
    source = {"type": "builtin", "key": key, "params": params, "options": split}
    settings = {**split, "task": spec.task, "target": "", "column_types": {}}
    return _prepare(loaded, spec.title, settings, Path(folder), source, UploadLimits())


def prepare_upload(kind: str, path: Path, options: dict[str, Any] | None, folder: Path,
                   limits: UploadLimits = UploadLimits()) -> DatasetMeta:
    """Prepare an uploaded file (`kind`: "csv", "npz" or "images") into `folder`."""
    settings = validate_upload_options(kind, options)
    loaded = read_upload(kind, Path(path), settings, limits)
    source = {"type": "upload", "format": kind, "file": Path(path).name, "options": settings}
    return _prepare(loaded, settings["name"] or Path(path).name, settings, Path(folder), source, limits)


def _prepare(loaded: RawTable | LabeledArrays, name: str, settings: dict[str, Any], folder: Path,
             source: dict[str, Any], limits: UploadLimits) -> DatasetMeta:
    if isinstance(loaded, RawTable):
        arrays, meta, preview = _from_table(loaded, settings, limits)
    else:
        arrays, meta, preview = _from_arrays(loaded, settings, folder)
    meta.name, meta.source = name, source
    meta.input_shape = list(arrays["x_train"].shape[1:])
    preview.update(label_summary(arrays, meta.task, meta.class_names))
    preview["splits"] = split_shapes(arrays)
    meta.preview = preview
    write_prepared(folder, arrays, meta)
    return meta


def _split(n: int, labels: np.ndarray, task: str, settings: dict[str, Any], own_test: bool) -> dict[str, np.ndarray]:
    return split_indices(n, labels if task == "classification" else None, settings["validation_fraction"],
                         0.0 if own_test else settings["test_fraction"], settings["split_seed"])


def _from_table(table: RawTable, settings: dict[str, Any], limits: UploadLimits
                ) -> tuple[dict[str, np.ndarray], DatasetMeta, dict[str, Any]]:
    target = settings.get("target") or table.names[-1]
    target_column = table.column(target)
    task = settings.get("task", "auto")
    task = infer_task(target_column) if task == "auto" else task
    labels, class_names = encode_target(target_column, task, limits)
    # Rows without a target teach nothing; they are dropped and counted, not filled.
    keep = np.flatnonzero(labels >= 0 if task == "classification" else ~np.isnan(labels))
    if len(keep) < MIN_ROWS:
        raise UserError(f"Only {len(keep)} rows have a value in the target column {target!r}; at least "
                          f"{MIN_ROWS} are needed.", field="target")
    statistics = column_statistics(table)
    kept = take_rows(table, keep)
    labels = labels[keep]
    plans = plan_columns(kept, target, settings.get("column_types") or {}, limits)
    rows = _split(len(keep), labels, task, settings, own_test=False)
    encoder = FeatureEncoder.fit(kept, plans, rows["train"], limits)
    features = encoder.transform(kept, limits)
    arrays = {}
    for split in SPLITS:
        arrays[f"x_{split}"] = features[rows[split]]
        arrays[f"y_{split}"] = labels[rows[split]].astype(np.int64 if task == "classification" else np.float32)
    roles = {plan.name: plan for plan in plans}
    for row in statistics:
        row["role"] = "target" if row["name"] == target else roles[row["name"]].treatment
    preview = {"header": table.names, "rows": table.first_rows, "columns": statistics,
               "encoding": encoder.report(), "dropped_rows": int(table.n_rows - len(keep)),
               "task_inferred": settings.get("task", "auto") == "auto"}
    meta = DatasetMeta("", "table", task, [], class_names, encoder.feature_names, target)
    return arrays, meta, preview


def scale_pixels(x: np.ndarray) -> np.ndarray:
    """Images as float32 in 0..1: 8-bit values are divided by 255; floats are kept as given."""
    if x.dtype == np.uint8 or (x.dtype.kind in "iu" and x.size and x.min() >= 0 and x.max() <= 255):
        return x.astype(np.float32) / 255.0
    return x.astype(np.float32)


def _from_arrays(data: LabeledArrays, settings: dict[str, Any], folder: Path
                 ) -> tuple[dict[str, np.ndarray], DatasetMeta, dict[str, Any]]:
    task = data.task
    rows = _split(len(data.x), data.y, task, settings, own_test=data.has_own_test)
    convert = scale_pixels if data.kind == "image" else (lambda x: x.astype(np.float32))
    label_type = np.int64 if task == "classification" else np.float32
    arrays = {}
    for split in ("train", "val"):
        arrays[f"x_{split}"] = convert(data.x[rows[split]])
        arrays[f"y_{split}"] = data.y[rows[split]].astype(label_type)
    if data.x_test is not None and data.y_test is not None:
        arrays["x_test"], arrays["y_test"] = convert(data.x_test), data.y_test.astype(label_type)
    else:
        arrays["x_test"], arrays["y_test"] = convert(data.x[rows["test"]]), data.y[rows["test"]].astype(label_type)
    preview: dict[str, Any] = {"notes": data.notes}
    if data.kind == "image":
        folder.mkdir(parents=True, exist_ok=True)
        preview.update(write_sample_grid(folder, arrays["x_train"], arrays["y_train"], data.class_names))
    elif data.kind == "points2d":
        preview["points"] = scatter_points(data.x, data.y, task, settings["split_seed"])
    else:
        names = data.feature_names or [f"x{i}" for i in range(data.x.shape[1])]
        preview["header"] = [*names, data.target_name or "y"]
        preview["rows"] = [[f"{v:g}" for v in data.x[i]] + [_label_text(data, i)] for i in range(min(10, len(data.x)))]
        preview["columns"] = array_statistics(arrays["x_train"], names)
    meta = DatasetMeta("", data.kind, task, [], list(data.class_names), list(data.feature_names), data.target_name)
    return arrays, meta, preview


def _label_text(data: LabeledArrays, i: int) -> str:
    if data.task == "classification":
        return data.class_names[int(data.y[i])]
    return f"{float(data.y[i]):g}"
