"""Test a trained model on the held-out test split and explain what it got right and wrong.

Also the one place that says how targets are fed to a compiled model and how its
raw outputs become class probabilities, so training and testing agree.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.core.training import REGRESSION_LOSSES, TrainConfig
from app.data.prepared import SPLITS, DatasetMeta
from app.worker.reconstruction import reconstruction_report

MAX_SAMPLES = 24          # sample predictions shown (and drawn) for classification
MAX_PAIRS = 500           # predicted-versus-true points for regression
GRID_SIZE = 50            # decision-boundary resolution for 2-feature data
PREDICT_BATCH = 256
PREDICTIONS_PNG = "predictions.png"


def clean(value: Any, digits: int = 6) -> float | None:
    """A JSON-safe float: NaN and infinity become None (JSON has no NaN)."""
    number = float(value)
    return round(number, digits) if math.isfinite(number) else None


def prepare_targets(y: np.ndarray, meta: DatasetMeta, config: TrainConfig) -> np.ndarray:
    """Targets in the form the compiled loss expects."""
    if meta.task != "classification":
        return y.astype("float32").reshape(len(y), -1)
    if config.loss == "categorical_crossentropy":
        # The prepared contract stores class numbers; this loss wants one-hot rows.
        return keras.utils.to_categorical(y, meta.num_classes).astype("float32")
    if config.loss == "binary_crossentropy" or config.loss in REGRESSION_LOSSES:
        return y.astype("float32").reshape(-1, 1)
    return y.astype("int64")


def split_targets(arrays: dict[str, np.ndarray], split: str, meta: DatasetMeta, config: TrainConfig,
                  limit: int | None = None) -> np.ndarray:
    """A split's targets as the compiled loss expects them: its samples themselves for target input."""
    if config.target == "input":
        return arrays[f"x_{split}"][:limit].astype("float32")
    return prepare_targets(arrays[f"y_{split}"][:limit], meta, config)


def model_uses_logits(model: keras.Model) -> bool:
    get_config = getattr(model.loss, "get_config", None)
    return bool(get_config and get_config().get("from_logits", False))


def class_probabilities(raw: np.ndarray, logits: bool) -> np.ndarray:
    """(samples, classes) probabilities from a model's raw output; one unit means two classes."""
    raw = np.nan_to_num(np.asarray(raw, dtype="float64").reshape(len(raw), -1))
    if raw.shape[1] == 1:
        p = 0.5 * (1.0 + np.tanh(raw[:, 0] / 2)) if logits else np.clip(raw[:, 0], 0.0, 1.0)
        return np.stack([1.0 - p, p], axis=1)
    if logits:
        exp = np.exp(raw - raw.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)
    # Keras' cross-entropy rescales non-softmax outputs to sum to 1; do the same.
    positive = np.clip(raw, 0.0, None)
    total = positive.sum(axis=1, keepdims=True)
    uniform = np.full_like(positive, 1.0 / raw.shape[1])
    return np.divide(positive, total, out=uniform, where=total > 0)


def evaluate_model(model: keras.Model, arrays: dict[str, np.ndarray], meta: DatasetMeta,
                   config: TrainConfig, run_dir: Path | str | None = None) -> dict[str, Any]:
    """Test loss and metrics plus a task-specific report; with run_dir, images get a PNG grid."""
    x, y = arrays["x_test"], arrays["y_test"]
    if len(y) == 0:
        return {"available": False,
                "message": f"{meta.name} has no test split, so nothing was held out to test on."}
    scores = model.evaluate(x, split_targets(arrays, "test", meta, config), batch_size=PREDICT_BATCH,
                            verbose=0, return_dict=True)
    result: dict[str, Any] = {
        "available": True, "task": "reconstruction" if config.target == "input" else meta.task, "kind": meta.kind,
        "test_samples": len(y), "loss": clean(scores.pop("loss")),
        "metrics": {name: clean(value) for name, value in scores.items()},
    }
    if config.target == "input":
        result["reconstruction"] = reconstruction_report(model, x, meta, run_dir)
        return result
    raw = model.predict(x, batch_size=PREDICT_BATCH, verbose=0)
    if meta.task == "classification":
        probs = class_probabilities(raw, model_uses_logits(model))
        names = _names(meta, probs.shape[1])
        result.update(_classification_report(probs, y.astype("int64"), names))
        predicted = probs.argmax(axis=1)
        if meta.kind == "image" and run_dir is not None and x.ndim in (3, 4):
            path = Path(run_dir) / PREDICTIONS_PNG
            write_sample_grid(path, x, result["samples"])
            result["samples_image"] = PREDICTIONS_PNG
    else:
        predicted = np.asarray(raw, dtype="float64").reshape(len(y), -1)[:, 0]
        result.update(_regression_report(predicted, y.astype("float64").reshape(len(y), -1)[:, 0]))
    if meta.kind == "points2d" and x.ndim == 2 and x.shape[1] == 2:
        result["decision_boundary"] = _decision_boundary(model, arrays, meta, predicted)
    return result


