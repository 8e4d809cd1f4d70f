"""Inside a trained convnet, in the data worker: feature maps, learned filters and saliency.

The raw arrays come from plain Keras (`feature_maps`, `filter_tiles`, `saliency_map`); the
pictures are drawn here with numpy and Pillow and cached as PNG files in the run's folder, under
a folder named after the saved model file and its modification time, so a resumed run's newer
model never answers with an older picture. Each PNG is written to a temporary name and renamed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from app.core.errors import UserError

INTERNALS_DIR = "internals"
TILE_PX = 56               # a tile is scaled up with whole pixels to about this size
GAP_PX = 2
COLUMNS = 8
SALIENCY_PX = 224          # the overlay is scaled up to about this size
FEATURE_MAP_TYPES = ("Conv2D", "MaxPooling2D", "AveragePooling2D")

# The worker stays warm: the last model loaded is kept, so a page of pictures loads it once.
_model_cache: dict[str, tuple[str, Any]] = {}


def model_stamp(model_path: Path) -> str:
    stat = model_path.stat()
    return f"{model_path.stem}-{stat.st_mtime_ns}-{stat.st_size}"


def load_model_cached(model_path: Path) -> Any:
    import keras

    stamp = model_stamp(model_path)
    cached = _model_cache.get(str(model_path))
    if cached is None or cached[0] != stamp:
        _model_cache.clear()
        cached = (stamp, keras.models.load_model(model_path, compile=False))
        _model_cache[str(model_path)] = cached
    return cached[1]


# --- raw arrays ------------------------------------------------------------------------------------------

def single_input(model: Any) -> Any:
    """The model's input as a part-model takes it to be called with one array (LayerLab builds its models
    with a list of inputs, and Keras warns when a list-input model is called with one array)."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def feature_maps(model: Any, layer_name: str, x: np.ndarray) -> np.ndarray:
    """The layer's output for one sample `x` (without the batch axis): (height, width, channels)."""
    import keras

    sub = keras.Model(single_input(model), model.get_layer(layer_name).output)
    out = sub(np.asarray(x, dtype="float32")[None], training=False)
    return np.asarray(keras.ops.convert_to_numpy(out))[0]


def channel_order(maps: np.ndarray) -> np.ndarray:
    """Channel numbers, the most active (largest mean activation) first; ties keep their order."""
    means = maps.reshape(-1, maps.shape[-1]).mean(axis=0)
    return np.argsort(-means, kind="stable")


def filter_tiles(kernel: np.ndarray) -> list[np.ndarray]:
    """One picture per output filter of a Conv2D kernel (kh, kw, in, out): RGB when the input has 3
    channels, else the average over the input channels; each normalised to 0..1."""
    kernel = np.asarray(kernel, dtype="float64")
    tiles = []
    for f in range(kernel.shape[-1]):
        weights = kernel[..., f]
        tile = weights if weights.shape[-1] == 3 else weights.mean(axis=-1)
        tiles.append(normalise(tile))
    return tiles


def saliency_map(model: Any, x: np.ndarray, class_index: int | None = None) -> tuple[np.ndarray, str, int]:
    """Where the model looked in one sample: Grad-CAM on the last Conv2D layer for `class_index`
    (default the predicted class), at the input's height and width, 0..1; without a Conv2D layer,
    the absolute input gradient (largest over the input's channels). Returns the map, the method
    ("grad-cam" or "input-gradient") and the class explained."""
    import keras
    import tensorflow as tf

    batch = tf.convert_to_tensor(np.asarray(x, dtype="float32")[None])
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    height, width = int(batch.shape[1]), int(batch.shape[2])
    if convs:
        sub = keras.Model(single_input(model), [convs[-1].output, model.output])
        with tf.GradientTape() as tape:
            conv_out, output = sub(batch, training=False)
            score, chosen = _score(output, class_index)
        grads = tape.gradient(score, conv_out)
        weights = tf.reduce_mean(grads, axis=(1, 2))                       # (1, k)
        cam = tf.nn.relu(tf.reduce_sum(conv_out * weights[:, None, None, :], axis=-1))[0].numpy()
        cam = normalise(cam, zero_floor=True)
        resized = Image.fromarray(cam.astype("float32"), mode="F").resize((width, height), Image.Resampling.BILINEAR)
        return np.clip(np.asarray(resized, dtype="float64"), 0.0, 1.0), "grad-cam", chosen
    with tf.GradientTape() as tape:
        tape.watch(batch)
        output = model(batch, training=False)
        score, chosen = _score(output, class_index)
    grads = np.abs(tape.gradient(score, batch).numpy()[0])
    if grads.ndim == 3:
        grads = grads.max(axis=-1)
    return normalise(grads, zero_floor=True), "input-gradient", chosen


