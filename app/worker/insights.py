"""Error analysis in the data worker: every test sample's prediction, cached in the run's folder.

The predictions are made once per saved model with the same batch size and the same
probabilities (`class_probabilities`, argmax) as the run's test report, so a confusion-matrix
cell lists exactly the samples the matrix counts. The answers sent back are small and JSON-safe;
numpy and Keras stay in this process.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import NotFound, UserError
from app.data.prepared import DatasetMeta, read_arrays, read_meta
from app.worker.evaluate import PREDICT_BATCH, class_probabilities, clean, model_uses_logits

INSIGHTS_DIR = "insights"
PREDICTIONS_FILE = "test_predictions.npz"
IMAGE_SIZE = 112   # an input picture is scaled up to about this many pixels wide
TOP = 3

# The worker stays warm: the last dataset's arrays and the last run's predictions are kept, so a page
# of pictures reads each file once, not once per picture.
_arrays_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_predictions_cache: dict[str, tuple[str, dict[str, np.ndarray]]] = {}


def _arrays(dataset_dir: Path) -> dict[str, Any]:
    key, stamp = str(dataset_dir), os.path.getmtime(dataset_dir)
    cached = _arrays_cache.get(key)
    if cached is None or cached[0] != stamp:
        _arrays_cache.clear()
        cached = (stamp, read_arrays(dataset_dir))
        _arrays_cache[key] = cached
    return cached[1]


def _model_stamp(model_path: Path) -> str:
    stat = model_path.stat()
    return f"{model_path.name}:{stat.st_mtime_ns}:{stat.st_size}"


def predictions(run_dir: Path, model_file: str, dataset_dir: Path, meta: DatasetMeta) -> dict[str, np.ndarray]:
    """The test split's predictions of the run's saved model, made on first use and cached in the run folder."""
    model_path = run_dir / model_file
    stamp = _model_stamp(model_path)
    path = run_dir / INSIGHTS_DIR / PREDICTIONS_FILE
    cached = _predictions_cache.get(str(path))
    if cached is not None and cached[0] == stamp:
        return cached[1]
    found: dict[str, np.ndarray] | None = None
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["stamp"]) == stamp:
                    found = {name: data[name] for name in data.files}
        except (OSError, ValueError, KeyError):
            found = None
    if found is None:
        found = _predict(model_path, _arrays(dataset_dir), meta)
        found["stamp"] = np.array(stamp)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npz")
        save: Any = np.savez  # numpy's stubs take the arrays' names for its own keywords
        save(tmp, **found)
        os.replace(tmp, path)
    _predictions_cache.clear()
    _predictions_cache[str(path)] = (stamp, found)
    return found


def _predict(model_path: Path, arrays: dict[str, Any], meta: DatasetMeta) -> dict[str, np.ndarray]:
    import keras

    x, y = arrays["x_test"], arrays["y_test"]
    model = keras.models.load_model(model_path)
    raw = model.predict(x, batch_size=PREDICT_BATCH, verbose=0) if len(y) else np.zeros((0, 1))
    if meta.task == "classification":
        probs = class_probabilities(raw, model_uses_logits(model))
        return {"true": y.astype("int64"), "predicted": probs.argmax(axis=1).astype("int64"),
                "probabilities": probs.astype("float64")}
    predicted = np.asarray(raw, dtype="float64").reshape(len(y), -1)[:, 0]
    target = y.astype("float64").reshape(len(y), -1)[:, 0]
    return {"prediction": predicted, "target": target, "error": np.abs(predicted - target)}


def _names(meta: DatasetMeta, width: int) -> list[str]:
    names = list(meta.class_names)
    return names + [f"class {i}" for i in range(len(names), width)]


def _top(probs: np.ndarray, names: list[str], count: int | None = TOP) -> list[dict[str, Any]]:
    order = np.argsort(-probs, kind="stable")[:count]
    return [{"class": int(c), "name": names[c], "probability": clean(probs[c])} for c in order]


def _classification_row(found: dict[str, np.ndarray], names: list[str], index: int) -> dict[str, Any]:
    probs = found["probabilities"][index]
    true, predicted = int(found["true"][index]), int(found["predicted"][index])
    return {"index": index, "true": true, "true_name": names[true], "predicted": predicted,
            "predicted_name": names[predicted], "correct": true == predicted,
            "confidence": clean(probs[predicted]), "top3": _top(probs, names)}


def _regression_row(found: dict[str, np.ndarray], index: int) -> dict[str, Any]:
    return {"index": index, "prediction": clean(found["prediction"][index]),
            "target": clean(found["target"][index]), "error": clean(found["error"][index])}


def _check_class(name: str, value: int, count: int) -> None:
    if not 0 <= value < count:
        raise UserError(f"{name.replace('_', ' ').capitalize()} {value} does not exist: this run's classes "
                        f"are numbered 0 to {count - 1}.", field=name)


def confusion_cell(payload: dict[str, Any]) -> dict[str, Any]:
    """The test samples the run's confusion matrix counts in one cell, most confident first."""
    dataset_dir, meta = Path(payload["dataset_dir"]), read_meta(Path(payload["dataset_dir"]))
    if meta.task != "classification":
        raise UserError(f"{meta.name} is a regression dataset: a confusion matrix needs classes. "
                        "Look at the largest errors instead.")
    found = predictions(Path(payload["run_dir"]), payload["model"], dataset_dir, meta)
    names = _names(meta, found["probabilities"].shape[1])
    true_class, predicted_class = int(payload["true_class"]), int(payload["predicted_class"])
    _check_class("true_class", true_class, len(names))
    _check_class("predicted_class", predicted_class, len(names))
    limit = int(payload["limit"])
    hits = np.flatnonzero((found["true"] == true_class) & (found["predicted"] == predicted_class))
    confidence = found["probabilities"][hits, predicted_class]
    ordered = hits[np.argsort(-confidence, kind="stable")]
    return {"true": true_class, "true_name": names[true_class], "predicted": predicted_class,
            "predicted_name": names[predicted_class], "kind": meta.kind, "labels": names,
            "feature_names": list(meta.feature_names), "count": len(hits),
            "left_out": max(0, len(hits) - limit),
            "samples": [_with_features(_classification_row(found, names, int(i)), dataset_dir, meta,
                                       payload.get("with_features", False)) for i in ordered[:limit]]}