def _names(meta: DatasetMeta, width: int) -> list[str]:
    names = list(meta.class_names)
    return names + [f"class {i}" for i in range(len(names), width)]


def _ratio(top: float, bottom: float) -> float | None:
    return round(float(top) / float(bottom), 6) if bottom else None


def _classification_report(probs: np.ndarray, y: np.ndarray, names: list[str]) -> dict[str, Any]:
    k, n = len(names), len(y)
    predicted = probs.argmax(axis=1)
    confidence = probs[np.arange(n), predicted]
    matrix = np.bincount(y * k + predicted, minlength=k * k).reshape(k, k)
    per_class: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        hits = int(matrix[i, i])
        precision = _ratio(hits, matrix[:, i].sum())
        recall = _ratio(hits, matrix[i, :].sum())
        f1 = None
        if precision is not None and recall is not None:
            f1 = round(2 * precision * recall / (precision + recall), 6) if precision + recall else 0.0
        per_class.append({"class": i, "name": name, "precision": precision, "recall": recall,
                          "f1": f1, "support": int(matrix[i, :].sum())})
    defined: list[float] = [c["f1"] for c in per_class if c["f1"] is not None]
    wrong = np.flatnonzero(predicted != y)
    right = np.flatnonzero(predicted == y)
    # Most confident mistakes first, then the right answers the model was least sure of.
    order = np.concatenate([wrong[np.argsort(-confidence[wrong], kind="stable")],
                            right[np.argsort(confidence[right], kind="stable")]])[:MAX_SAMPLES]
    samples = [{"index": int(i), "predicted": int(predicted[i]), "predicted_name": names[predicted[i]],
                "true": int(y[i]), "true_name": names[y[i]], "confidence": clean(confidence[i], 4),
                "correct": bool(predicted[i] == y[i])} for i in order]
    return {
        "accuracy": _ratio(int(np.trace(matrix)), n),
        "macro_f1": round(sum(defined) / len(defined), 6) if defined else None,
        "confusion_matrix": {"labels": names, "matrix": matrix.tolist(),
                             "rows": "true class", "columns": "predicted class"},
        "per_class": per_class,
        "mistakes": len(wrong),
        "samples": samples,
    }


def _regression_report(predicted: np.ndarray, true: np.ndarray) -> dict[str, Any]:
    predicted = np.asarray(predicted, dtype="float64")
    residual = predicted - true
    finite = residual[np.isfinite(residual)]
    spread = float(((true - true.mean()) ** 2).sum())
    summary: dict[str, Any] = {"finite": len(finite), "count": len(residual)}
    if len(finite):
        counts, edges = np.histogram(finite, bins=20)
        summary.update({
            "mean": clean(finite.mean()), "std": clean(finite.std()),
            "min": clean(finite.min()), "max": clean(finite.max()),
            "mae": clean(np.abs(finite).mean()), "rmse": clean(math.sqrt((finite ** 2).mean())),
            "median_abs": clean(np.median(np.abs(finite))),
            "r2": clean(1.0 - float((finite ** 2).sum()) / spread) if spread and len(finite) == len(true) else None,
            "histogram": {"edges": [clean(e) for e in edges], "counts": counts.tolist()},
        })
    keep = np.unique(np.linspace(0, len(true) - 1, min(len(true), MAX_PAIRS)).round().astype(int))
    return {
        "residuals": summary,
        "predicted_vs_true": {"indices": keep.tolist(), "true": [clean(v) for v in true[keep]],
                              "predicted": [clean(v) for v in predicted[keep]],
                              "of": len(true)},
    }


