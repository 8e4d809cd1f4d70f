"""A Keras model's config, read as data and mapped onto LayerLab's catalog.

The config is the `config.json` of a `.keras` file, or what `model.to_json()` writes. It is parsed
as JSON and walked here; nothing is ever deserialized by Keras, so no code in it can run. Every
layer must be a Keras layer type that the catalog offers, with an activation and an initializer
from the catalog's lists and parameters that pass the catalog's own checks; anything else is
refused with a message naming the layer. Settings that only matter while training (regularizers,
constraints, seeds) are not refused but listed as not imported. Pure Python: no Keras here.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.core import graph as edits
from app.core.catalog import CATALOG, INITIALIZER_NAMES, NO_CHOICE
from app.core.errors import TooLarge, UserError, shown
from app.core.graph import MAX_NODES, Graph
from app.core.text import byte_size, one_of
from app.core.validation import Limits, validate

MAX_CONFIG_BYTES = 8 * 1024 * 1024  # a 200-layer functional config takes about 1 MB
MAX_CONFIG_DEPTH = 40  # a functional config nests about 10 deep
MODEL_CLASSES = ("Functional", "Sequential", "Model")
KERAS_TENSOR = "__keras_tensor__"
# Serialized objects that carry code or load files: refused wherever they appear.
CODE_CLASSES = {
    "Lambda": "a Lambda layer holds Python code, and LayerLab never runs code from an uploaded file",
    "__lambda__": "it holds Python code (a lambda), and LayerLab never runs code from an uploaded file",
    "function": "it names a Python function, and LayerLab never runs code from an uploaded file",
    "TFSMLayer": "a TFSMLayer loads a TensorFlow SavedModel from disk and runs it, which LayerLab never does "
                 "for an uploaded file",
}
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_TYPE_OF_CLASS = {t.keras_class: t.name for t in CATALOG.values()}


def _refusal(message: str, layer: str | None = None, class_name: str | None = None) -> UserError:
    details = {"layer": layer, "class_name": class_name} if layer is not None else None
    return UserError(message, field="file", details=details)


def parse_config(data: bytes, what: str = "config.json") -> dict[str, Any]:
    """The JSON object in `data`, within size and nesting limits; raises UserError otherwise."""
    if len(data) > MAX_CONFIG_BYTES:
        raise TooLarge(f"{what} takes {byte_size(len(data))}; a model's config may take at most "
                       f"{byte_size(MAX_CONFIG_BYTES)}.", field="file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{what} is not UTF-8 text. Expected the JSON that Keras writes. "
                        "Received: bytes that are not text", field="file") from None
    if _json_depth(text) > MAX_CONFIG_DEPTH:
        raise UserError(f"{what} nests deeper than {MAX_CONFIG_DEPTH} levels; a Keras model's config "
                        "nests about 10.", field="file")
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{what} is not valid JSON ({str(exc)[:120]}). Expected the JSON that Keras writes "
                        "(`model.to_json()`, or config.json inside a .keras file).", field="file") from None
    if not isinstance(config, dict):
        raise UserError(f"{what} is not a JSON object. Expected a model's config with `class_name` and "
                        f"`config`. Received: {type(config).__name__}", field="file")
    return config


def _json_depth(text: str) -> int:
    """How deep arrays and objects nest, strings skipped; a linear scan, no parsing."""
    depth = deepest = 0
    for token in _JSON_TOKENS.finditer(text):
        first = token.group()[0]
        if first in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif first in "]}":
            depth -= 1
    return deepest


def keras_snake_case(name: str) -> str:
    """Keras' own `to_snake_case`, which names each layer's group in a weights file (Conv2D -> conv2d)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def is_keras_module(module: object) -> bool:
    return isinstance(module, str) and (module == "keras" or module.startswith("keras."))


