"""Pure-Python shape and parameter inference, mirroring Keras' rules.

It lets validation refuse an impossible or oversized model in milliseconds,
before any worker builds it, and phrase the reason in a learner's terms.
Keras stays the final judge: tests check that these figures equal Keras' own.
Shapes here leave out the batch axis; messages show it as None, as Keras does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app.core.errors import UserError

Shape = tuple[int, ...]


class ShapeError(UserError):
    """A layer whose input shape and parameters do not fit; `field` names the parameter to change."""


@dataclass(frozen=True)
class LayerShape:
    output: Shape
    trainable: int
    non_trainable: int = 0

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable


def format_shape(dims: Sequence[int | None]) -> str:
    """A shape as Keras prints it, batch axis included: (None, 13, 13, 64). The one shape formatter."""
    return "(" + ", ".join("None" if d is None else str(d) for d in dims) + ")"


def describe(shape: Shape) -> str:
    """One sample's shape as Keras prints a layer's output, with the batch axis: (None, 13, 13, 64)."""
    return format_shape((None, *shape))


def rank_words(shape: Shape) -> str:
    return f"a {len(shape) + 1}-D input {describe(shape)}"


def _need_rank(type_name: str, shape: Shape, rank: int, what: str, fix: str) -> None:
    if len(shape) != rank:
        raise ShapeError(f"{type_name} expects a {rank + 1}-D input {what} but got "
                         f"{rank_words(shape)}. {fix}")


def _window(size: int, window: int, stride: int, padding: str, type_name: str, axis: str,
            field: str) -> int:
    if padding == "same":
        return math.ceil(size / stride)
    if window > size:
        raise ShapeError(f"{type_name}'s {field} ({window}) is larger than the input's {axis} ({size}), "
                         f"so no output is left. Use a {field} of at most {size}, padding 'same', or "
                         f"remove a pooling layer before it.", field=field)
    return (size - window) // stride + 1


def _dense(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    (shape,) = shapes
    if not shape:
        raise ShapeError("Dense needs at least one feature axis.")
    units = p["units"]
    return LayerShape(shape[:-1] + (units,), shape[-1] * units + (units if p["use_bias"] else 0))


def _same(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    return LayerShape(shapes[0], 0)


def _flatten(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    return LayerShape((math.prod(shapes[0]),), 0)


def _reshape(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    target = tuple(p["target_shape"])
    if math.prod(target) != math.prod(shapes[0]):
        raise ShapeError(f"Reshape cannot turn {describe(shapes[0])} ({math.prod(shapes[0])} values) into "
                         f"{describe(target)} ({math.prod(target)} values): the number of values "
                         f"must stay the same.", field="target_shape")
    return LayerShape(target, 0)


def _conv1d(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    (shape,) = shapes
    _need_rank("Conv1D", shape, 2, "(batch, steps, channels)",
               "Add a Reshape layer to give the input a steps and a channels axis.")
    steps = _window(shape[0], p["kernel_size"], p["strides"], p["padding"], "Conv1D", "length", "kernel_size")
    weights = p["kernel_size"] * shape[1] * p["filters"] + (p["filters"] if p["use_bias"] else 0)
    return LayerShape((steps, p["filters"]), weights)


def _conv2d(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    (shape,) = shapes
    _need_rank("Conv2D", shape, 3, "(batch, height, width, channels)",
               "Conv2D works on images: put it before any Flatten or Dense layer, or add a "
               "Reshape layer to give the data a height, a width and channels.")
    (kh, kw), (sh, sw) = p["kernel_size"], p["strides"]
    height = _window(shape[0], kh, sh, p["padding"], "Conv2D", "height", "kernel_size")
    width = _window(shape[1], kw, sw, p["padding"], "Conv2D", "width", "kernel_size")
    weights = kh * kw * shape[2] * p["filters"] + (p["filters"] if p["use_bias"] else 0)
    return LayerShape((height, width, p["filters"]), weights)


def _pool1d(type_name: str) -> Callable[[dict[str, Any], list[Shape]], LayerShape]:
    def infer(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
        (shape,) = shapes
        _need_rank(type_name, shape, 2, "(batch, steps, channels)",
                   "Pooling along a sequence needs a steps and a channels axis.")
        stride = p["strides"] or p["pool_size"]
        steps = _window(shape[0], p["pool_size"], stride, p["padding"], type_name, "length", "pool_size")
        return LayerShape((steps, shape[1]), 0)
    return infer


def _pool2d(type_name: str) -> Callable[[dict[str, Any], list[Shape]], LayerShape]:
    def infer(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
        (shape,) = shapes
        _need_rank(type_name, shape, 3, "(batch, height, width, channels)",
                   "Pooling works on images: put it before any Flatten or Dense layer.")
        (ph, pw) = p["pool_size"]
        (sh, sw) = p["strides"] or p["pool_size"]
        height = _window(shape[0], ph, sh, p["padding"], type_name, "height", "pool_size")
        width = _window(shape[1], pw, sw, p["padding"], type_name, "width", "pool_size")
        return LayerShape((height, width, shape[2]), 0)
    return infer


def _global_pool(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    (shape,) = shapes
    _need_rank("GlobalAveragePooling2D", shape, 3, "(batch, height, width, channels)",
               "It averages each channel over an image: put it after a Conv2D or pooling layer.")
    return LayerShape((shape[2],), 0)


def _batch_norm(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    channels = shapes[0][-1]
    return LayerShape(shapes[0], 2 * channels, 2 * channels)


def _layer_norm(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    return LayerShape(shapes[0], 2 * shapes[0][-1])


def _embedding(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    return LayerShape(shapes[0] + (p["output_dim"],), p["input_dim"] * p["output_dim"])


def _recurrent(type_name: str, gates: int) -> Callable[[dict[str, Any], list[Shape]], LayerShape]:
    def infer(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
        (shape,) = shapes
        _need_rank(type_name, shape, 2, "(batch, steps, features)",
                   f"{type_name} reads sequences: feed it an Embedding, a Conv1D or another "
                   "recurrent layer with return_sequences on.")
        units, features = p["units"], shape[1]
        if type_name == "GRU":  # Keras' default reset_after=True keeps two bias vectors
            weights = gates * (units * (features + units) + 2 * units)
        else:
            weights = gates * (units * (features + units) + units)
        output = (shape[0], units) if p["return_sequences"] else (units,)
        return LayerShape(output, weights)
    return infer


def _add(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    first = shapes[0]
    for other in shapes[1:]:
        if other != first:
            listed = " and ".join(describe(s) for s in shapes)
            raise ShapeError(f"Add needs inputs of the same shape but got {listed}. Change the "
                             "layers feeding it so their outputs match, or use Concatenate.", field="inputs")
    return LayerShape(first, 0)


def _concatenate(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    rank = len(shapes[0])
    axis = p["axis"]
    if not -(rank) <= axis <= rank or axis == 0:
        raise ShapeError(f"Concatenate's axis {axis} does not exist for inputs of shape "
                         f"{describe(shapes[0])}; use -1 for the last axis.", field="axis")
    index = axis - 1 if axis > 0 else rank + axis
    for other in shapes:
        if len(other) != rank or any(a != b for k, (a, b) in enumerate(zip(other, shapes[0])) if k != index):
            listed = " and ".join(describe(s) for s in shapes)
            raise ShapeError(f"Concatenate on axis {axis} needs inputs that match on every other "
                             f"axis but got {listed}.", field="inputs")
    joined = list(shapes[0])
    joined[index] = sum(s[index] for s in shapes)
    return LayerShape(tuple(joined), 0)


RULES: dict[str, Callable[[dict[str, Any], list[Shape]], LayerShape]] = {
    "Dense": _dense,
    "Activation": _same,
    "Dropout": _same,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Rescaling": _same,
    "Conv1D": _conv1d,
    "Conv2D": _conv2d,
    "MaxPooling1D": _pool1d("MaxPooling1D"),
    "MaxPooling2D": _pool2d("MaxPooling2D"),
    "AveragePooling2D": _pool2d("AveragePooling2D"),
    "GlobalAveragePooling2D": _global_pool,
    "BatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm,
    "Embedding": _embedding,
    "LSTM": _recurrent("LSTM", 4),
    "GRU": _recurrent("GRU", 3),
    "Add": _add,
    "Concatenate": _concatenate,
}


def infer_layer(type_name: str, params: dict[str, Any], input_shapes: list[Shape]) -> LayerShape:
    if type_name == "Input":
        return LayerShape(tuple(params["shape"]), 0)
    return RULES[type_name](params, input_shapes)
