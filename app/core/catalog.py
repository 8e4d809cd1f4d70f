"""The layer catalog: every layer type LayerLab offers, with its parameters.

This one table drives the editor's forms, the API's catalog endpoint, parameter
validation, shape inference and the Keras build. Pure Python: no TensorFlow here.
Adding a layer type means one entry below plus a shape rule in `shapes.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.core.activations import ACTIVATIONS
from app.core.errors import MAX_SHOWN_CHARS, UserError, invalid_value, shown
from app.core.initializers import INITIALIZERS


@dataclass(frozen=True)
class Param:
    """One parameter of a layer type.

    kind is one of: int, optional_int (an int or empty), float, optional_float (a number or
    empty), bool, choice,
    pair (an int or two ints, such as a kernel size), optional_pair (a pair or
    empty), shape (a tuple of positive ints).
    """

    name: str
    kind: str
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_maximum: bool = False
    choices: tuple[str, ...] = ()
    max_length: int = 4

    def describe_allowed(self) -> str:
        if self.kind == "int":
            return f"an integer between {_num(self.minimum)} and {_num(self.maximum)}"
        if self.kind == "float":
            upper = "below" if self.exclusive_maximum else "up to"
            return f"a number from {_num(self.minimum)} {upper} {_num(self.maximum)}"
        if self.kind == "optional_int":
            return f"an integer between {_num(self.minimum)} and {_num(self.maximum)}, or empty for the default"
        if self.kind == "optional_float":
            return f"a number from {_num(self.minimum)} up to {_num(self.maximum)}, or empty for none"
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind in ("pair", "optional_pair"):
            empty = " (or empty for the default)" if self.kind == "optional_pair" else ""
            return (
                f"one integer or two integers (height, width) between "
                f"{_num(self.minimum)} and {_num(self.maximum)}{empty}"
            )
        if self.kind == "shape":
            return (
                f"1 to {self.max_length} positive integers separated by commas, "
                f"each at most {_num(self.maximum)}"
            )
        raise AssertionError(self.kind)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "default": self.default,
            "help": self.help,
            "allowed": self.describe_allowed(),
        }
        if self.minimum is not None:
            data["minimum"] = self.minimum
        if self.maximum is not None:
            data["maximum"] = self.maximum
        if self.exclusive_maximum:
            data["exclusive_maximum"] = True
        if self.choices:
            data["choices"] = list(self.choices)
        return data


def _num(value: float | None) -> str:
    if value is None:
        return "any"
    if float(value).is_integer():
        return f"{int(value):,}".replace(",", "")
    return f"{value:g}"


@dataclass(frozen=True)
class LayerType:
    """One kind of layer: its Keras class name and its parameters."""

    name: str
    category: str
    help: str
    params: tuple[Param, ...] = ()
    min_inputs: int = 1
    max_inputs: int | None = 1  # None: any number (merge layers)
    keras_class: str = ""
    # Keras arguments LayerLab always gives this layer (not offered as parameters), such as the value
    # range of brightness changes for inputs scaled to 0..1 as LayerLab prepares images.
    fixed: tuple[tuple[str, Any], ...] = ()
    # A wrapper (Bidirectional, TimeDistributed) builds another Keras layer inside it from these parameters; its
    # class is the "layer" parameter, or `wrapped_class` when it can wrap only one.
    wrapped_params: tuple[str, ...] = ()
    wrapped_class: str = ""
    by_name: dict[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {p.name: p for p in self.params})
        if not self.keras_class:
            object.__setattr__(self, "keras_class", self.name)

    @property
    def is_input(self) -> bool:
        return self.max_inputs == 0

    @property
    def is_merge(self) -> bool:
        """Whether it joins several inputs (Add, Concatenate, Subtract...), given to Keras as one list."""
        return self.min_inputs > 1

    @property
    def takes_several(self) -> bool:
        """Whether it may read from more than one layer (merges, and MultiHeadAttention's cross-attention)."""
        return self.max_inputs is None or self.max_inputs > 1

    @property
    def freezes_once_built(self) -> bool:
        """Whether `trainable=False` given to the constructor misses weights Keras makes later (a wrapped layer's,
        MultiHeadAttention's projections): such a layer is frozen again weight by weight once built."""
        return bool(self.wrapped_params) or self.name == "MultiHeadAttention"

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "category": self.category,
            "help": self.help,
            "min_inputs": self.min_inputs,
            "max_inputs": self.max_inputs,
            "params": [p.as_dict() for p in self.params],
        }


