"""2-D data, in the data worker: the decision boundary at an epoch, and every unit of a Dense layer over
the plane, drawn as PNG and cached in the run's folder.

The weights come from those training kept per epoch (app.worker.recording), set into the model built
from the run's graph; without them, from the run's saved model. A picture is cached under a name holding
the weights file's time, so a resumed run (whose later epochs are trained again) never answers with an
older picture.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from app.core.errors import UserError
from app.core.graph import Graph
from app.core.internals import kept_epochs
from app.core.palette import LIGHT, PALETTE, rgb
from app.core.runs import EPOCH_WEIGHTS
from app.data.prepared import read_arrays
from app.worker.internals import (
    INTERNALS_DIR,
    draw_grid,
    load_model_cached,
    model_stamp,
    png_facts,
    save_png,
    single_input,
)

GRID = 60             # predictions per side of the plane
PICTURE_PX = 300      # the decision boundary's side, in pixels
MAX_POINTS = 500      # test points drawn over it
UNIT_TILE = 60

_built: dict[str, Any] = {}  # the last model built from a graph: a player asks for one frame after another


def _model_from_graph(graph_json: dict[str, Any]) -> Any:
    from app.worker.build import build_model

    key = hashlib.sha256(json.dumps(graph_json, sort_keys=True).encode()).hexdigest()
    if key not in _built:
        _built.clear()
        _built[key] = build_model(Graph.model_validate(graph_json))
    return _built[key]


def _weights_at(payload: dict[str, Any]) -> tuple[Any, int | None, str]:
    """The model with the weights of the asked epoch (the last kept one when none is asked), that epoch,
    and a stamp of those weights for the cache; without kept weights, the saved model (epoch None)."""
    from app.worker.recording import read_snapshot

    run_dir = Path(payload["run_dir"])
    kept = kept_epochs(run_dir)
    epoch = payload.get("epoch")
    if not kept:
        if epoch is not None:
            raise UserError("This run kept no weights per epoch, so only its saved model can be drawn: leave out "
                            "`epoch`.", field="epoch")
        model_path = run_dir / str(payload["model"])
        return load_model_cached(model_path), None, model_stamp(model_path)
    epoch = max(kept) if epoch is None else int(epoch)
    if epoch not in kept:
        raise UserError(f"There are no weights of epoch {epoch}. Epochs kept: {', '.join(map(str, kept))}.",
                        field="epoch", details={"allowed": kept})
    model = _model_from_graph(payload["graph"])
    model.set_weights(read_snapshot(run_dir, epoch))
    return model, epoch, f"e{epoch}-{(run_dir / EPOCH_WEIGHTS).stat().st_mtime_ns}"


def _plane(dataset_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    from app.worker.evaluate import plane_grid

    arrays = read_arrays(dataset_dir)
    xs, ys, points = plane_grid(arrays, GRID)
    return xs, ys, points, arrays


def _boundary_png(model: Any, epoch: int | None, payload: dict[str, Any]) -> tuple[Image.Image, dict[str, str]]:
    import keras

    from app.worker.evaluate import class_probabilities

    xs, ys, points, arrays = _plane(Path(payload["dataset_dir"]))
    raw = np.asarray(keras.Model(single_input(model), model.output)(points, training=False))  # one input: the plane
    if payload["task"] == "classification":
        probs = class_probabilities(raw, bool(payload["logits"]))
        light = np.array([rgb(c) for c in LIGHT], dtype="float64")
        colours = light[probs.argmax(axis=1) % len(LIGHT)]
        # Paler where the model is unsure: from white at chance to the class's colour when certain.
        chance = 1.0 / probs.shape[1]
        certainty = np.clip((probs.max(axis=1) - chance) / (1 - chance), 0.0, 1.0)[:, None]
        cells = 255 - certainty * (255 - colours)
    else:
        values = np.nan_to_num(raw.reshape(-1).astype("float64"))
        low, high = float(values.min()), float(values.max())
        t = ((values - low) / (high - low) if high > low else np.zeros_like(values))[:, None]
        cells = np.array([201, 216, 247]) * (1 - t) + np.array([248, 220, 194]) * t
    # Row j of the grid is ys[j], bottom to top: flip so that larger y is drawn higher.
    image = cells.reshape(len(ys), len(xs), 3)[::-1].round().astype("uint8")
    picture = Image.fromarray(image, mode="RGB").resize((PICTURE_PX, PICTURE_PX), Image.Resampling.BILINEAR)
    _draw_points(picture, xs, ys, arrays, payload["task"])
    return picture, {"epoch": "" if epoch is None else str(epoch)}


def _draw_points(picture: Image.Image, xs: np.ndarray, ys: np.ndarray, arrays: dict[str, np.ndarray],
                 task: str) -> None:
    x_test, y_test = arrays["x_test"][:MAX_POINTS], arrays["y_test"][:MAX_POINTS]
    draw = ImageDraw.Draw(picture)
    size = picture.width
    span_x, span_y = float(xs[-1] - xs[0]) or 1.0, float(ys[-1] - ys[0]) or 1.0
    low, high = (float(y_test.min()), float(y_test.max())) if len(y_test) and task != "classification" else (0, 1)
    for (x, y), label in zip(x_test, y_test, strict=True):
        px = (float(x) - xs[0]) / span_x * (size - 1)
        py = (1 - (float(y) - ys[0]) / span_y) * (size - 1)
        if task == "classification":
            fill = rgb(PALETTE[int(label) % len(PALETTE)])
        else:
            t = (float(label) - low) / (high - low) if high > low else 0.0
            fill = (round(36 + 188 * t), round(86 + 36 * t), round(199 - 168 * t))  # blue to orange
        draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=fill, outline=(255, 255, 255))


def _diverging(values: np.ndarray) -> np.ndarray:
    """Blue for negative, white for zero, orange for positive, scaled by the largest absolute value."""
    scale = float(np.abs(values).max()) or 1.0
    t = np.clip(values / scale, -1.0, 1.0)[..., None]
    white, blue, orange = np.ones(3), np.array([36, 86, 199]) / 255, np.array([224, 122, 31]) / 255
    return np.where(t < 0, white + (blue - white) * -t, white + (orange - white) * t)


def _units_png(model: Any, epoch: int | None, payload: dict[str, Any]) -> tuple[Image.Image, dict[str, str]]:
    import keras

    try:
        layer = model.get_layer(payload["layer_name"])
    except ValueError as exc:
        raise UserError(f"The model has no layer named {payload['layer_name']!r}.", field="layer") from exc
    xs, ys, points, _ = _plane(Path(payload["dataset_dir"]))
    outputs = np.asarray(keras.Model(single_input(model), layer.output)(points, training=False))
    outputs = outputs.reshape(len(points), -1)
    shown = min(outputs.shape[1], int(payload["max_channels"]))
    tiles = [_diverging(outputs[:, unit].reshape(len(ys), len(xs))[::-1]) for unit in range(shown)]
    return draw_grid(tiles, gap=(160, 166, 176)), {"shown": str(shown), "total": str(outputs.shape[1]),
                              "epoch": "" if epoch is None else str(epoch)}


_DRAW = {"boundary": _boundary_png, "units": _units_png}


def plane_png(payload: dict[str, Any]) -> dict[str, Any]:
    """Draw (or find cached) the decision boundary or a Dense layer's units over the plane. payload:
    query ("boundary" or "units"), run_dir, dataset_dir, graph, model (the saved model's file, used when
    no weights were kept per epoch), epoch (or None), task, logits (whether the output gives raw scores),
    layer_id and layer_name (units) and max_channels. Returns the PNG's path and its facts (the epoch
    drawn; units shown and total)."""
    model, epoch, stamp = _weights_at(payload)
    what = "boundary" if payload["query"] == "boundary" else f"units-{payload['layer_id']}-{payload['max_channels']}"
    path = Path(payload["run_dir"]) / INTERNALS_DIR / "plane" / f"{what}-{stamp}.png"
    if path.exists():
        try:
            return {"path": str(path), **png_facts(path)}
        except OSError:
            pass
    picture, facts = _DRAW[payload["query"]](model, epoch, payload)
    save_png(picture, path, facts)
    return {"path": str(path), **facts}