def check_serialized(value: Any, where: str, layer: str | None = None, class_name: str | None = None) -> None:
    """Refuse anything in `value` that names code: Lambda and TFSMLayer, functions, custom classes
    (a `registered_name` of their own) and modules outside Keras. `where` names the place in messages."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, list):
            stack.extend((v, path) for v in item)
            continue
        if not isinstance(item, dict):
            continue
        at = f" (at `{path}`)" if path else ""
        kind = item.get("class_name")
        if kind is not None:
            if not isinstance(kind, str):
                raise _refusal(f"{where} cannot be imported{at}: its class_name is not text. Expected a Keras "
                               f"class name. Received: class_name={shown(kind)}", layer, class_name)
            if kind in CODE_CLASSES:
                raise _refusal(f"{where} cannot be imported{at}: {CODE_CLASSES[kind]}. Expected layers from "
                               f"LayerLab's catalog. Received: class_name={shown(kind)}", layer, class_name)
            if kind.startswith("__") and kind not in (KERAS_TENSOR, "__tuple__"):
                raise _refusal(f"{where} cannot be imported{at}: it embeds an object of kind {shown(kind)}, which "
                               f"LayerLab does not read. Expected plain settings. Received: class_name={shown(kind)}",
                               layer, class_name)
        registered = item.get("registered_name")
        if registered is not None and registered != kind:
            raise _refusal(f"{where} cannot be imported{at}: it is a custom class, whose code is not in the file "
                           "and would never be run. Expected one of Keras' built-in classes. "
                           f"Received: registered_name={shown(registered)}", layer, class_name)
        if "module" in item and item["module"] is not None and not is_keras_module(item["module"]):
            raise _refusal(f"{where} cannot be imported{at}: it names a module outside Keras, and LayerLab only "
                           "rebuilds Keras' own layers. Expected module `keras` or `keras.<...>`. "
                           f"Received: module={shown(item['module'])}", layer, class_name)
        for key, child in item.items():
            if isinstance(child, (dict, list)):
                stack.append((child, f"{path}.{key}" if path else str(key)))


# --- what each Keras setting becomes ------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    """A Keras setting that is a catalog parameter (`convert` maps Keras' value to the catalog's)."""

    name: str
    convert: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class Fixed:
    """A Keras setting LayerLab does not offer: it must have one of these values (LayerLab's behaviour)."""

    allowed: tuple[Any, ...]


@dataclass(frozen=True)
class TrainingOnly:
    """A setting that only matters while training: any other value than `default` is listed as not imported."""

    default: Any = None


class Ignored:
    """A setting with no effect on what the layer computes or stores (unroll, synchronized...)."""


IGNORED = Ignored()


@dataclass(frozen=True)
class Regularizer:
    """A Keras regularizer setting: the catalog's choice (`name`) and its factor (`name`_factor)."""

    name: str


Rule = Param | Fixed | TrainingOnly | Ignored | Regularizer

_CHANNELS_LAST = Fixed(("channels_last", None))
_REGULARIZERS = {key: TrainingOnly() for key in (
    "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint")}


# Keras' configs of the constraints the catalog offers by name (with Keras' own defaults).
_NAMED_RULES = {("MaxNorm", (("axis", 0), ("max_value", 2))): "max_norm", ("NonNeg", ()): "non_neg",
                ("UnitNorm", (("axis", 0),)): "unit_norm"}


def _regularizer(value: Any) -> tuple[Any, float | None]:
    """A regularizer's config as the catalog's choice and factor (None: the default). One the catalog cannot
    express stays as a description, so that the catalog refuses it naming what it offers."""
    if value is None or isinstance(value, str):
        return (NO_CHOICE if value is None else value), None
    config = value.get("config") if isinstance(value, dict) else None
    if not isinstance(config, dict) or not all(isinstance(v, (int, float)) for v in config.values()):
        return _text(value), None
    l1, l2 = float(config.get("l1", 0.0)), float(config.get("l2", 0.0))
    kind = {"L1": "l1", "L2": "l2", "L1L2": "l1_l2"}.get(str(value.get("class_name")))
    if kind == "l1_l2" and not (l1 and l2):  # Keras' L1L2 with one factor 0 is the other alone
        kind, l1, l2 = ("l1", l1, l1) if l1 else ("l2", l2, l2) if l2 else (NO_CHOICE, 0.0, 0.0)
    if kind is None or set(config) - {"l1", "l2"} or (kind == "l1_l2" and not math.isclose(l1, l2, rel_tol=1e-6)):
        settings = ", ".join(f"{k}={v:g}" for k, v in config.items())
        return f"{value.get('class_name')}({settings})", None
    if kind == NO_CHOICE:
        return NO_CHOICE, None
    return kind, float(f"{(l1 if kind != 'l2' else l2):.6g}")  # Keras stores float32: 0.2 reads 0.20000000298


def _named_rule(value: Any) -> Any:
    """A constraint's config as the catalog's name for it ("none" for None); any other one is kept as it is, so
    that the catalog refuses it naming what it offers."""
    if value is None:
        return NO_CHOICE
    if isinstance(value, dict) and isinstance(value.get("config"), dict):
        settings = value["config"]
        for (class_name, defaults), name in _NAMED_RULES.items():
            if value.get("class_name") == class_name and set(settings) == {k for k, _ in defaults} and all(
                    isinstance(settings[k], (int, float)) and math.isclose(settings[k], v, rel_tol=1e-6)
                    for k, v in defaults):
                return name
        return value.get("class_name")
    return value


_WEIGHT_RULES: dict[str, Rule] = {
    "kernel_regularizer": Regularizer("kernel_regularizer"), "bias_regularizer": Regularizer("bias_regularizer"),
    **{key: Param(key, _named_rule) for key in ("kernel_constraint", "bias_constraint")}}


def _one_int(value: Any) -> Any:
    """Keras writes a 1-D size as a list of one ([3]); the catalog has a plain integer."""
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def _symmetric(value: Any) -> Any:
    """Keras writes padding and cropping as ((top, bottom), (left, right)); the catalog has (height, width), the
    same on both sides. An uneven one stays as it is, to be refused by name."""
    if (isinstance(value, list) and len(value) == 2 and all(isinstance(v, list) and len(v) == 2 for v in value)
            and all(v[0] == v[1] for v in value)):
        return [value[0][0], value[1][0]]
    return value


def _factor(value: Any) -> Any:
    """Keras writes a random augmentation's factor f out as its range: (-f, f), or (0, f) for contrast."""
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value) \
            and value[0] in (0, -value[1]):
        return value[1]
    return value


def _same_axes(value: Any) -> Any:
    """Keras' Dot takes an axis per input; the catalog has one axis for both. Different ones stay as they are,
    to be refused by name."""
    if isinstance(value, list) and len(value) == 2 and value[0] == value[1]:
        return value[0]
    return value


def _conv(pair: bool) -> dict[str, Rule]:
    size = None if pair else _one_int
    return {
        "filters": Param("filters"), "kernel_size": Param("kernel_size", size), "strides": Param("strides", size),
        "padding": Param("padding"), "data_format": _CHANNELS_LAST,
        "dilation_rate": Fixed(([1, 1], [1], 1) if pair else ([1], 1)), "groups": Fixed((1,)),
        "activation": Param("activation"), "use_bias": Param("use_bias"),
        "kernel_initializer": Param("kernel_initializer"), "bias_initializer": TrainingOnly("zeros"),
        "lora_rank": Fixed((None,)), "lora_alpha": IGNORED, **_REGULARIZERS, **_WEIGHT_RULES,
    }


def _pool(pair: bool) -> dict[str, Rule]:
    size = None if pair else _one_int
    return {"pool_size": Param("pool_size", size), "strides": Param("strides", size), "padding": Param("padding"),
            "data_format": _CHANNELS_LAST}