def _score(output: Any, class_index: int | None) -> tuple[Any, int]:
    """The output to explain: the chosen (or predicted) class's unit; for one unit, the unit itself,
    or its negative where class 0 is explained."""
    import tensorflow as tf

    flat = tf.reshape(output, [-1])
    values = flat.numpy()
    if values.size == 1:
        chosen = class_index if class_index is not None else int(values[0] >= 0.5)
        return (flat[0] if chosen == 1 else -flat[0]), chosen
    chosen = class_index if class_index is not None else int(values.argmax())
    return flat[chosen], chosen


# --- drawing ---------------------------------------------------------------------------------------------

def normalise(values: np.ndarray, zero_floor: bool = False) -> np.ndarray:
    """Min-max to 0..1 (a constant array becomes zeros); with zero_floor, divide by the maximum only."""
    values = np.nan_to_num(np.asarray(values, dtype="float64"))
    low = 0.0 if zero_floor else float(values.min()) if values.size else 0.0
    span = float(values.max()) - low if values.size else 0.0
    return (values - low) / span if span > 0 else np.zeros_like(values)


def draw_grid(tiles: list[np.ndarray], columns: int = COLUMNS,
              gap: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Tiles (0..1, grey or RGB, all one size) in rows of `columns`, scaled up with whole pixels, with gaps of
    the colour `gap` between them."""
    h, w = tiles[0].shape[:2]
    scale = max(1, round(TILE_PX / max(h, w)))
    th, tw = h * scale, w * scale
    cols = min(columns, len(tiles))
    rows = -(-len(tiles) // cols)
    canvas = Image.new("RGB", (cols * tw + (cols + 1) * GAP_PX, rows * th + (rows + 1) * GAP_PX), gap)
    for i, tile in enumerate(tiles):
        pixels = (np.clip(tile, 0.0, 1.0) * 255).round().astype("uint8")
        picture = Image.fromarray(pixels, mode="RGB" if pixels.ndim == 3 else "L").convert("RGB")
        picture = picture.resize((tw, th), Image.Resampling.NEAREST)
        row, col = divmod(i, cols)
        canvas.paste(picture, (GAP_PX + col * (tw + GAP_PX), GAP_PX + row * (th + GAP_PX)))
    return canvas


def heat_colours(heat: np.ndarray) -> np.ndarray:
    """A blue-to-red colour scale (jet-like) for values 0..1: (h, w, 3) in 0..1."""
    h = np.clip(heat, 0.0, 1.0)
    red = np.clip(1.5 - np.abs(4 * h - 3), 0.0, 1.0)
    green = np.clip(1.5 - np.abs(4 * h - 2), 0.0, 1.0)
    blue = np.clip(1.5 - np.abs(4 * h - 1), 0.0, 1.0)
    return np.stack([red, green, blue], axis=-1)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """The sample's picture in grey (or its colours) under the heat map, scaled up to about 224 pixels."""
    picture = normalise(image)
    if picture.ndim == 3:
        picture = picture if picture.shape[-1] == 3 else picture.mean(axis=-1)
    if picture.ndim == 2:
        picture = np.repeat(picture[..., None], 3, axis=-1)
    blended = (1 - alpha) * picture + alpha * heat_colours(heat)
    pixels = (np.clip(blended, 0.0, 1.0) * 255).round().astype("uint8")
    h, w = pixels.shape[:2]
    scale = max(1, round(SALIENCY_PX / max(h, w)))
    return Image.fromarray(pixels, mode="RGB").resize((w * scale, h * scale), Image.Resampling.NEAREST)


def save_png(picture: Image.Image, path: Path, facts: dict[str, str]) -> None:
    info = PngInfo()
    for key, value in facts.items():
        info.add_text(key, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.png")
    picture.save(tmp, format="PNG", pnginfo=info)
    os.replace(tmp, path)


def png_facts(path: Path) -> dict[str, str]:
    with Image.open(path) as picture:
        return {str(k): str(v) for k, v in getattr(picture, "text", {}).items()}


# --- the request -----------------------------------------------------------------------------------------

def _sample(dataset_dir: Path, index: int) -> np.ndarray:
    with np.load(dataset_dir / "arrays.npz", allow_pickle=False) as data:
        x = data["x_test"]
    if not 0 <= index < len(x):
        raise UserError(f"The test split has {len(x)} samples: choose an index from 0 to {len(x) - 1}.",
                        field="index")
    return np.asarray(x[index], dtype="float32")


def _layer(model: Any, name: str) -> Any:
    try:
        return model.get_layer(name)
    except ValueError as exc:
        raise UserError(f"The saved model has no layer named {name!r}.", field="layer") from exc


def _feature_maps_png(model: Any, payload: dict[str, Any]) -> tuple[Image.Image, dict[str, str]]:
    _layer(model, payload["layer_name"])
    maps = feature_maps(model, payload["layer_name"], _sample(Path(payload["dataset_dir"]), payload["index"]))
    if maps.ndim != 3:
        raise UserError(f"Layer {payload['layer_name']!r} gives no 2-D feature maps.", field="layer")
    order = channel_order(maps)[:int(payload["max_channels"])]
    picture = draw_grid([normalise(maps[..., c]) for c in order])
    return picture, {"shown": str(len(order)), "total": str(maps.shape[-1]),
                     "channels": ",".join(str(int(c)) for c in order)}


def _filters_png(model: Any, payload: dict[str, Any]) -> tuple[Image.Image, dict[str, str]]:
    layer = _layer(model, payload["layer_name"])
    if type(layer).__name__ != "Conv2D":
        raise UserError(f"Layer {payload['layer_name']!r} is not a Conv2D layer, so it has no filters.",
                        field="layer")
    kernel = np.asarray(layer.get_weights()[0])
    tiles = filter_tiles(kernel)
    shown = min(len(tiles), int(payload["max_channels"]))
    return draw_grid(tiles[:shown]), {"shown": str(shown), "total": str(len(tiles))}


def _saliency_png(model: Any, payload: dict[str, Any]) -> tuple[Image.Image, dict[str, str]]:
    x = _sample(Path(payload["dataset_dir"]), payload["index"])
    heat, method, chosen = saliency_map(model, x)
    return overlay(x, heat), {"method": method, "class": str(chosen)}


_DRAW = {"feature_maps": _feature_maps_png, "filters": _filters_png, "saliency": _saliency_png}


def png_name(payload: dict[str, Any]) -> str:
    query = payload["query"]
    if query == "filters":
        return f"filters-{payload['layer_id']}-{payload['max_channels']}.png"
    if query == "feature_maps":
        return f"sample-{payload['index']}-feature-maps-{payload['layer_id']}-{payload['max_channels']}.png"
    return f"sample-{payload['index']}-saliency.png"


def internal_png(payload: dict[str, Any]) -> dict[str, Any]:
    """Draw (or find cached) one picture of the run's saved model: payload has query ("feature_maps",
    "filters" or "saliency"), run_dir, model (its file name), dataset_dir, layer_id and layer_name
    (the graph's node id and Keras layer name), index (the test sample) and max_channels (drawn at
    most). Returns the PNG's path and the facts drawn into it (channels shown and total; the saliency
    method and class)."""
    model_path = Path(payload["run_dir"]) / payload["model"]
    path = Path(payload["run_dir"]) / INTERNALS_DIR / model_stamp(model_path) / png_name(payload)
    if path.exists():
        try:
            return {"path": str(path), **png_facts(path)}
        except OSError:
            pass  # unreadable: draw it again
    picture, facts = _DRAW[payload["query"]](load_model_cached(model_path), payload)
    save_png(picture, path, facts)
    return {"path": str(path), **facts}