def plane_grid(arrays: dict[str, np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A size x size grid of points covering a 2-D dataset's points (all splits) with a 5% margin: its x
    values, its y values, and the points row by row (row j is ys[j], column i is xs[i]), as float32."""
    points = np.concatenate([arrays[f"x_{s}"] for s in SPLITS if len(arrays[f"x_{s}"])])
    low, high = points.min(axis=0).astype("float64"), points.max(axis=0).astype("float64")
    pad = (high - low) * 0.05
    pad[pad == 0] = 0.5
    xs = np.linspace(low[0] - pad[0], high[0] + pad[0], size)
    ys = np.linspace(low[1] - pad[1], high[1] + pad[1], size)
    grid_x, grid_y = np.meshgrid(xs, ys)
    return xs, ys, np.stack([grid_x.ravel(), grid_y.ravel()], axis=1).astype("float32")


def _decision_boundary(model: keras.Model, arrays: dict[str, np.ndarray], meta: DatasetMeta,
                       test_predicted: np.ndarray) -> dict[str, Any]:
    """Predictions over a grid covering the data, as the classic playgrounds shade it."""
    xs, ys, grid = plane_grid(arrays, GRID_SIZE)
    raw = model.predict(grid, batch_size=PREDICT_BATCH, verbose=0)
    boundary: dict[str, Any] = {"x": [clean(v, 4) for v in xs], "y": [clean(v, 4) for v in ys],
                                "rows": "y", "columns": "x"}
    if meta.task == "classification":
        probs = class_probabilities(raw, model_uses_logits(model))
        shape = (GRID_SIZE, GRID_SIZE)
        boundary["predicted"] = probs.argmax(axis=1).reshape(shape).tolist()
        boundary["confidence"] = np.round(probs.max(axis=1), 3).reshape(shape).tolist()
        if probs.shape[1] == 2:
            boundary["probability"] = np.round(probs[:, 1], 3).reshape(shape).tolist()
    else:
        values = np.nan_to_num(np.asarray(raw, dtype="float64").reshape(-1))
        boundary["values"] = np.round(values, 4).reshape(GRID_SIZE, GRID_SIZE).tolist()
    x_test, y_test = arrays["x_test"], arrays["y_test"]
    keep = np.arange(min(len(x_test), MAX_PAIRS))
    as_value = int if meta.task == "classification" else (lambda v: clean(v, 4))
    boundary["test_points"] = {"x": [clean(v, 4) for v in x_test[keep, 0]],
                               "y": [clean(v, 4) for v in x_test[keep, 1]],
                               "true": [as_value(v) for v in y_test[keep]],
                               "predicted": [as_value(v) for v in test_predicted[keep]]}
    return boundary


TILE = 64
BORDER = 3
CAPTION = 18
CAPTION_FONT_PX = 13  # readable where the sheet is shown at its own size; FreeType's default font
COLUMNS = 6


def write_sample_grid(path: Path, images: np.ndarray, samples: list[dict[str, Any]]) -> None:
    """Draw the sample predictions: green frame right, red frame wrong, caption predicted (true)."""
    cell_w, cell_h = TILE + 2 * BORDER, TILE + 2 * BORDER + CAPTION
    rows = max(1, math.ceil(len(samples) / COLUMNS))
    sheet = Image.new("RGB", (COLUMNS * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=CAPTION_FONT_PX)
    low, high = float(np.min(images)), float(np.max(images))
    for slot, sample in enumerate(samples):
        left, top = (slot % COLUMNS) * cell_w, (slot // COLUMNS) * cell_h
        colour = (30, 140, 60) if sample["correct"] else (200, 40, 40)
        draw.rectangle([left, top, left + cell_w - 1, top + TILE + 2 * BORDER - 1], fill=colour)
        tile = _as_tile(images[sample["index"]], low, high)
        sheet.paste(tile, (left + BORDER + (TILE - tile.width) // 2,
                           top + BORDER + (TILE - tile.height) // 2))
        caption = sample["predicted_name"] if sample["correct"] else \
            f"{sample['predicted_name']} ({sample['true_name']})"
        draw.text((left + 2, top + TILE + 2 * BORDER + 1), _fitted(draw, caption, font, cell_w - 4), fill=colour,
                  font=font)
    tmp = path.with_name(path.name + ".tmp")
    sheet.save(tmp, format="PNG")
    os.replace(tmp, path)


def _fitted(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
            width: float) -> str:
    """The text, shortened with an ellipsis until it fits `width` pixels (a caption stays within its tile)."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _as_tile(image: np.ndarray, low: float, high: float) -> Image.Image:
    pixels = np.asarray(image, dtype="float64")
    if pixels.ndim == 3:
        pixels = pixels if pixels.shape[-1] == 3 else pixels[..., 0]
    scaled = (pixels - low) / (high - low) * 255 if high > low else np.zeros_like(pixels)
    tile = Image.fromarray(np.nan_to_num(scaled).clip(0, 255).astype("uint8"))
    scale = TILE / max(tile.width, tile.height)
    size = (max(1, round(tile.width * scale)), max(1, round(tile.height * scale)))
    return tile.resize(size, Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.BILINEAR)