def _recurrent(gru: bool) -> dict[str, Rule]:
    rules: dict[str, Rule] = {
        "units": Param("units"), "activation": Param("activation"), "return_sequences": Param("return_sequences"),
        "dropout": Param("dropout"), "recurrent_activation": Fixed(("sigmoid",)), "use_bias": Fixed((True,)),
        "return_state": Fixed((False,)), "go_backwards": Fixed((False,)), "stateful": Fixed((False,)),
        "time_major": Fixed((False, None)), "unroll": IGNORED, "zero_output_for_mask": IGNORED,
        "implementation": IGNORED, "use_cudnn": IGNORED,
        "kernel_initializer": TrainingOnly("glorot_uniform"), "recurrent_initializer": TrainingOnly("orthogonal"),
        "bias_initializer": TrainingOnly("zeros"), "recurrent_dropout": TrainingOnly(0.0),
        "seed": TrainingOnly(None), "recurrent_regularizer": TrainingOnly(), "recurrent_constraint": TrainingOnly(),
        **_REGULARIZERS,
    }
    if gru:
        rules["reset_after"] = Fixed((True,))
    else:
        rules["unit_forget_bias"] = TrainingOnly(True)
    return rules


def _normalization(batch: bool) -> dict[str, Rule]:
    rules: dict[str, Rule] = {
        "axis": Fixed((-1, [-1])), "epsilon": Param("epsilon"), "center": Fixed((True,)), "scale": Fixed((True,)),
        "beta_initializer": TrainingOnly("zeros"), "gamma_initializer": TrainingOnly("ones"),
        "beta_regularizer": TrainingOnly(), "gamma_regularizer": TrainingOnly(),
        "beta_constraint": TrainingOnly(), "gamma_constraint": TrainingOnly(),
    }
    if batch:
        rules.update({"momentum": Param("momentum"), "moving_mean_initializer": TrainingOnly("zeros"),
                      "moving_variance_initializer": TrainingOnly("ones"), "synchronized": IGNORED,
                      "renorm": Fixed((False,)), "renorm_clipping": Fixed((None,)), "renorm_momentum": IGNORED})
    else:
        rules["rms_scaling"] = Fixed((False,))
    return rules


RULES: dict[str, dict[str, Rule]] = {
    "Dense": {"units": Param("units"), "activation": Param("activation"), "use_bias": Param("use_bias"),
              "kernel_initializer": Param("kernel_initializer"), "bias_initializer": TrainingOnly("zeros"),
              "quantization_config": Fixed((None,)), "lora_rank": Fixed((None,)), "lora_alpha": IGNORED,
              **_REGULARIZERS, **_WEIGHT_RULES},
    "Activation": {"activation": Param("activation")},
    "Dropout": {"rate": Param("rate"), "noise_shape": Fixed((None,)), "seed": TrainingOnly(None)},
    "Flatten": {"data_format": _CHANNELS_LAST},
    "Reshape": {"target_shape": Param("target_shape")},
    "Rescaling": {"scale": Param("scale"), "offset": Param("offset")},
    "Conv1D": _conv(pair=False),
    "Conv2D": _conv(pair=True),
    "MaxPooling1D": _pool(pair=False),
    "MaxPooling2D": _pool(pair=True),
    "AveragePooling2D": _pool(pair=True),
    "GlobalAveragePooling2D": {"data_format": _CHANNELS_LAST, "keepdims": Fixed((False,))},
    "BatchNormalization": _normalization(batch=True),
    "LayerNormalization": _normalization(batch=False),
    "Embedding": {"input_dim": Param("input_dim"), "output_dim": Param("output_dim"),
                  "embeddings_initializer": TrainingOnly("random_uniform"), "embeddings_regularizer": TrainingOnly(),
                  "activity_regularizer": TrainingOnly(), "embeddings_constraint": TrainingOnly(),
                  "mask_zero": Fixed((False,)), "sparse": Fixed((False, None)), "input_length": IGNORED,
                  "quantization_config": Fixed((None,)), "lora_rank": Fixed((None,)), "lora_alpha": IGNORED},
    "LSTM": _recurrent(gru=False),
    "GRU": _recurrent(gru=True),
    "Add": {},
    "Concatenate": {"axis": Param("axis")},
}

def _offered(type_name: str, **others: Rule) -> dict[str, Rule]:
    """Each catalog parameter of the type read as itself, and Keras' other settings as given."""
    return {**{param.name: Param(param.name) for param in CATALOG[type_name].params}, **others}


_CALLED_IN_TRAINING_MODE = frozenset(t.keras_class for t in CATALOG.values()
                                     if t.category in ("Augmentation", "Preprocessing"))
_IMAGE_ONLY: dict[str, Rule] = {"data_format": _CHANNELS_LAST, "seed": TrainingOnly(None)}
_FILLING: dict[str, Rule] = {"fill_mode": Fixed(("reflect",)), "fill_value": Fixed((0.0, 0)),
                             "interpolation": Fixed(("bilinear",))}
_UNIT_VALUE_RANGE = Fixed(([0.0, 1.0], [0, 1]))
_DEPTHWISE: dict[str, Rule] = {
    "data_format": _CHANNELS_LAST, "dilation_rate": Fixed(([1, 1], 1)),
    "depthwise_initializer": TrainingOnly("glorot_uniform"), "bias_initializer": TrainingOnly("zeros"),
    "depthwise_regularizer": TrainingOnly(), "depthwise_constraint": TrainingOnly(), "bias_regularizer": TrainingOnly(),
    "bias_constraint": TrainingOnly(), "activity_regularizer": TrainingOnly()}
_GLOBAL_POOL: dict[str, Rule] = {"data_format": _CHANNELS_LAST, "keepdims": Fixed((False,))}