# Shared parameter definitions, so that one fact lives in one place.
MAX_UNITS = 1_000_000
MAX_DIM = 100_000

ACTIVATION_NAMES = tuple(ACTIVATIONS)
INITIALIZER_NAMES = tuple(INITIALIZERS)


def _activation(default: str = "linear") -> Param:
    return Param(
        "activation", "choice", default,
        "The function applied to each output; the plot beside it shows its shape.",
        choices=ACTIVATION_NAMES,
    )


def _kernel_initializer(default: str = "glorot_uniform") -> Param:
    return Param(
        "kernel_initializer", "choice", default,
        "How the weights are set before training starts.",
        choices=INITIALIZER_NAMES,
    )


_USE_BIAS = Param("use_bias", "bool", True, "Add a learned offset to every output.")
NO_CHOICE = "none"  # a choice that gives Keras None
REGULARIZERS = (NO_CHOICE, "l1", "l2", "l1_l2")
REGULARIZER_FACTOR = 0.01  # Keras' own for l1 and l2
CONSTRAINTS = (NO_CHOICE, "max_norm", "non_neg", "unit_norm")


def _regularizer_factor(of: str) -> Param:
    return Param(f"{of}_regularizer_factor", "float", REGULARIZER_FACTOR,
                 f"How strongly the {of} regularizer pulls: the factor its sum is multiplied by (Keras' default "
                 "0.01; 0.0001 to 0.001 is gentler). Used when the regularizer is not none.", minimum=0.0,
                 maximum=1.0)


_WEIGHT_RULES = (
    Param("kernel_regularizer", "choice", NO_CHOICE,
          "Adds the size of the weights to the loss, pushing them to stay small against overfitting: l1 adds the "
          "sum of their absolute values (many become exactly 0), l2 the sum of their squares, l1_l2 both, each "
          "times the factor below.", choices=REGULARIZERS),
    _regularizer_factor("kernel"),
    Param("bias_regularizer", "choice", NO_CHOICE, "The same for the offsets (rarely needed).",
          choices=REGULARIZERS),
    _regularizer_factor("bias"),
    Param("kernel_constraint", "choice", NO_CHOICE,
          "After each update, puts the weights back within bounds: max_norm keeps each unit's weights at length 2 "
          "or less, non_neg makes negative weights 0, unit_norm sets each unit's weights to length 1.",
          choices=CONSTRAINTS),
    Param("bias_constraint", "choice", NO_CHOICE, "The same for the offsets.", choices=CONSTRAINTS),
)
_PADDING = Param(
    "padding", "choice", "valid",
    "valid: the window stays inside the input, so the output shrinks; "
    "same: the input is padded so the output keeps its size (with stride 1).",
    choices=("valid", "same"),
)


def _units(default: int, help_text: str) -> Param:
    return Param("units", "int", default, help_text, minimum=1, maximum=MAX_UNITS)


def _pool_params(pool_kind: str, dims: int) -> tuple[Param, ...]:
    if dims == 1:
        size = Param("pool_size", "int", 2, "How many steps each window covers.",
                     minimum=1, maximum=MAX_DIM)
        strides = Param("strides", "optional_int", None,
                        "How far the window moves each step; empty means the same as the pool size.",
                        minimum=1, maximum=MAX_DIM)
    else:
        size = Param("pool_size", "pair", [2, 2],
                     f"The window (height, width); each window is reduced to its {pool_kind}.",
                     minimum=1, maximum=MAX_DIM)
        strides = Param("strides", "optional_pair", None,
                        "How far the window moves each step; empty means the same as the pool size.",
                        minimum=1, maximum=MAX_DIM)
    return (size, strides, _PADDING)


