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


def _image(type_name: str, shape: Shape, fix: str = "It works on images: put it before any Flatten or Dense "
           "layer.") -> tuple[int, int, int]:
    _need_rank(type_name, shape, 3, "(batch, height, width, channels)", fix)
    return shape[0], shape[1], shape[2]


def _sequence(type_name: str, shape: Shape) -> tuple[int, int]:
    _need_rank(type_name, shape, 2, "(batch, steps, channels)",
               "It works on sequences: feed it an Embedding, a Conv1D or a recurrent layer with return_sequences on.")
    return shape[0], shape[1]


def _conv2d_transpose(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    height, width, channels = _image("Conv2DTranspose", shapes[0])
    (kh, kw), (sh, sw) = p["kernel_size"], p["strides"]
    if p["padding"] == "same":
        out = (height * sh, width * sw)
    else:
        out = ((height - 1) * sh + max(kh, sh), (width - 1) * sw + max(kw, sw))
    weights = kh * kw * channels * p["filters"] + (p["filters"] if p["use_bias"] else 0)
    return LayerShape((*out, p["filters"]), weights)


def _depthwise(type_name: str) -> Callable[[dict[str, Any], list[Shape]], LayerShape]:
    """SeparableConv2D (a depthwise step, then a 1x1 step to `filters`) and DepthwiseConv2D (the first alone)."""
    def infer(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
        height, width, channels = _image(type_name, shapes[0])
        (kh, kw), (sh, sw) = p["kernel_size"], p["strides"]
        out_h = _window(height, kh, sh, p["padding"], type_name, "height", "kernel_size")
        out_w = _window(width, kw, sw, p["padding"], type_name, "width", "kernel_size")
        depthwise = kh * kw * channels * p["depth_multiplier"]
        if type_name == "DepthwiseConv2D":
            out = channels * p["depth_multiplier"]
            return LayerShape((out_h, out_w, out), depthwise + (out if p["use_bias"] else 0))
        pointwise = channels * p["depth_multiplier"] * p["filters"]
        return LayerShape((out_h, out_w, p["filters"]),
                          depthwise + pointwise + (p["filters"] if p["use_bias"] else 0))
    return infer


def _upsampling1d(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    steps, channels = _sequence("UpSampling1D", shapes[0])
    return LayerShape((steps * p["size"], channels), 0)


def _upsampling2d(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    height, width, channels = _image("UpSampling2D", shapes[0])
    return LayerShape((height * p["size"][0], width * p["size"][1], channels), 0)


def _zero_padding2d(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    height, width, channels = _image("ZeroPadding2D", shapes[0])
    return LayerShape((height + 2 * p["padding"][0], width + 2 * p["padding"][1], channels), 0)


def _cropping2d(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    height, width, channels = _image("Cropping2D", shapes[0])
    (ch, cw) = p["cropping"]
    for size, cut, axis in ((height, ch, "height"), (width, cw, "width")):
        if 2 * cut >= size:
            raise ShapeError(f"Cropping2D cuts {cut} from each side of an input {size} high/wide in its {axis}, which "
                             f"leaves nothing. Cut at most {(size - 1) // 2} from each side.", field="cropping")
    return LayerShape((height - 2 * ch, width - 2 * cw, channels), 0)


def _global_pool_over(type_name: str, rank: int) -> Callable[[dict[str, Any], list[Shape]], LayerShape]:
    def infer(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
        shape = shapes[0]
        if rank == 2:
            _sequence(type_name, shape)
        else:
            _image(type_name, shape, "It pools each channel over an image: put it after a Conv2D or pooling layer.")
        return LayerShape((shape[-1],), 0)
    return infer


def _simple_rnn(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    steps, features = _sequence("SimpleRNN", shapes[0])
    units = p["units"]
    output = (steps, units) if p["return_sequences"] else (units,)
    return LayerShape(output, units * (features + units) + units)


def _repeat_vector(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    (shape,) = shapes
    _need_rank("RepeatVector", shape, 1, "(batch, features)", "Put it after a Dense layer or a Flatten.")
    return LayerShape((p["n"], shape[0]), 0)


def _permute(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    (shape,) = shapes
    dims = list(p["dims"])
    if sorted(dims) != list(range(1, len(shape) + 1)):
        axes = ",".join(str(i) for i in range(1, len(shape) + 1))
        raise ShapeError(f"Permute's dims must list each axis of the input {describe(shape)} once, numbered from 1 "
                         f"(for example {axes[::-1] if len(shape) == 2 else axes}); got "
                         f"{','.join(map(str, dims))}.", field="dims")
    return LayerShape(tuple(shape[d - 1] for d in dims), 0)


def _prelu(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    return LayerShape(shapes[0], math.prod(shapes[0]))


def _softmax(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    rank = len(shapes[0])
    if not -rank <= p["axis"] <= rank or p["axis"] == 0:
        batch = " (axis 0 is the batch: probabilities across samples make no sense)" if p["axis"] == 0 else ""
        raise ShapeError(f"Softmax's axis {p['axis']} does not exist for inputs of shape {describe(shapes[0])}"
                         f"{batch}; use -1 for the last axis.", field="axis")
    return LayerShape(shapes[0], 0)


def _same_shapes(type_name: str) -> Callable[[dict[str, Any], list[Shape]], LayerShape]:
    """Merges value by value (Add, Multiply, Subtract...): every input has the same shape."""
    def infer(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
        first = shapes[0]
        for other in shapes[1:]:
            if other != first:
                listed = " and ".join(describe(s) for s in shapes)
                raise ShapeError(f"{type_name} needs inputs of the same shape but got {listed}. Change the layers "
                                 "feeding it so their outputs match, or use Concatenate.", field="inputs")
        return LayerShape(first, 0)
    return infer


def _group_norm(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    channels = shapes[0][-1]
    if channels % p["groups"]:
        raise ShapeError(f"GroupNormalization splits the {channels} channels of its input into {p['groups']} groups, "
                         "but they do not divide evenly. Choose a number of groups that divides "
                         f"{channels}.", field="groups")
    return LayerShape(shapes[0], 2 * channels)


def _spatial_dropout(type_name: str, rank: int) -> Callable[[dict[str, Any], list[Shape]], LayerShape]:
    def infer(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
        if rank == 2:
            _sequence(type_name, shapes[0])
        else:
            _image(type_name, shapes[0])
        return LayerShape(shapes[0], 0)
    return infer


def _image_same(type_name: str) -> Callable[[dict[str, Any], list[Shape]], LayerShape]:
    """Image augmentation: the same shape out, for images only."""
    def infer(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
        _image(type_name, shapes[0], "Augmentation works on images: put it right after the Input.")
        return LayerShape(shapes[0], 0)
    return infer


def _image_resized(type_name: str) -> Callable[[dict[str, Any], list[Shape]], LayerShape]:
    """Resizing and CenterCrop: height x width out, the channels kept."""
    def infer(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
        _, _, channels = _image(type_name, shapes[0])
        return LayerShape((p["height"], p["width"], channels), 0)
    return infer


def _normalization(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    """A mean and a variance per feature of the last axis, and the count of samples they were measured on."""
    return LayerShape(shapes[0], 0, 2 * shapes[0][-1] + 1)


def _bidirectional(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    """Two copies of the wrapped recurrent layer; concat puts their outputs side by side."""
    inner = RULES[p["layer"]](p, shapes)
    if p["merge_mode"] != "concat":
        return LayerShape(inner.output, 2 * inner.trainable)
    return LayerShape(inner.output[:-1] + (2 * inner.output[-1],), 2 * inner.trainable)


def _time_distributed(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    (shape,) = shapes
    if len(shape) < 2:
        raise ShapeError(f"TimeDistributed expects an input of at least 3 dimensions (batch, steps, features) but got "
                         f"{rank_words(shape)}. Feed it a sequence: an Embedding, a Conv1D, or a recurrent layer with "
                         "return_sequences on.")
    inner = _dense(p, [shape[1:]])
    return LayerShape((shape[0], *inner.output), inner.trainable)


def _attention(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    """Query, key and value projections per head, then one projection back to the query's size."""
    query, value = shapes[0], shapes[-1]
    if len(query) != len(value):
        raise ShapeError(f"MultiHeadAttention needs a query and a value of the same rank but got {describe(query)} "
                         f"and {describe(value)}.", field="inputs")
    heads, key_dim = p["num_heads"], p["key_dim"]
    value_dim = p["value_dim"] or key_dim
    bias = 1 if p["use_bias"] else 0
    weights = (heads * key_dim * (query[-1] + bias) + heads * key_dim * (value[-1] + bias)
               + heads * value_dim * (value[-1] + bias) + query[-1] * (heads * value_dim + bias))
    return LayerShape(query, weights)


def _dot(p: dict[str, Any], shapes: list[Shape]) -> LayerShape:
    first, second = shapes
    axes = p["axes"]
    if len(first) != len(second) or not 1 <= abs(axes) <= len(first) or axes == 0:
        batch = " (axis 0 is the batch)" if axes == 0 else ""
        raise ShapeError(f"Dot's axes {axes} does not fit inputs of shapes {describe(first)} and {describe(second)}"
                         f"{batch}. It needs two inputs of the same rank and an axis between 1 and {len(first)}, or "
                         "-1 for the last.", field="axes")
    index = axes - 1 if axes > 0 else len(first) + axes
    if first[index] != second[index]:
        raise ShapeError(f"Dot multiplies the axis {axes} of both inputs value by value, so it needs the same size "
                         f"there; got {first[index]} and {second[index]} ({describe(first)} and {describe(second)}).",
                         field="inputs")
    output = first[:index] + first[index + 1:] + second[:index] + second[index + 1:]
    return LayerShape(output or (1,), 0)


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
    "Add": _same_shapes("Add"),
    "Concatenate": _concatenate,
    "Conv2DTranspose": _conv2d_transpose,
    "SeparableConv2D": _depthwise("SeparableConv2D"),
    "DepthwiseConv2D": _depthwise("DepthwiseConv2D"),
    "UpSampling1D": _upsampling1d,
    "UpSampling2D": _upsampling2d,
    "ZeroPadding2D": _zero_padding2d,
    "Cropping2D": _cropping2d,
    "AveragePooling1D": _pool1d("AveragePooling1D"),
    "GlobalMaxPooling1D": _global_pool_over("GlobalMaxPooling1D", 2),
    "GlobalMaxPooling2D": _global_pool_over("GlobalMaxPooling2D", 3),
    "GlobalAveragePooling1D": _global_pool_over("GlobalAveragePooling1D", 2),
    "SimpleRNN": _simple_rnn,
    "RepeatVector": _repeat_vector,
    "Permute": _permute,
    "Masking": _same,
    "ReLU": _same,
    "LeakyReLU": _same,
    "PReLU": _prelu,
    "ELU": _same,
    "Softmax": _softmax,
    "Multiply": _same_shapes("Multiply"),
    "Subtract": _same_shapes("Subtract"),
    "Average": _same_shapes("Average"),
    "Maximum": _same_shapes("Maximum"),
    "Minimum": _same_shapes("Minimum"),
    "GroupNormalization": _group_norm,
    "UnitNormalization": _same,
    "SpatialDropout1D": _spatial_dropout("SpatialDropout1D", 2),
    "SpatialDropout2D": _spatial_dropout("SpatialDropout2D", 3),
    "GaussianNoise": _same,
    "GaussianDropout": _same,
    "ActivityRegularization": _same,
    "Normalization": _normalization,
    "Resizing": _image_resized("Resizing"),
    "CenterCrop": _image_resized("CenterCrop"),
    "RandomFlip": _image_same("RandomFlip"),
    "RandomRotation": _image_same("RandomRotation"),
    "RandomZoom": _image_same("RandomZoom"),
    "RandomTranslation": _image_same("RandomTranslation"),
    "RandomContrast": _image_same("RandomContrast"),
    "RandomBrightness": _image_same("RandomBrightness"),
    "Bidirectional": _bidirectional,
    "TimeDistributed": _time_distributed,
    "MultiHeadAttention": _attention,
    "Dot": _dot,
}


def infer_layer(type_name: str, params: dict[str, Any], input_shapes: list[Shape]) -> LayerShape:
    if type_name == "Input":
        return LayerShape(tuple(params["shape"]), 0)
    inferred = RULES[type_name](params, input_shapes)
    if params.get("trainable", True) is False:  # frozen: every weight counts as non-trainable, as in Keras
        return LayerShape(inferred.output, 0, inferred.params)
    return inferred