RULES.update({
    "Conv2DTranspose": {**_conv(pair=True), "output_padding": Fixed((None,))},
    "SeparableConv2D": _offered("SeparableConv2D", **_DEPTHWISE, pointwise_initializer=TrainingOnly("glorot_uniform"),
                                pointwise_regularizer=TrainingOnly(), pointwise_constraint=TrainingOnly()),
    "DepthwiseConv2D": _offered("DepthwiseConv2D", **_DEPTHWISE),
    "UpSampling1D": _offered("UpSampling1D"),
    "UpSampling2D": _offered("UpSampling2D", data_format=_CHANNELS_LAST),
    "ZeroPadding2D": {"padding": Param("padding", _symmetric), "data_format": _CHANNELS_LAST},
    "Cropping2D": {"cropping": Param("cropping", _symmetric), "data_format": _CHANNELS_LAST},
    "AveragePooling1D": _pool(pair=False),
    "GlobalMaxPooling1D": _GLOBAL_POOL,
    "GlobalMaxPooling2D": _GLOBAL_POOL,
    "GlobalAveragePooling1D": _GLOBAL_POOL,
    "SimpleRNN": {key: rule for key, rule in _recurrent(gru=False).items()
                  if key not in ("recurrent_activation", "unit_forget_bias", "implementation", "use_cudnn")},
    "RepeatVector": _offered("RepeatVector"),
    "Permute": _offered("Permute"),
    "Masking": _offered("Masking"),
    "ReLU": _offered("ReLU"),
    "LeakyReLU": _offered("LeakyReLU"),
    "PReLU": {"alpha_initializer": TrainingOnly("zeros"), "alpha_regularizer": TrainingOnly(),
              "alpha_constraint": TrainingOnly(), "shared_axes": Fixed((None,))},
    "ELU": _offered("ELU"),
    "Softmax": _offered("Softmax"),
    **{merge: {} for merge in ("Multiply", "Subtract", "Average", "Maximum", "Minimum")},
    "GroupNormalization": {**_normalization(batch=False), "groups": Param("groups")},
    "UnitNormalization": {"axis": Fixed((-1, [-1]))},
    "SpatialDropout1D": _offered("SpatialDropout1D", seed=TrainingOnly(None)),
    "SpatialDropout2D": _offered("SpatialDropout2D", **_IMAGE_ONLY),
    "GaussianNoise": _offered("GaussianNoise", seed=TrainingOnly(None)),
    "GaussianDropout": _offered("GaussianDropout", seed=TrainingOnly(None)),
    "ActivityRegularization": _offered("ActivityRegularization"),
    "Resizing": _offered("Resizing", data_format=_CHANNELS_LAST, crop_to_aspect_ratio=Fixed((False,)),
                         pad_to_aspect_ratio=Fixed((False,)), fill_mode=Fixed(("constant",)),
                         fill_value=Fixed((0.0, 0)), antialias=Fixed((False,))),
    "CenterCrop": _offered("CenterCrop", data_format=_CHANNELS_LAST),
    "Normalization": {"axis": Fixed(([-1], -1)), "invert": Fixed((False,)), "mean": Fixed((None,)),
                      "variance": Fixed((None,))},
    "RandomFlip": _offered("RandomFlip", **_IMAGE_ONLY),
    "RandomRotation": _offered("RandomRotation", **_IMAGE_ONLY, **_FILLING, factor=Param("factor", _factor)),
    "RandomZoom": _offered("RandomZoom", **_IMAGE_ONLY, **_FILLING, width_factor=Fixed((None,))),
    "RandomTranslation": _offered("RandomTranslation", **_IMAGE_ONLY, **_FILLING),
    "RandomContrast": _offered("RandomContrast", **_IMAGE_ONLY, value_range=_UNIT_VALUE_RANGE,
                               factor=Param("factor", _factor)),
    "RandomBrightness": _offered("RandomBrightness", **_IMAGE_ONLY, value_range=_UNIT_VALUE_RANGE,
                                 factor=Param("factor", _factor)),
    # The wrapped layer's settings are read by `_wrapped_params` with that layer's own rules.
    "Bidirectional": {"merge_mode": Param("merge_mode"), "layer": IGNORED, "backward_layer": IGNORED,
                      "weights": Fixed((None,))},
    "TimeDistributed": {"layer": IGNORED},
    "MultiHeadAttention": _offered("MultiHeadAttention", use_gate=Fixed((False,)), output_shape=Fixed((None,)),
                                   # Keras writes its default out: every axis between the batch and the features
                                   attention_axes=Fixed((None, [1], [1, 2], [1, 2, 3])),
                                   sliding_window=Fixed((None,)), kernel_initializer=TrainingOnly("glorot_uniform"),
                                   bias_initializer=TrainingOnly("zeros"), seed=TrainingOnly(None),
                                   flash_attention=IGNORED, **_REGULARIZERS),
    "Dot": {"axes": Param("axes", _same_axes), "normalize": Param("normalize")},
})
# Keras' defaults for each initializer's own settings; others are noted as not imported.
_INITIALIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "random_normal": {"mean": 0.0, "stddev": 0.05}, "truncated_normal": {"mean": 0.0, "stddev": 0.05},
    "random_uniform": {"minval": -0.05, "maxval": 0.05}, "orthogonal": {"gain": 1.0},
}
_ACTIVATION_ALIASES = {"silu": "swish", None: "linear"}
# Handled for every layer (`_common`), or the input shape a Sequential model's first layer may carry.
_COMMON_KEYS = ("name", "dtype", "trainable", "batch_shape", "batch_input_shape")
_FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64", "mixed_float16", "mixed_bfloat16")


# --- the result ---------------------------------------------------------------------------------