_BASIC_LAYER_TYPES: tuple[LayerType, ...] = (
    LayerType(
        "Input", "Core",
        "Where data enters the network; its shape is the shape of one sample.",
        (Param("shape", "shape", [28, 28, 1],
               "The shape of one sample, for example 28,28,1 for a small grayscale image "
               "or 4 for a row of four numbers.", minimum=1, maximum=MAX_DIM),),
        min_inputs=0, max_inputs=0, keras_class="InputLayer",
    ),
    LayerType(
        "Dense", "Core",
        "Every output neuron is connected to every input value: the basic building block.",
        (_units(64, "How many neurons this layer has, and so how many values it outputs."),
         _activation("relu"), _kernel_initializer(), _USE_BIAS, *_WEIGHT_RULES),
    ),
    LayerType(
        "Activation", "Core",
        "Applies an activation function on its own, with no weights.",
        (_activation("relu"),),
    ),
    LayerType(
        "Dropout", "Regularization",
        "During training, zeroes a random share of its inputs so the network cannot rely "
        "on any single value; it does nothing at prediction time.",
        (Param("rate", "float", 0.5, "The share of inputs dropped at each training step.",
               minimum=0.0, maximum=1.0, exclusive_maximum=True),),
    ),
    LayerType(
        "Flatten", "Reshaping",
        "Unrolls an image or any multi-dimensional input into one long row of numbers, "
        "as Dense layers expect.",
    ),
    LayerType(
        "Reshape", "Reshaping",
        "Rearranges the same values into a new shape; the number of values must stay equal.",
        (Param("target_shape", "shape", [28, 28, 1],
               "The new shape of one sample; its values multiply to the input's size.",
               minimum=1, maximum=MAX_DIM),),
    ),
    LayerType(
        "Rescaling", "Preprocessing",
        "Multiplies every input by scale and adds offset, for example 1/255 to bring pixels to 0..1.",
        (Param("scale", "float", 1 / 255, "The factor every input is multiplied by.",
               minimum=-1e6, maximum=1e6),
         Param("offset", "float", 0.0, "The value added after scaling.",
               minimum=-1e6, maximum=1e6)),
    ),
    LayerType(
        "Conv1D", "Convolution",
        "Slides small learned filters along a sequence (time steps, channels) to detect local patterns.",
        (Param("filters", "int", 32, "How many filters, and so how many output channels.",
               minimum=1, maximum=MAX_DIM),
         Param("kernel_size", "int", 3, "How many steps each filter looks at.",
               minimum=1, maximum=MAX_DIM),
         Param("strides", "int", 1, "How far the filter moves each step.",
               minimum=1, maximum=MAX_DIM),
         _PADDING, _activation("relu"), _kernel_initializer(), _USE_BIAS, *_WEIGHT_RULES),
    ),
    LayerType(
        "Conv2D", "Convolution",
        "Slides small learned filters over an image (height, width, channels) to detect "
        "edges, textures and shapes.",
        (Param("filters", "int", 32, "How many filters, and so how many output channels.",
               minimum=1, maximum=MAX_DIM),
         Param("kernel_size", "pair", [3, 3], "The filter's window (height, width).",
               minimum=1, maximum=MAX_DIM),
         Param("strides", "pair", [1, 1], "How far the filter moves each step (down, across).",
               minimum=1, maximum=MAX_DIM),
         _PADDING, _activation("relu"), _kernel_initializer(), _USE_BIAS, *_WEIGHT_RULES),
    ),
    LayerType(
        "MaxPooling1D", "Pooling",
        "Keeps the largest value of each window along a sequence, shortening it.",
        _pool_params("largest value", 1),
    ),
    LayerType(
        "MaxPooling2D", "Pooling",
        "Keeps the largest value of each window, halving height and width with the default 2x2.",
        _pool_params("largest value", 2),
    ),
    LayerType(
        "AveragePooling2D", "Pooling",
        "Keeps the average of each window, shrinking height and width.",
        _pool_params("average", 2),
    ),
    LayerType(
        "GlobalAveragePooling2D", "Pooling",
        "Averages each channel over the whole image, leaving one number per channel.",
    ),
    LayerType(
        "BatchNormalization", "Normalization",
        "Normalizes each channel with the batch's mean and variance, which often lets "
        "deeper networks train faster.",
        (Param("momentum", "float", 0.99,
               "How slowly the running averages used at prediction time change.",
               minimum=0.0, maximum=1.0, exclusive_maximum=True),
         Param("epsilon", "float", 0.001, "A small number added to the variance to avoid dividing by zero.",
               minimum=1e-12, maximum=1.0)),
    ),
    LayerType(
        "LayerNormalization", "Normalization",
        "Normalizes each sample's values to mean 0 and variance 1, independent of the batch.",
        (Param("epsilon", "float", 0.001, "A small number added to the variance to avoid dividing by zero.",
               minimum=1e-12, maximum=1.0),),
    ),
    LayerType(
        "Embedding", "Core",
        "Turns integer ids (words, categories) into learned vectors.",
        (Param("input_dim", "int", 1000, "How many different ids there are (the vocabulary size).",
               minimum=1, maximum=MAX_UNITS),
         Param("output_dim", "int", 32, "The length of the vector learned for each id.",
               minimum=1, maximum=MAX_DIM)),
    ),
    LayerType(
        "LSTM", "Recurrent",
        "Reads a sequence step by step, keeping a memory that can span many steps.",
        (_units(32, "The size of the memory, and of the output at each step."),
         _activation("tanh"),
         Param("return_sequences", "bool", False,
               "Output every step (to stack another recurrent layer) instead of only the last."),
         Param("dropout", "float", 0.0, "The share of inputs dropped at each training step.",
               minimum=0.0, maximum=1.0, exclusive_maximum=True)),
    ),
    LayerType(
        "GRU", "Recurrent",
        "A lighter recurrent layer than LSTM, with a similar memory of past steps.",
        (_units(32, "The size of the memory, and of the output at each step."),
         _activation("tanh"),
         Param("return_sequences", "bool", False,
               "Output every step (to stack another recurrent layer) instead of only the last."),
         Param("dropout", "float", 0.0, "The share of inputs dropped at each training step.",
               minimum=0.0, maximum=1.0, exclusive_maximum=True)),
    ),
    LayerType(
        "Add", "Merge",
        "Adds two or more inputs of the same shape value by value, as in a residual connection.",
        min_inputs=2, max_inputs=None,
    ),
    LayerType(
        "Concatenate", "Merge",
        "Joins two or more inputs side by side along one axis.",
        (Param("axis", "int", -1,
               "The axis to join along; -1 is the last one (the channels or features).",
               minimum=-4, maximum=4),),
        min_inputs=2, max_inputs=None,
    ),
)


