"""A challenge's two folders, made from a prepared dataset in the data worker.

The public folder is what participants train on: the training and validation splits, with
the validation split standing in as its test split (so that a participant's own run can be
tested as usual). Its preview is made again from those splits alone: the source's preview
counts test labels and shows rows and points drawn from all the data. The hidden folder
holds the real test split alone; it lives outside every workspace, no route serves it,
and only the scoring of a submission reads it.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from app.data.prepared import DatasetMeta, read_arrays, read_meta, write_prepared
from app.data.preview import SAMPLES_IMAGE, array_statistics, label_summary, scatter_points, split_shapes

PUBLIC_PREVIEW_SEED = 0


def split_for_challenge(payload: dict[str, Any]) -> dict[str, Any]:
    source, public, hidden = Path(payload["source"]), Path(payload["public"]), Path(payload["hidden"])
    arrays, meta = read_arrays(source), read_meta(source)
    if len(arrays["y_test"]) == 0:
        raise ValueError("the dataset has no test split to hide")
    shown = {**{k: arrays[k] for k in ("x_train", "y_train", "x_val", "y_val")},
             "x_test": arrays["x_val"], "y_test": arrays["y_val"]}
    public_meta = replace(meta, name=payload["name"], preview=_public_preview(meta, shown, source, public),
                          source={**meta.source, "challenge": payload["challenge"], "test_is_validation": True})
    write_prepared(public, shown, public_meta)
    empty = {f"{part}_{split}": arrays[f"{part}_test"][:0] for part in ("x", "y") for split in ("train", "val")}
    write_prepared(hidden, {**empty, "x_test": arrays["x_test"], "y_test": arrays["y_test"]},
                   replace(meta, preview={}))
    return asdict(public_meta)


def _public_preview(meta: DatasetMeta, arrays: dict[str, Any], source: Path, public: Path) -> dict[str, Any]:
    preview: dict[str, Any] = {**label_summary(arrays, meta.task, meta.class_names), "splits": split_shapes(arrays)}
    x, y = arrays["x_train"], arrays["y_train"]
    if meta.kind == "points2d":
        preview["points"] = scatter_points(x, y, meta.task, PUBLIC_PREVIEW_SEED)
    if meta.kind in ("table", "sequence") and x.ndim == 2:
        names = meta.feature_names or [f"x{i}" for i in range(x.shape[1])]
        preview["columns"] = array_statistics(x, names)
    if meta.preview.get("samples_image"):  # drawn from the training split when the source was prepared
        public.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / SAMPLES_IMAGE, public / SAMPLES_IMAGE)
        preview.update({key: meta.preview[key] for key in ("samples_image", "grid") if key in meta.preview})
    return preview