@dataclass
class ImportPlan:
    """A config mapped onto the catalog.

    `weight_keys` gives, for each layer name, its group under `layers/` in the weights file that Keras
    saved with this config (Keras names the groups by class and position, not by layer name).
    """

    graph: Graph
    model_name: str
    model_class: str
    imported: list[str] = field(default_factory=list)
    not_imported: list[str] = field(default_factory=list)
    weight_keys: dict[str, str] = field(default_factory=dict)


@dataclass
class _Layer:
    name: str
    class_name: str
    config: dict[str, Any]
    inputs: list[str]
    label: str


def plan_import(config: dict[str, Any], limits: Limits = Limits()) -> ImportPlan:
    """Map a Functional or Sequential model's config onto a LayerLab graph, or raise UserError naming the layer."""
    top_class = config.get("class_name")
    # compile_config is never read (only noted), so a custom loss in it does not stop an import.
    check_serialized({k: v for k, v in config.items() if k not in ("config", "compile_config")}, "The model")
    if top_class not in MODEL_CLASSES:
        raise _refusal(f"The file holds a {shown(top_class)}, not a model LayerLab can import. Expected a Functional "
                       f"or Sequential Keras model. Received: class_name={shown(top_class)}")
    body = config.get("config")
    if not isinstance(body, dict) or not isinstance(body.get("layers"), list):
        raise _refusal("The model's config has no list of layers. Expected a Functional or Sequential model's "
                       "config with `layers`. Received: " + ("no `config`" if not isinstance(body, dict)
                                                             else "no `layers`"))
    entries: list[Any] = body["layers"]
    check_serialized({k: v for k, v in body.items() if k != "layers"}, "The model")
    if len(entries) > MAX_NODES:
        raise _refusal(f"The model has {len(entries)} layers; a LayerLab model has at most {MAX_NODES}.")
    plan = ImportPlan(Graph(), model_name=str(body.get("name") or "imported"), model_class=str(top_class))
    sequential = top_class == "Sequential"
    layers = _sequential_layers(body, entries) if sequential else _functional_layers(body, entries)
    if body.get("trainable") is False:
        plan.not_imported.append("trainable=False of the whole model: LayerLab trains every layer")
    if config.get("compile_config"):
        plan.not_imported.append("compile settings (optimizer, loss, metrics): choose them in the training "
                                 "settings")
    _build(plan, layers)
    _check_ends(plan, body, sequential)
    _validate(plan, limits)
    counts: Counter[str] = Counter()
    for entry in entries:  # the order Keras saved the layers' weights in
        if not isinstance(entry, dict):
            continue
        class_name = str(entry.get("class_name"))
        if sequential and class_name == "InputLayer":
            continue  # a Sequential model's weights leave its Input out
        base = keras_snake_case(class_name)
        key = base if counts[base] == 0 else f"{base}_{counts[base]}"
        counts[base] += 1
        plan.weight_keys[_layer_name(entry)] = key
    types = Counter(n.type for n in plan.graph.nodes)
    plan.imported.insert(0, f"{len(plan.graph.nodes)} layers: " + ", ".join(
        t if c == 1 else f"{t} ×{c}" for t, c in types.items()))
    return plan


def _layer_name(entry: dict[str, Any]) -> str:
    config = entry.get("config")
    name = entry.get("name") or (config.get("name") if isinstance(config, dict) else None)
    if not isinstance(name, str) or not name:
        raise _refusal(f"A layer of class {shown(entry.get('class_name'))} has no name. Expected every layer to "
                       "have the `name` Keras gives it. Received: name=" + shown(name))
    return name


def _check_entry(entry: Any) -> _Layer:
    """The layer's name and class, once nothing in it names code, a foreign module or a custom class."""
    if not isinstance(entry, dict):
        raise _refusal(f"An entry of the model's layers is not a layer. Expected an object with `class_name` and "
                       f"`config`. Received: {shown(entry)}")
    class_name = entry.get("class_name")
    name = _layer_name(entry)
    label = f"Layer {shown(name)} ({str(class_name)[:40]})"
    check_serialized(entry, label, name, str(class_name))
    config = entry.get("config")
    if not isinstance(class_name, str) or not isinstance(config, dict):
        raise _refusal(f"{label} cannot be imported: it has no settings. Expected `class_name` and a `config` "
                       "object.", name, str(class_name))
    if class_name in MODEL_CLASSES:
        raise _refusal(f"{label} cannot be imported: it is a model inside the model. Expected a flat model of "
                       "layers; rebuild the inner model's layers in the outer one.", name, class_name)
    if class_name not in _TYPE_OF_CLASS:
        offered = ", ".join(t.keras_class for t in CATALOG.values())
        raise _refusal(f"{label} cannot be imported: LayerLab does not offer {class_name} layers. Expected one of "
                       f"{offered}. Received: class_name={shown(class_name)}", name, class_name)
    return _Layer(name, class_name, config, [], label)


def _sequential_layers(body: dict[str, Any], entries: list[Any]) -> list[_Layer]:
    layers = [_check_entry(e) for e in entries]
    if not layers or layers[0].class_name != "InputLayer":
        shape = body.get("build_input_shape")
        if shape is None and layers:
            first = layers[0].config
            shape = first.get("batch_shape", first.get("batch_input_shape"))
        if not isinstance(shape, list):
            raise _refusal("The Sequential model was saved before it was built, so its input shape is unknown. "
                           "Expected a model that starts with `keras.Input(shape=...)`. Received: no input shape")
        taken = {layer.name for layer in layers}
        name = next(n for n in ("input_layer", *(f"input_layer_{i}" for i in range(1, MAX_NODES + 2)))
                    if n not in taken)
        layers.insert(0, _Layer(name, "InputLayer", {"batch_shape": shape}, [], f"Layer {shown(name)} (InputLayer)"))
    for before, layer in itertools.pairwise(layers):
        if layer.class_name == "InputLayer":
            raise _refusal(f"{layer.label} cannot be imported: a Sequential model has one Input, first. "
                           "Expected the Input layer first only.", layer.name, layer.class_name)
        layer.inputs = [before.name]
    return layers