def _rate(default: float, what: str) -> Param:
    return Param("rate", "float", default, what, minimum=0.0, maximum=1.0, exclusive_maximum=True)


def _factor(name: str, default: float, what: str) -> Param:
    return Param(name, "float", default, what, minimum=0.0, maximum=1.0)


_FILTERS = Param("filters", "int", 32, "How many filters, and so how many output channels.", minimum=1, maximum=MAX_DIM)
_KERNEL_2D = Param("kernel_size", "pair", [3, 3], "The filter's window (height, width).", minimum=1, maximum=MAX_DIM)
_STRIDES_2D = Param("strides", "pair", [1, 1], "How far the filter moves each step (down, across).",
                    minimum=1, maximum=MAX_DIM)
_DEPTH_MULTIPLIER = Param("depth_multiplier", "int", 1, "How many filters each input channel gets of its own.",
                          minimum=1, maximum=1024)
_RETURN_SEQUENCES = Param("return_sequences", "bool", False,
                          "Output every step (to stack another recurrent layer) instead of only the last.")
_SIZE_2D = (Param("height", "int", 24, "The height of the output images, in pixels.", minimum=1, maximum=MAX_DIM),
            Param("width", "int", 24, "The width of the output images, in pixels.", minimum=1, maximum=MAX_DIM))
_UNIT_RANGE = (("value_range", (0.0, 1.0)),)
RECURRENT_LAYERS = ("LSTM", "GRU", "SimpleRNN")  # LayerLab prepares images as values from 0 to 1

