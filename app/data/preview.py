"""What a learner sees of a prepared dataset before training: samples, counts, statistics.

Everything here lands in `DatasetMeta.preview` as JSON-ready data, except the image grid,
which is written beside the arrays as `samples.png` and named in the preview.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SAMPLES_IMAGE = "samples.png"
GRID_COLUMNS = 8
GRID_MAX_ROWS = 20
CELL_MIN, CELL_MAX = 32, 64   # pixels: tiny images are enlarged, big ones shrunk, to stay legible
GAP = 2
SCATTER_LIMIT = 500
HISTOGRAM_BINS = 20


def split_shapes(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    return {split: {"size": len(arrays[f"y_{split}"]), "x_shape": list(arrays[f"x_{split}"].shape),
                    "y_shape": list(arrays[f"y_{split}"].shape)} for split in ("train", "val", "test")}


def label_summary(arrays: dict[str, np.ndarray], task: str, class_names: list[str]) -> dict[str, Any]:
    """Class balance per split for classification; a histogram of the target for regression."""
    if task == "classification":
        return {"class_counts": {split: np.bincount(arrays[f"y_{split}"], minlength=len(class_names)).tolist()
                                 for split in ("train", "val", "test")}}
    values = np.concatenate([arrays[f"y_{split}"] for split in ("train", "val", "test")]).astype(np.float64)
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
    return {"target_histogram": {"bins": [round(float(e), 6) for e in edges], "counts": counts.tolist()}}


def scatter_points(x: np.ndarray, y: np.ndarray, task: str, seed: int) -> list[list[float]]:
    """Up to 500 points [x, y, label], drawn at random so every region of the set shows."""
    chosen = np.random.default_rng(seed).permutation(len(x))[:SCATTER_LIMIT]
    return [[round(float(x[i, 0]), 4), round(float(x[i, 1]), 4),
             int(y[i]) if task == "classification" else round(float(y[i]), 4)] for i in chosen]


def array_statistics(x: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    """Per-feature statistics of a numeric array (an NPZ table), in the table preview's form."""
    rows = []
    for j, name in enumerate(names[:500]):
        column = x[:, j].astype(np.float64)
        rows.append({"name": name, "missing": 0, "mean": round(float(column.mean()), 6),
                     "std": round(float(column.std()), 6), "min": round(float(column.min()), 6),
                     "max": round(float(column.max()), 6)})
    return rows


def _cell_size(height: int, width: int) -> tuple[int, int]:
    longest = max(height, width)
    if longest < CELL_MIN:
        factor = math.ceil(CELL_MIN / longest)
        return height * factor, width * factor
    if longest > CELL_MAX:
        return max(1, height * CELL_MAX // longest), max(1, width * CELL_MAX // longest)
    return height, width


def write_sample_grid(folder: Path, x: np.ndarray, y: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Write a PNG with one row per class (at most 20) of up to 8 training images each.

    `x` holds images scaled to 0..1, shape (n, h, w, c).
    """
    _, height, width, channels = x.shape
    cell_h, cell_w = _cell_size(height, width)
    rows = [c for c in range(len(class_names)) if np.any(y == c)][:GRID_MAX_ROWS]
    mode = "RGB" if channels >= 3 else "L"  # other channel counts show their first channel
    grid = Image.new(mode, (GAP + GRID_COLUMNS * (cell_w + GAP), GAP + max(len(rows), 1) * (cell_h + GAP)),
                     color=200 if mode == "L" else (200, 200, 200))
    enlarge = cell_h >= height
    for row, label in enumerate(rows):
        for column, index in enumerate(np.flatnonzero(y == label)[:GRID_COLUMNS]):
            pixels = (np.clip(x[index], 0, 1) * 255).round().astype(np.uint8)
            tile = Image.fromarray(pixels[..., :3] if mode == "RGB" else pixels[..., 0])
            tile = tile.resize((cell_w, cell_h), Image.Resampling.NEAREST if enlarge else Image.Resampling.BILINEAR)
            grid.paste(tile, (GAP + column * (cell_w + GAP), GAP + row * (cell_h + GAP)))
    tmp = folder / (SAMPLES_IMAGE + ".tmp")
    grid.save(tmp, format="PNG")
    os.replace(tmp, folder / SAMPLES_IMAGE)
    return {"samples_image": SAMPLES_IMAGE,
            "grid": {"rows": [class_names[c] for c in rows], "columns": GRID_COLUMNS, "cell_size": [cell_h, cell_w],
                     "gap": GAP}}