def _functional_layers(body: dict[str, Any], entries: list[Any]) -> list[_Layer]:
    layers = []
    for entry in entries:
        layer = _check_entry(entry)
        layer.inputs = _inbound(layer, entry.get("inbound_nodes"))
        layers.append(layer)
    return layers


def _inbound(layer: _Layer, nodes: Any) -> list[str]:
    """The names of the layers this one reads from, from Keras 3's (or Keras 2's) `inbound_nodes`."""
    if nodes is None or nodes == []:
        if layer.class_name != "InputLayer":
            raise _refusal(f"{layer.label} cannot be imported: it is not connected to any input. Expected a layer "
                           "called on the output of another.", layer.name, layer.class_name)
        return []
    if not isinstance(nodes, list):
        raise _refusal(f"{layer.label} cannot be imported: its `inbound_nodes` is not a list.", layer.name,
                       layer.class_name)
    if len(nodes) > 1:
        raise _refusal(f"{layer.label} cannot be imported: it is used {len(nodes)} times (shared weights). Expected "
                       "each layer to be called once; in LayerLab each use is a layer of its own.",
                       layer.name, layer.class_name)
    node = nodes[0]
    if isinstance(node, dict):  # Keras 3: {"args": [tensor or [tensors]], "kwargs": {...}}
        args, kwargs = node.get("args"), node.get("kwargs") or {}
        if layer.class_name == "MultiHeadAttention" and isinstance(args, list) and isinstance(kwargs, dict):
            args, kwargs = _query_and_value(layer, args, kwargs)
        if not isinstance(args, list) or len(args) != 1:
            raise _refusal(f"{layer.label} cannot be imported: it is called with {shown(args)} as arguments. Expected "
                           "one input, or one list of inputs for a merge layer.", layer.name, layer.class_name)
        tensors = args[0] if isinstance(args[0], list) else [args[0]]
        histories = [_history(layer, t) for t in tensors]
    elif isinstance(node, list):  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
        histories, kwargs = [], {}
        for item in node:
            if not isinstance(item, list) or len(item) < 3:
                raise _refusal(f"{layer.label} cannot be imported: an input of it is not [name, node, tensor].",
                               layer.name, layer.class_name)
            histories.append(item[:3])
            kwargs = item[3] if len(item) > 3 and isinstance(item[3], dict) else kwargs
    else:
        raise _refusal(f"{layer.label} cannot be imported: its inputs are not in a form Keras writes.", layer.name,
                       layer.class_name)
    if not isinstance(kwargs, dict):
        raise _refusal(f"{layer.label} cannot be imported: its call arguments are not an object.", layer.name,
                       layer.class_name)
    for key, value in kwargs.items():
        # Keras itself writes training=True for the preprocessing and augmentation layers it builds; the model
        # still runs them in inference mode when it predicts.
        keras_own = key == "training" and value is True and layer.class_name in _CALLED_IN_TRAINING_MODE
        if not keras_own and not (key in ("training", "mask") and value in (None, False)):
            raise _refusal(f"{layer.label} cannot be imported: it is called with {key}={shown(value)}, which "
                           f"LayerLab cannot rebuild. Expected no call arguments besides its inputs. "
                           f"Received: {key}={shown(value)}", layer.name, layer.class_name)
    names = []
    for history in histories:
        if (not isinstance(history, list) or len(history) != 3 or not isinstance(history[0], str)
                or history[1] != 0 or history[2] != 0):
            raise _refusal(f"{layer.label} cannot be imported: it reads {shown(history)}. Expected the one output of "
                           "another layer ([name, 0, 0]).", layer.name, layer.class_name)
        names.append(history[0])
    return names