_MORE_LAYER_TYPES: tuple[LayerType, ...] = (
    # --- convolution -----------------------------------------------------------------------------------
    LayerType(
        "Conv2DTranspose", "Convolution",
        "The reverse of a strided Conv2D: spreads each input value over a window, growing height and width, "
        "as decoders and image generators do.",
        (_FILTERS, _KERNEL_2D, _STRIDES_2D, _PADDING, _activation("relu"), _kernel_initializer(), _USE_BIAS,
         *_WEIGHT_RULES),
    ),
    LayerType(
        "SeparableConv2D", "Convolution",
        "A Conv2D in two cheaper steps: one small filter per input channel, then a 1x1 convolution that "
        "mixes the channels. Far fewer weights for nearly the same power.",
        (_FILTERS, _KERNEL_2D, _STRIDES_2D, _PADDING, _DEPTH_MULTIPLIER, _activation("relu"), _USE_BIAS),
    ),
    LayerType(
        "DepthwiseConv2D", "Convolution",
        "Filters each input channel on its own, without mixing channels: the first step of a separable "
        "convolution.",
        (_KERNEL_2D, _STRIDES_2D, _PADDING, _DEPTH_MULTIPLIER, _activation("linear"), _USE_BIAS),
    ),
    LayerType(
        "UpSampling1D", "Reshaping",
        "Repeats each step of a sequence `size` times, lengthening it.",
        (Param("size", "int", 2, "How many times each step is repeated.", minimum=1, maximum=1024),),
    ),
    LayerType(
        "UpSampling2D", "Reshaping",
        "Enlarges an image by repeating (nearest) or blending (bilinear) its pixels; no weights.",
        (Param("size", "pair", [2, 2], "How many times height and width grow.", minimum=1, maximum=1024),
         Param("interpolation", "choice", "nearest",
               "nearest repeats each pixel; bilinear blends neighbours for a smoother image.",
               choices=("nearest", "bilinear"))),
    ),
    LayerType(
        "ZeroPadding2D", "Reshaping",
        "Adds rows and columns of zeros around an image, so a following convolution keeps its borders.",
        (Param("padding", "pair", [1, 1], "Rows of zeros added at the top and the bottom, and columns at each side.",
               minimum=0, maximum=MAX_DIM),),
    ),
    LayerType(
        "Cropping2D", "Reshaping",
        "Cuts rows and columns off the edges of an image.",
        (Param("cropping", "pair", [1, 1], "Rows cut at the top and at the bottom, and columns at each side.",
               minimum=0, maximum=MAX_DIM),),
    ),
    # --- pooling ---------------------------------------------------------------------------------------
    LayerType(
        "AveragePooling1D", "Pooling",
        "Keeps the average of each window along a sequence, shortening it.",
        _pool_params("average", 1),
    ),
    LayerType(
        "GlobalMaxPooling1D", "Pooling",
        "Keeps each channel's largest value over the whole sequence: one number per channel.",
    ),
    LayerType(
        "GlobalMaxPooling2D", "Pooling",
        "Keeps each channel's largest value over the whole image: one number per channel.",
    ),
    LayerType(
        "GlobalAveragePooling1D", "Pooling",
        "Averages each channel over the whole sequence: one number per channel.",
    ),
    # --- sequences -------------------------------------------------------------------------------------
    LayerType(
        "SimpleRNN", "Recurrent",
        "The plainest recurrent layer: each step mixes the input with the previous output. It forgets "
        "quickly, which is why LSTM and GRU were invented.",
        (_units(32, "The size of the output at each step."), _activation("tanh"), _RETURN_SEQUENCES,
         Param("dropout", "float", 0.0, "The share of inputs dropped at each training step.",
               minimum=0.0, maximum=1.0, exclusive_maximum=True)),
    ),
    LayerType(
        "RepeatVector", "Reshaping",
        "Repeats a row of features n times, making a sequence of n equal steps (to feed a decoder).",
        (Param("n", "int", 4, "How many steps the sequence has.", minimum=1, maximum=MAX_DIM),),
    ),
    LayerType(
        "Permute", "Reshaping",
        "Reorders the axes of each sample: 2,1 swaps steps and features.",
        (Param("dims", "shape", [2, 1], "The new order of the axes, numbered from 1 (the batch axis does not "
               "count).", minimum=1, maximum=8),),
    ),
    LayerType(
        "Masking", "Core",
        "Marks the steps whose values all equal mask_value as padding, so recurrent layers skip them.",
        (Param("mask_value", "float", 0.0, "The value that marks a padded step.", minimum=-1e6, maximum=1e6),),
    ),
    # --- activations as layers -------------------------------------------------------------------------
    LayerType(
        "ReLU", "Activations",
        "relu as a layer, with its options: a ceiling (max_value, 6 gives relu6), a slope for negative "
        "inputs, and the threshold below which that slope applies.",
        (Param("max_value", "optional_float", None, "The largest output; empty for no ceiling.",
               minimum=0.0, maximum=1e6),
         Param("negative_slope", "float", 0.0, "The slope below the threshold (0: plain relu).",
               minimum=0.0, maximum=1e6),
         Param("threshold", "float", 0.0, "Inputs below this value get the negative slope.",
               minimum=0.0, maximum=1e6)),
    ),
    LayerType(
        "LeakyReLU", "Activations",
        "Like relu, but negative inputs keep a small slope, so a unit never stops learning entirely.",
        (Param("negative_slope", "float", 0.3, "The slope for negative inputs.", minimum=0.0, maximum=1e6),),
    ),
    LayerType(
        "PReLU", "Activations",
        "A leaky relu whose negative slope is learned, one per value of the input.",
    ),
    LayerType(
        "ELU", "Activations",
        "Like relu for positive inputs, smoothly bending towards -alpha for negative ones.",
        (Param("alpha", "float", 1.0, "The value negative inputs approach.", minimum=0.0, maximum=1e6),),
    ),
    LayerType(
        "Softmax", "Activations",
        "Turns scores along an axis into probabilities that sum to 1.",
        (Param("axis", "int", -1, "The axis whose values are turned into probabilities; -1 is the last.",
               minimum=-4, maximum=4),),
    ),
    # --- merges ----------------------------------------------------------------------------------------
    LayerType(
        "Multiply", "Merge",
        "Multiplies two or more inputs of the same shape value by value, as in a gate.",
        min_inputs=2, max_inputs=None,
    ),
    LayerType(
        "Subtract", "Merge",
        "Subtracts the second input from the first, value by value (both of the same shape).",
        min_inputs=2, max_inputs=2,
    ),
    LayerType(
        "Average", "Merge",
        "Averages two or more inputs of the same shape value by value, as when combining models.",
        min_inputs=2, max_inputs=None,
    ),
    LayerType(
        "Maximum", "Merge",
        "Keeps the largest of two or more inputs of the same shape, value by value.",
        min_inputs=2, max_inputs=None,
    ),
    LayerType(
        "Minimum", "Merge",
        "Keeps the smallest of two or more inputs of the same shape, value by value.",
        min_inputs=2, max_inputs=None,
    ),
    # --- normalisation and regularisation --------------------------------------------------------------
    LayerType(
        "GroupNormalization", "Normalization",
        "Normalizes groups of channels within each sample: like BatchNormalization, but independent of "
        "the batch size. The channels must divide into the groups.",
        (Param("groups", "int", 8, "How many groups the channels are split into.", minimum=1, maximum=MAX_DIM),
         Param("epsilon", "float", 0.001, "A small number added to the variance to avoid dividing by zero.",
               minimum=1e-12, maximum=1.0)),
    ),
    LayerType(
        "UnitNormalization", "Normalization",
        "Scales each sample's vector to length 1, keeping only its direction.",
    ),
    LayerType(
        "SpatialDropout1D", "Regularization",
        "Drops whole channels of a sequence during training rather than single values, which suits "
        "neighbouring steps that are alike.",
        (_rate(0.2, "The share of channels dropped at each training step."),),
    ),
    LayerType(
        "SpatialDropout2D", "Regularization",
        "Drops whole feature maps of an image during training rather than single pixels.",
        (_rate(0.2, "The share of feature maps dropped at each training step."),),
    ),
    LayerType(
        "GaussianNoise", "Regularization",
        "Adds random noise to every value during training, so the network cannot rely on exact values.",
        (Param("stddev", "float", 0.1, "How large the noise is (its standard deviation).",
               minimum=0.0, maximum=1.0),),
    ),
    LayerType(
        "GaussianDropout", "Regularization",
        "Multiplies every value by random noise centred on 1 during training.",
        (_rate(0.1, "How strong the noise is, as a dropout rate."),),
    ),
    LayerType(
        "ActivityRegularization", "Regularization",
        "Adds the size of its inputs to the loss (l1: their absolute values, l2: their squares), "
        "pushing the layer before it towards small outputs.",
        (Param("l1", "float", 0.0, "The weight of the sum of absolute values.", minimum=0.0, maximum=1e6),
         Param("l2", "float", 0.0, "The weight of the sum of squares.", minimum=0.0, maximum=1e6)),
    ),
    # --- preprocessing inside the model ----------------------------------------------------------------
    LayerType(
        "Resizing", "Preprocessing",
        "Resizes every image to height x width, so images of one size fit a network made for another.",
        (*_SIZE_2D, Param("interpolation", "choice", "bilinear", "How new pixels are computed from old ones.",
                          choices=("bilinear", "nearest", "bicubic", "area"))),
    ),
    LayerType(
        "CenterCrop", "Preprocessing",
        "Keeps the centre height x width of every image (a smaller image is enlarged first).",
        _SIZE_2D,
    ),
    LayerType(
        "Normalization", "Preprocessing",
        "Shifts and scales each feature (or channel) to mean 0 and variance 1, with the mean and variance "
        "measured on the training split when a run starts: inputs of very different sizes then train well.",
    ),
    # --- data augmentation: active in training only ----------------------------------------------------
    LayerType(
        "RandomFlip", "Augmentation",
        "During training, mirrors each image at random; at prediction time it passes images unchanged.",
        (Param("mode", "choice", "horizontal", "Which flips: left-right, top-bottom, or both.",
               choices=("horizontal", "vertical", "horizontal_and_vertical")),),
    ),
    LayerType(
        "RandomRotation", "Augmentation",
        "During training, turns each image by a random angle of up to factor x 360 degrees.",
        (_factor("factor", 0.1, "The largest turn, as a share of a full circle (0.1 is 36 degrees)."),),
    ),
    LayerType(
        "RandomZoom", "Augmentation",
        "During training, zooms each image in or out at random by up to height_factor.",
        (_factor("height_factor", 0.1, "The largest zoom, as a share of the height (0.1 is 10%)."),),
    ),
    LayerType(
        "RandomTranslation", "Augmentation",
        "During training, shifts each image at random by up to a share of its height and width.",
        (_factor("height_factor", 0.1, "The largest shift up or down, as a share of the height."),
         _factor("width_factor", 0.1, "The largest shift left or right, as a share of the width.")),
    ),
    LayerType(
        "RandomContrast", "Augmentation",
        "During training, strengthens or weakens each image's contrast at random by up to factor.",
        (_factor("factor", 0.2, "The largest change of contrast (0.2 is 20%)."),),
        fixed=_UNIT_RANGE,
    ),
    LayerType(
        "RandomBrightness", "Augmentation",
        "During training, brightens or darkens each image at random by up to factor.",
        (_factor("factor", 0.2, "The largest change of brightness, as a share of the value range."),),
        fixed=_UNIT_RANGE,
    ),
    # --- wrappers, attention and the dot product -------------------------------------------------------
    LayerType(
        "Bidirectional", "Recurrent",
        "Reads the sequence twice, forwards and backwards, with two copies of a recurrent layer, and joins "
        "what both found: each step then knows what comes before and after it.",
        (Param("layer", "choice", "LSTM", "The recurrent layer read in each direction.",
               choices=RECURRENT_LAYERS),
         _units(32, "The size of each direction's output at each step."), _activation("tanh"), _RETURN_SEQUENCES,
         Param("dropout", "float", 0.0, "The share of inputs dropped at each training step.",
               minimum=0.0, maximum=1.0, exclusive_maximum=True),
         Param("merge_mode", "choice", "concat",
               "How the two directions are joined: concat puts them side by side (twice the units), sum, mul "
               "and ave combine them value by value.", choices=("concat", "sum", "mul", "ave"))),
        wrapped_params=("units", "activation", "return_sequences", "dropout"),
    ),
    LayerType(
        "TimeDistributed", "Recurrent",
        "Applies one Dense layer to every step of a sequence, with the same weights at each step.",
        (_units(32, "How many values the Dense layer outputs at each step."), _activation("linear"),
         _kernel_initializer(), _USE_BIAS),
        wrapped_params=("units", "activation", "kernel_initializer", "use_bias"), wrapped_class="Dense",
    ),
    LayerType(
        "MultiHeadAttention", "Attention",
        "Lets every step look at every other step and take what is relevant to it, with several heads looking "
        "for different things. With one input it is self-attention; with two, the first asks (the query) and "
        "the second is looked at (the value), as in cross-attention.",
        (Param("num_heads", "int", 2, "How many heads attend in parallel, each with its own weights.",
               minimum=1, maximum=128),
         Param("key_dim", "int", 16, "The size of each head's query and key vectors.", minimum=1, maximum=MAX_DIM),
         Param("value_dim", "optional_int", None, "The size of each head's value vectors; empty: the same as "
               "key_dim.", minimum=1, maximum=MAX_DIM),
         Param("dropout", "float", 0.0, "The share of attention weights dropped at each training step.",
               minimum=0.0, maximum=1.0, exclusive_maximum=True),
         _USE_BIAS),
        min_inputs=1, max_inputs=2,
    ),
    LayerType(
        "Dot", "Merge",
        "The dot product of two inputs along an axis: how much they point the same way (with normalize, the "
        "cosine similarity).",
        (Param("axes", "int", -1, "The axis multiplied and summed in both inputs; -1 is the last one.",
               minimum=-4, maximum=4),
         Param("normalize", "bool", False, "Scale both inputs to length 1 first, giving the cosine similarity.")),
        min_inputs=2, max_inputs=2,
    ),
)