def largest_errors(payload: dict[str, Any]) -> dict[str, Any]:
    """The regression test samples with the largest absolute errors, largest first."""
    dataset_dir, meta = Path(payload["dataset_dir"]), read_meta(Path(payload["dataset_dir"]))
    if meta.task != "regression":
        raise UserError(f"{meta.name} is a classification dataset: its mistakes are in the confusion "
                        "matrix's cells.")
    found = predictions(Path(payload["run_dir"]), payload["model"], dataset_dir, meta)
    limit = int(payload["limit"])
    errors = np.nan_to_num(found["error"], nan=np.inf)  # a prediction that is not a number is the worst
    ordered = np.argsort(-errors, kind="stable")[:limit]
    return {"kind": meta.kind, "target_name": meta.target_name, "feature_names": list(meta.feature_names),
            "count": len(errors), "left_out": max(0, len(errors) - limit),
            "samples": [_with_features(_regression_row(found, int(i)), dataset_dir, meta,
                                       payload.get("with_features", False)) for i in ordered]}


def _with_features(row: dict[str, Any], dataset_dir: Path, meta: DatasetMeta, wanted: bool) -> dict[str, Any]:
    if wanted and meta.kind != "image":
        x = _arrays(dataset_dir)["x_test"][row["index"]]
        row["features"] = [clean(v) for v in np.asarray(x).reshape(-1)]
    return row


def _check_index(index: int, count: int) -> None:
    if not 0 <= index < count:
        allowed = f"0 to {count - 1}" if count else "none: it has no test split"
        raise NotFound(f"There is no test sample {index}: this run's test samples are numbered {allowed}.",
                       field="index")


def sample(payload: dict[str, Any]) -> dict[str, Any]:
    """One test sample: its prediction with every class's probability, and its features for tables."""
    dataset_dir, meta = Path(payload["dataset_dir"]), read_meta(Path(payload["dataset_dir"]))
    arrays = _arrays(dataset_dir)
    index = int(payload["index"])
    _check_index(index, len(arrays["y_test"]))
    found = predictions(Path(payload["run_dir"]), payload["model"], dataset_dir, meta)
    answer: dict[str, Any] = {"kind": meta.kind, "task": meta.task}
    if meta.task == "classification":
        names = _names(meta, found["probabilities"].shape[1])
        answer.update(_classification_row(found, names, index))
        answer["probabilities"] = [{"class": c, "name": names[c], "probability": clean(p)}
                                   for c, p in enumerate(found["probabilities"][index])]
    else:
        answer.update(_regression_row(found, index))
        answer["target_name"] = meta.target_name
    if meta.kind != "image":
        values = np.asarray(arrays["x_test"][index]).reshape(-1)
        names_of = list(meta.feature_names) or [f"feature {i}" for i in range(len(values))]
        names_of += [f"feature {i}" for i in range(len(names_of), len(values))]
        answer["features"] = [{"name": n, "value": clean(v)} for n, v in zip(names_of, values, strict=False)]
    return answer


def input_png(payload: dict[str, Any]) -> bytes:
    """An image test sample as a PNG, scaled up with whole pixels to about IMAGE_SIZE wide."""
    from PIL import Image

    dataset_dir, meta = Path(payload["dataset_dir"]), read_meta(Path(payload["dataset_dir"]))
    if meta.kind != "image":
        raise UserError(f"{meta.name} is not an image dataset: its samples have no picture.")
    x = _arrays(dataset_dir)["x_test"]
    index = int(payload["index"])
    _check_index(index, len(x))
    pixels = np.nan_to_num(np.asarray(x[index], dtype="float64"))
    if pixels.ndim == 3:
        pixels = pixels if pixels.shape[-1] == 3 else pixels[..., 0]
    low, high = float(pixels.min()), float(pixels.max())
    if 0.0 <= low and high <= 1.0:
        low, high = 0.0, 1.0   # scaled pixels: keep their real brightness
    elif 0.0 <= low and high <= 255.0:
        low, high = 0.0, 255.0
    scaled = (pixels - low) / (high - low) * 255 if high > low else np.zeros_like(pixels)
    image = Image.fromarray(scaled.clip(0, 255).astype("uint8"))
    factor = max(1, round(IMAGE_SIZE / max(image.width, image.height)))
    image = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