def _query_and_value(layer: _Layer, args: list[Any], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """MultiHeadAttention's call (query, value), as one list of inputs: the query alone for self-attention."""
    kwargs = dict(kwargs)
    tensors = [*args, *(kwargs.pop(key) for key in ("query", "value") if key in kwargs)]
    if kwargs.get("key") is not None or not 1 <= len(tensors) <= 2:
        raise _refusal(f"{layer.label} cannot be imported: it is called with {shown(args)} and {shown(kwargs)}. "
                       "Expected a query and a value (self-attention: the same tensor twice), and no separate key.",
                       layer.name, layer.class_name)
    kwargs.pop("key", None)
    for key in ("return_attention_scores", "use_causal_mask", "attention_mask", "query_mask", "value_mask",
                "key_mask"):
        if key in kwargs and kwargs[key] in (None, False):
            kwargs.pop(key)
    if len(tensors) == 2 and tensors[0] == tensors[1]:
        tensors = tensors[:1]
    return [tensors], kwargs


def _history(layer: _Layer, tensor: Any) -> Any:
    if not isinstance(tensor, dict) or tensor.get("class_name") != KERAS_TENSOR:
        raise _refusal(f"{layer.label} cannot be imported: it is called on {shown(tensor)}. Expected the output of "
                       "another layer.", layer.name, layer.class_name)
    config = tensor.get("config")
    return config.get("keras_history") if isinstance(config, dict) else None


def _build(plan: ImportPlan, layers: list[_Layer]) -> None:
    """Add the layers in an order where each comes after its inputs, through the graph's own edits."""
    by_name: dict[str, _Layer] = {}
    for layer in layers:
        if layer.name in by_name:
            raise _refusal(f"{layer.label} cannot be imported: two layers are named {shown(layer.name)}. Expected "
                           "unique layer names.", layer.name, layer.class_name)
        by_name[layer.name] = layer
    for layer in layers:
        for source in layer.inputs:
            if source not in by_name:
                raise _refusal(f"{layer.label} cannot be imported: it reads from {shown(source)}, which is not a layer "
                               "of this model.", layer.name, layer.class_name)
    ids: dict[str, str] = {}
    pending = list(layers)
    while pending:
        ready = [layer for layer in pending if all(s in ids for s in layer.inputs)]
        if not ready:
            raise _refusal(f"{pending[0].label} cannot be imported: the layers' wiring makes a loop.",
                           pending[0].name, pending[0].class_name)
        for layer in ready:
            type_name = _TYPE_OF_CLASS[layer.class_name]
            params = _params(plan, layer, type_name)
            try:
                plan.graph, ids[layer.name] = edits.add_layer(
                    plan.graph, type_name, params, name=layer.name,
                    inputs=None if type_name == "Input" else [ids[s] for s in layer.inputs])
            except UserError as exc:
                raise _refusal(f"{layer.label} cannot be imported: {exc.message}", layer.name,
                               layer.class_name) from None
        pending = [layer for layer in pending if layer.name not in ids]


def _validate(plan: ImportPlan, limits: Limits) -> None:
    """The catalog's own checks of the whole model: shapes that fit, and the size limits."""
    report = validate(plan.graph, limits)
    for issue in report.issues:
        if issue.severity != "error":
            continue
        node = plan.graph.node(issue.layer_id) if issue.layer_id else None
        where = f"Layer {shown(node.name)} ({node.type})" if node else "The model"
        kind = TooLarge if issue.too_large else UserError
        raise kind(f"{where} cannot be imported: {issue.message}", field="file",
                   details={"layer": node.name if node else None})


def _check_ends(plan: ImportPlan, body: dict[str, Any], sequential: bool) -> None:
    inputs = [n for n in plan.graph.nodes if n.type == "Input"]
    outputs = plan.graph.outputs()
    if len(inputs) != 1:
        raise _refusal(f"The model has {len(inputs)} inputs ({', '.join(n.name for n in inputs)}). Expected one: "
                       "LayerLab trains models with one input.")
    if len(outputs) != 1:
        raise _refusal(f"The model has {len(outputs)} outputs ({', '.join(n.name for n in outputs)}). Expected one: "
                       "LayerLab trains models with one output.")
    if not sequential:
        declared = _ends(body.get("output_layers"))
        if declared is not None and declared != [outputs[0].name]:
            raise _refusal(f"The model's outputs are {shown(declared)}. Expected one output, the layer that no other "
                           f"layer reads ({outputs[0].name}).")
        declared = _ends(body.get("input_layers"))
        if declared is not None and declared != [inputs[0].name]:
            raise _refusal(f"The model's inputs are {shown(declared)}. Expected its one Input layer "
                           f"({inputs[0].name}).")


def _ends(value: Any) -> list[Any] | None:
    """Layer names of `input_layers` / `output_layers`: [name, 0, 0] for one, a list of those for several."""
    if not isinstance(value, list) or not value:
        return None
    items = [value] if isinstance(value[0], str) else value
    return [item[0] if isinstance(item, list) and item else item for item in items]


# --- parameters ---------------------------------------------------------------------------------

def _params(plan: ImportPlan, layer: _Layer, type_name: str) -> dict[str, Any]:
    config = layer.config
    if type_name == "Input":
        return _input_params(plan, layer)
    params: dict[str, Any] = {}
    rules = RULES[layer.class_name]
    for key, value in config.items():
        if key == "trainable" and "trainable" in CATALOG[type_name].by_name:
            params["trainable"] = value is not False
            continue
        if key in _COMMON_KEYS:
            continue
        rule = rules.get(key)
        value = _untuple(value)
        if isinstance(rule, Param):
            params[rule.name] = _param_value(plan, layer, key, value, rule)
        elif isinstance(rule, Regularizer):
            params[rule.name], factor = _regularizer(value)
            if factor is not None:
                params[f"{rule.name}_factor"] = factor
        elif isinstance(rule, Fixed):
            if value not in rule.allowed:
                raise _refusal(f"{layer.label} cannot be imported: LayerLab's {_TYPE_OF_CLASS[layer.class_name]} "
                               f"has no other {key} than Keras' default. Expected {key}={_text(rule.allowed[0])}. "
                               f"Received: {key}={_text(value)}", layer.name, layer.class_name)
        elif isinstance(rule, TrainingOnly):
            if _initializer_name(value) != rule.default:
                plan.not_imported.append(f"{key}={_text(value)} of {layer.name}: LayerLab trains without it")
        elif rule is None and value not in (None, False, [], {}, ""):
            raise _refusal(f"{layer.label} cannot be imported: LayerLab cannot rebuild its setting `{key}`. Expected "
                           f"no value for it. Received: {key}={_text(value)}", layer.name, layer.class_name)
    if layer.class_name in ("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D") and \
            params.get("strides") == params.get("pool_size"):
        params["strides"] = None  # Keras writes the default (the pool size) out
    if layer.class_name == "MultiHeadAttention" and params.get("value_dim") == params.get("key_dim"):
        params["value_dim"] = None  # Keras writes the default (key_dim) out
    if CATALOG[type_name].wrapped_params:
        params.update(_wrapped_params(plan, layer, type_name))
    _common(plan, layer)
    return params


def _wrapped_params(plan: ImportPlan, layer: _Layer, type_name: str) -> dict[str, Any]:
    """A wrapper's parameters that live in the layer it wraps (and for Bidirectional, which layer that is)."""
    layer_type = CATALOG[type_name]
    allowed = (layer_type.wrapped_class,) if layer_type.wrapped_class else layer_type.by_name["layer"].choices
    inner = layer.config.get("layer")
    inner_class = inner.get("class_name") if isinstance(inner, dict) else None
    if not isinstance(inner, dict) or inner_class not in allowed or not isinstance(inner.get("config"), dict):
        raise _refusal(f"{layer.label} cannot be imported: LayerLab's {type_name} wraps {one_of(allowed)}. "
                       f"Received: layer={_text(inner_class)}", layer.name, layer.class_name)
    wrapped = _Layer(layer.name, inner_class, inner["config"], [], f"{layer.label}'s {inner_class}")
    params = _params(plan, wrapped, _TYPE_OF_CLASS[inner_class])
    defaults = CATALOG[inner_class].defaults()
    for key, value in params.items():
        if key not in layer_type.wrapped_params and key != "trainable" and value != defaults.get(key):
            raise _refusal(f"{layer.label} cannot be imported: LayerLab's {type_name} sets only "
                           f"{', '.join(layer_type.wrapped_params)} of its {inner_class}. Expected {key}="
                           f"{_text(defaults.get(key))}. Received: {key}={_text(value)}", layer.name, layer.class_name)
    backward = layer.config.get("backward_layer")
    if backward is not None and not _mirrors(inner, backward):
        raise _refusal(f"{layer.label} cannot be imported: its backward layer has settings of its own. Expected "
                       "the same layer as the forward one, reading backwards.", layer.name, layer.class_name)
    chosen = {key: params[key] for key in layer_type.wrapped_params if key in params}
    return chosen if layer_type.wrapped_class else {"layer": inner_class, **chosen}


def _mirrors(forward: dict[str, Any], backward: Any) -> bool:
    """Whether a Bidirectional's backward layer is its forward layer reading backwards, as Keras makes it."""
    if not isinstance(backward, dict) or backward.get("class_name") != forward.get("class_name"):
        return False
    ignored = ("name", "go_backwards")
    settings = [{k: v for k, v in config.items() if k not in ignored} if isinstance(config, dict) else None
                for config in (forward.get("config"), backward.get("config"))]
    return settings[0] == settings[1]


def _param_value(plan: ImportPlan, layer: _Layer, key: str, value: Any, rule: Param) -> Any:
    if rule.convert is not None:
        value = rule.convert(value)
    if rule.name == "activation" and (value is None or isinstance(value, str)):
        value = _ACTIVATION_ALIASES.get(value, value)
    if rule.name == "kernel_initializer":
        name = _initializer_name(value)
        settings = _initializer_settings(value)
        if name in INITIALIZER_NAMES and settings != _INITIALIZER_DEFAULTS.get(name, {}):
            extra = ", ".join(f"{k}={_text(v)}" for k, v in settings.items())
            plan.not_imported.append(f"the settings of {key} of {layer.name} ({extra}): LayerLab's {name} uses "
                                     "Keras' defaults")
        value = name
    return value


def _initializer_name(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("class_name"), str):
        return keras_snake_case(value["class_name"])
    return value


def _initializer_settings(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("config"), dict):
        return {}
    return {k: v for k, v in value["config"].items() if v is not None}


def _untuple(value: Any) -> Any:
    if isinstance(value, dict) and value.get("class_name") == "__tuple__" and isinstance(value.get("config"), dict):
        return list(value["config"].get("value") or [])
    return value


def _text(value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get("class_name"), str):
        return str(value["class_name"])
    if isinstance(value, bool):
        return str(value)
    return shown(value)


def _common(plan: ImportPlan, layer: _Layer) -> None:
    if layer.config.get("trainable") is False and "trainable" not in CATALOG[_TYPE_OF_CLASS[layer.class_name]].by_name:
        plan.not_imported.append(f"trainable=False of {layer.name}: it has no weights to freeze")
    dtype = layer.config.get("dtype")
    name = dtype.get("config", {}).get("name") if isinstance(dtype, dict) else dtype
    if isinstance(dtype, dict) and dtype.get("class_name") not in ("DTypePolicy", "FloatDTypePolicy", "Policy"):
        raise _refusal(f"{layer.label} cannot be imported: its dtype policy is {_text(dtype)}. Expected a float "
                       f"policy such as float32. Received: dtype={_text(dtype)}", layer.name, layer.class_name)
    if name is not None and name not in _FLOAT_DTYPES:
        raise _refusal(f"{layer.label} cannot be imported: it computes in {shown(name)}. Expected a float dtype "
                       f"such as float32. Received: dtype={shown(name)}", layer.name, layer.class_name)
    if name not in (None, "float32"):
        plan.not_imported.append(f"dtype {name} of {layer.name}: LayerLab computes in float32")


def _input_params(plan: ImportPlan, layer: _Layer) -> dict[str, Any]:
    config = layer.config
    shape = config.get("batch_shape", config.get("batch_input_shape"))
    if shape is None and isinstance(config.get("shape"), list):
        shape = [None, *config["shape"]]
    if not isinstance(shape, list) or len(shape) < 2 or shape[0] is not None:
        raise _refusal(f"{layer.label} cannot be imported: its shape is {shown(shape)}. Expected a batch shape "
                       f"[null, ...] with a size for every axis of one sample. Received: batch_shape={shown(shape)}",
                       layer.name, layer.class_name)
    for key in ("sparse", "ragged", "optional"):
        if config.get(key):
            raise _refusal(f"{layer.label} cannot be imported: it is {key}. Expected a plain dense input. "
                           f"Received: {key}=True", layer.name, layer.class_name)
    dtype = config.get("dtype")
    if isinstance(dtype, dict):
        dtype = dtype.get("config", {}).get("name")
    if dtype not in (None, "float32", "int32", "int64", "float16", "float64", "bfloat16"):
        raise _refusal(f"{layer.label} cannot be imported: it takes {shown(dtype)} values. Expected numbers "
                       f"(float32 or int32). Received: dtype={shown(dtype)}", layer.name, layer.class_name)
    if dtype not in (None, "float32"):
        plan.not_imported.append(f"dtype {dtype} of {layer.name}: LayerLab's Input takes float32")
    return {"shape": shape[1:]}