# Layer types that can hold weights get a `trainable` switch: off, training leaves their weights as they are.
_TRAINABLE = Param("trainable", "bool", True,
                   "Off: training leaves this layer's weights as they are (frozen), as when reusing a trained network.")
_WITH_WEIGHTS = frozenset({
    "Dense", "Conv1D", "Conv2D", "Conv2DTranspose", "SeparableConv2D", "DepthwiseConv2D", "BatchNormalization",
    "LayerNormalization", "GroupNormalization", "Embedding", "LSTM", "GRU", "SimpleRNN", "PReLU", "Bidirectional",
    "TimeDistributed", "MultiHeadAttention"})


def _with_trainable(layer_type: LayerType) -> LayerType:
    if layer_type.name not in _WITH_WEIGHTS:
        return layer_type
    return LayerType(layer_type.name, layer_type.category, layer_type.help, (*layer_type.params, _TRAINABLE),
                     layer_type.min_inputs, layer_type.max_inputs, layer_type.keras_class, layer_type.fixed,
                     layer_type.wrapped_params, layer_type.wrapped_class)


LAYER_TYPES = tuple(_with_trainable(t) for t in _BASIC_LAYER_TYPES + _MORE_LAYER_TYPES)
CATALOG: dict[str, LayerType] = {t.name: t for t in LAYER_TYPES}


def get_layer_type(name: str) -> LayerType:
    try:
        return CATALOG[name]
    except KeyError:
        raise UserError(f"Unknown layer type {shown(name)}. Expected one of: {', '.join(CATALOG)}.",
                        field="type") from None


def coerce_param(param: Param, value: Any) -> Any:
    """Return the normalized value, or raise UserError in Keras' wording."""

    def fail() -> UserError:
        # A number typed into a form arrives as text; show it as the number it is.
        numeric_text = isinstance(value, str) and _as_float(value) is not None
        return invalid_value(param.name, param.describe_allowed(), value,
                             received_text=value.strip() if numeric_text else None)

    kind = param.kind
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "on", "off", "1", "0"):
            return value.lower() in ("true", "on", "1")
        raise fail()
    if kind == "choice":
        if isinstance(value, str) and value in param.choices:
            return value
        raise fail()
    if kind == "optional_int" and (value is None or value == ""):
        return None
    if kind in ("int", "optional_int"):
        number = _as_int(value)
        if number is None or not _within(param, number):
            raise fail()
        return number
    if kind == "optional_float" and (value is None or value == ""):
        return None
    if kind in ("float", "optional_float"):
        real = _as_float(value)
        if real is None or not _within(param, real):
            raise fail()
        return real
    if kind in ("pair", "optional_pair"):
        if kind == "optional_pair" and (value is None or value == "" or value == []):
            return None
        items = _as_int_list(value)
        if items is None or len(items) not in (1, 2) or not all(_within(param, i) for i in items):
            raise fail()
        return items * 2 if len(items) == 1 else items
    if kind == "shape":
        items = _as_int_list(value)
        if (items is None or not 1 <= len(items) <= param.max_length
                or not all(_within(param, i) for i in items)):
            raise fail()
        return items
    raise AssertionError(kind)


def coerce_params(layer_type: LayerType, values: dict[str, Any]) -> dict[str, Any]:
    """Validate a partial or full set of parameters; unknown names are refused."""
    unknown = [name for name in values if name not in layer_type.by_name]
    if unknown:
        allowed = ", ".join(layer_type.by_name) or "none"
        raise UserError(f"{layer_type.name} has no parameter `{str(unknown[0])[:MAX_SHOWN_CHARS]}`. "
                        f"Its parameters are: {allowed}.", field=unknown[0])
    return {name: coerce_param(layer_type.by_name[name], v) for name, v in values.items()}


def _within(param: Param, number: float) -> bool:
    if param.minimum is not None and number < param.minimum:
        return False
    if param.maximum is not None:
        if param.exclusive_maximum and number >= param.maximum:
            return False
        if not param.exclusive_maximum and number > param.maximum:
            return False
    return True


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit() and len(text) <= 12:
            return int(text)
    return None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and len(value) <= 40:
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return number


def _as_int_list(value: Any) -> list[int] | None:
    if isinstance(value, str):
        text = value.strip().strip("()[]")
        if not text or len(text) > 60:
            return None
        parts = [p for p in text.replace("x", ",").replace("×", ",").split(",")]
        items = [_as_int(p) for p in parts]
    elif isinstance(value, (list, tuple)):
        items = [_as_int(v) for v in value]
    else:
        items = [_as_int(value)]
    if not items or any(i is None for i in items):
        return None
    return items  # type: ignore[return-value]
