"""Training settings: one declared table, the TrainConfig it validates, and the fit checks.

Pure Python (no numpy, no TensorFlow): the web process imports this to draw the
training form, document the API and refuse a model/data/loss mismatch before any
worker starts. The worker turns a TrainConfig into Keras objects (app.worker.train).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from app.core.catalog import Param, coerce_param
from app.core.errors import MAX_SHOWN_CHARS, UserError, invalid_value
from app.core.graph import Graph, Node
from app.core.shapes import describe
from app.core.text import plural
from app.core.validation import PER_SAMPLE_OUTPUT, Issue, Report, validate
from app.data.prepared import DatasetMeta

REGRESSION_LOSSES = ("mean_squared_error", "mean_absolute_error", "huber")
CROSS_ENTROPY_LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy",
                        "binary_crossentropy")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad", "nadam")
METRICS = ("accuracy", "mae", "mse", "rmse")
REGRESSION_METRICS = ("mae", "mse", "rmse")
MONITORS = ("val_loss", "val_accuracy", "loss")
CLASS_WEIGHTS = ("none", "balanced")
# Learning rates above this are allowed (a learner may want to watch a run diverge)
# but get a warning: no optimizer here trains well with steps that large.
USUAL_MAX_LEARNING_RATE = 1.0

TARGETS = ("labels", "input")

TRAIN_PARAMS: tuple[Param, ...] = (
    Param("target", "choice", "labels",
          "What the model learns to output: labels, the dataset's classes or numbers; input, each sample itself "
          "(an autoencoder, whose output has the input's shape), so no label is used.", choices=TARGETS),
    Param("loss", "choice", "sparse_categorical_crossentropy",
          "What training minimizes: cross-entropy for classes, squared or absolute error for numbers.",
          choices=CROSS_ENTROPY_LOSSES + REGRESSION_LOSSES),
    Param("optimizer", "choice", "adam",
          "How the weights are updated from the gradients; adam is a good first choice.",
          choices=OPTIMIZERS),
    Param("learning_rate", "float", 0.001,
          "How big each update step is: too small learns slowly, too large makes the loss "
          "jump around or diverge to NaN.", minimum=1e-7, maximum=1e6),
    Param("momentum", "float", 0.0,
          "sgd only: how much of the previous step carries into the next, smoothing the path.",
          minimum=0.0, maximum=1.0, exclusive_maximum=True),
    Param("class_weight", "choice", "none",
          "balanced: each class's mistakes count in inverse proportion to how common the class is in the "
          "training split, so a rare class is not ignored (classes only).", choices=CLASS_WEIGHTS),
    Param("batch_size", "int", 32,
          "How many samples are averaged for one update; smaller is noisier but updates more often.",
          minimum=1, maximum=4096),
    Param("epochs", "int", 10, "How many times training goes through the whole training set.",
          minimum=1, maximum=1000),
    Param("early_stopping", "bool", False,
          "Stop when the watched value has not improved for `patience` epochs."),
    Param("early_stopping_monitor", "choice", "val_loss",
          "The value early stopping watches; val_ values are measured on the validation split.",
          choices=MONITORS),
    Param("early_stopping_patience", "int", 3,
          "How many epochs without improvement early stopping waits before it stops.",
          minimum=0, maximum=1000),
    Param("restore_best_weights", "bool", True,
          "When early stopping is on, keep the weights of the best epoch rather than the last."),
    Param("metrics", "choice", ["accuracy"],
          "Extra values reported each epoch: accuracy for classes; mae, mse or rmse for numbers.",
          choices=METRICS),
    Param("seed", "optional_int", 42,
          "Fixes the random start and shuffling so a run can be repeated; empty for a new one each time.",
          minimum=0, maximum=2**31 - 1),
    Param("record_internals", "bool", True,
          "Record what each layer does as it trains (weights, outputs, dead or saturated units, gradients), "
          "shown under Inside the network; takes at most a few percent of the training time."),
    Param("steps_per_execution", "int", 8,
          "How many batches run between two progress reports; more is faster, less is livelier.",
          minimum=1, maximum=256),
)
PARAMS_BY_NAME: dict[str, Param] = {p.name: p for p in TRAIN_PARAMS}
MULTI_VALUED = frozenset({"metrics"})  # a list of choices, each checked on its own

GROUPS: dict[str, tuple[str, ...]] = {
    "Loss and optimizer": ("target", "loss", "optimizer", "learning_rate", "momentum", "class_weight"),
    "Schedule": ("epochs", "batch_size"),
    "Early stopping": ("early_stopping", "early_stopping_monitor", "early_stopping_patience",
                       "restore_best_weights"),
    "Reporting": ("metrics", "steps_per_execution", "seed", "record_internals"),
}


def describe_setting(param: Param) -> dict[str, Any]:
    """One setting as the form and the API document it."""
    data = param.as_dict()
    if param.name in MULTI_VALUED:
        data["multiple"] = True
        data["allowed"] = "a list of any of " + ", ".join(param.choices)
    data["group"] = next(group for group, names in GROUPS.items() if param.name in names)
    return data


def settings_schema() -> list[dict[str, Any]]:
    return [describe_setting(p) for p in TRAIN_PARAMS]


def coerce_setting(name: str, value: Any) -> Any:
    """Return the normalized value of one setting, or raise UserError in Keras' wording."""
    param = PARAMS_BY_NAME.get(name)
    if param is None:
        raise UserError(f"Training has no setting `{name[:MAX_SHOWN_CHARS]}`. Its settings are: "
                        f"{', '.join(PARAMS_BY_NAME)}.", field=name)
    if name not in MULTI_VALUED:
        return coerce_param(param, value)
    items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) and i in param.choices
                                                       for i in items):
        raise invalid_value(name, "a list of any of " + ", ".join(param.choices), value)
    return list(dict.fromkeys(items))  # drop repeats, keep order


def coerce_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Validate a partial or full set of settings (a form post, a JSON body)."""
    return {name: coerce_setting(name, value) for name, value in values.items()}


class TrainConfig(BaseModel):
    """How to train: built from TRAIN_PARAMS, so its bounds and defaults live in one place."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str = PARAMS_BY_NAME["target"].default
    loss: str = PARAMS_BY_NAME["loss"].default
    optimizer: str = PARAMS_BY_NAME["optimizer"].default
    learning_rate: float = PARAMS_BY_NAME["learning_rate"].default
    momentum: float = PARAMS_BY_NAME["momentum"].default
    batch_size: int = PARAMS_BY_NAME["batch_size"].default
    epochs: int = PARAMS_BY_NAME["epochs"].default
    early_stopping: bool = PARAMS_BY_NAME["early_stopping"].default
    early_stopping_monitor: str = PARAMS_BY_NAME["early_stopping_monitor"].default
    early_stopping_patience: int = PARAMS_BY_NAME["early_stopping_patience"].default
    restore_best_weights: bool = PARAMS_BY_NAME["restore_best_weights"].default
    class_weight: str = PARAMS_BY_NAME["class_weight"].default
    metrics: list[str] = list(PARAMS_BY_NAME["metrics"].default)
    seed: int | None = PARAMS_BY_NAME["seed"].default
    steps_per_execution: int = PARAMS_BY_NAME["steps_per_execution"].default
    record_internals: bool = PARAMS_BY_NAME["record_internals"].default

    @field_validator("*", mode="before")
    @classmethod
    def _coerce(cls, value: Any, info: ValidationInfo) -> Any:
        # The declared bounds, in Keras' wording; unknown names are refused by extra="forbid".
        return coerce_setting(info.field_name or "", value)

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> TrainConfig:
        """Like model_validate, but raises UserError naming the setting at fault."""
        return cls(**coerce_settings(values))

    def get_config(self) -> dict[str, Any]:
        return self.model_dump()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TrainConfig:
        return cls.model_validate(config)

    def replace(self, **changes: Any) -> TrainConfig:
        return TrainConfig.from_values({**self.get_config(), **changes})


def stored_config(config_json: str) -> dict[str, Any]:
    """A run's stored settings, with the default of each setting added since it was stored (such as target)."""
    return {**{p.name: p.default for p in TRAIN_PARAMS}, **json.loads(config_json)}


def uses_logits(loss: str, output_activation: str) -> bool:
    """A linear output with cross-entropy gives raw scores: the loss must apply softmax/sigmoid."""
    return loss in CROSS_ENTROPY_LOSSES and output_activation == "linear"


def default_config(meta: DatasetMeta, output_units: int | None = None, reconstructs: bool = False) -> TrainConfig:
    """The settings suggested for this data and output layer (`reconstructs`: see `reconstructs_input`)."""
    if reconstructs:
        return TrainConfig(target="input", loss="mean_squared_error", metrics=["mae"])
    if meta.task == "regression":
        return TrainConfig(loss="mean_squared_error", metrics=["mae"])
    if meta.num_classes == 2 and output_units == 1:
        return TrainConfig(loss="binary_crossentropy", metrics=["accuracy"])
    return TrainConfig(loss="sparse_categorical_crossentropy", metrics=["accuracy"])


@dataclass(frozen=True)
class OutputHead:
    """What the model's output layer gives per sample: its units and its activation."""

    layer_id: str
    units: int
    activation: str


# Layers that pass values through without applying an activation of their own.
_PASS_THROUGH = ("Dropout", "Flatten", "Reshape")


def output_head(graph: Graph, report: Report | None = None) -> OutputHead | None:
    """None when the graph has no single, shape-checked output."""
    report = report or validate(graph)
    outputs = graph.outputs()
    if len(outputs) != 1 or outputs[0].id not in report.shapes:
        return None
    out = outputs[0]
    node = out
    while node.type in _PASS_THROUGH and len(node.inputs) == 1:
        node = graph.node(node.inputs[0])
    activation = node.params.get("activation", "linear") if "activation" in node.params else "linear"
    return OutputHead(out.id, report.shapes[out.id].output[-1], activation)


def reconstructs_input(graph: Graph, meta: DatasetMeta, report: Report | None = None) -> bool:
    """Whether the model is shaped like an autoencoder: its output is shaped like one sample of the data (an
    image, a sequence) and some layer on the way squeezes the sample into fewer values (a bottleneck). Then the
    suggested target is the input itself. (A stack of Dense layers ending in one unit keeps a one-channel
    image's shape too, but squeezes nothing.)"""
    report = report or validate(graph)
    outputs = graph.outputs()
    if len(outputs) != 1 or outputs[0].id not in report.shapes:
        return False
    shape = report.shapes[outputs[0].id].output
    if len(shape) < 2 or list(shape) != list(meta.input_shape):
        return False
    values = math.prod(shape)
    return any(math.prod(inferred.output) < values for inferred in report.shapes.values())


def suggested_for(graph: Graph, meta: DatasetMeta, report: Report | None = None) -> TrainConfig:
    """The settings suggested for this model on this data."""
    report = report or validate(graph)
    head = output_head(graph, report)
    return default_config(meta, head.units if head else None, reconstructs_input(graph, meta, report))


def check_input(input_shape: list[int] | tuple[int, ...], meta: DatasetMeta,
                layer_id: str | None = None) -> list[Issue]:
    if list(input_shape) == list(meta.input_shape):
        return []
    fits = ",".join(str(d) for d in meta.input_shape)
    return [Issue(f"The Input layer expects data of shape {describe(tuple(input_shape))}, but "
                  f"{meta.name} gives {describe(tuple(meta.input_shape))}. "
                  f"Set the Input shape to {fits}.", layer_id, field="shape")]


def check_training(graph: Graph, meta: DatasetMeta, config: TrainConfig,
                   report: Report | None = None) -> list[Issue]:
    """Input and output checks for one graph; graph errors are validate()'s to report.

    Pass the graph's `report` when the caller has validated it already.
    """
    report = report or validate(graph)
    issues: list[Issue] = []
    inputs = [n for n in graph.nodes if n.type == "Input"]
    if len(inputs) == 1:
        issues += check_input(inputs[0].params.get("shape", []), meta, inputs[0].id)
    issues += check_something_trains(graph, report)
    if config.target == "input":
        return issues + _check_reconstruction(graph, meta, config, report)
    if config.class_weight != "none" and meta.task != "classification":
        issues.append(Issue(f"class_weight {config.class_weight} weighs classes, but {meta.name} is a regression "
                            "task: choose none.", field="class_weight"))
    head = output_head(graph, report)
    if head is None:
        return issues
    shape = report.shapes[head.layer_id].output
    if len(shape) > 1:
        issues.append(_not_per_sample(graph, head.layer_id, shape, meta))
    else:
        issues += check_fit(head.units, head.activation, meta, config, layer_id=head.layer_id)
    return issues


def _check_reconstruction(graph: Graph, meta: DatasetMeta, config: TrainConfig, report: Report) -> list[Issue]:
    """An autoencoder: the output has the input's shape, and the loss and metrics compare values, not labels."""
    issues: list[Issue] = []
    outputs = graph.outputs()
    if len(outputs) == 1 and outputs[0].id in report.shapes:
        shape = report.shapes[outputs[0].id].output
        if list(shape) != list(meta.input_shape):
            issues.append(Issue(f"With target input the model learns to give back each sample, so its output must "
                                f"have the input's shape {describe(tuple(meta.input_shape))}; {outputs[0].name} "
                                f"gives {describe(shape)}. Change the last layers (a Conv2DTranspose or UpSampling2D "
                                "grows an image back), or set target to labels.", outputs[0].id, field="target"))
    if config.loss in ("sparse_categorical_crossentropy", "categorical_crossentropy"):
        issues.append(Issue(f"{config.loss} compares class scores with class labels, but with target input the "
                            "target is the sample itself. Use mean_squared_error, mean_absolute_error, or "
                            "binary_crossentropy for values between 0 and 1 such as pixels.", field="loss"))
    if "accuracy" in config.metrics:
        issues.append(Issue("accuracy counts exactly right class labels, but with target input the model gives back "
                            "values. Use mae or mse to measure how close the reconstruction is.", field="metrics"))
    if config.class_weight != "none":
        issues.append(Issue(f"class_weight {config.class_weight} weighs classes, but with target input no label is "
                            "used: choose none.", field="class_weight"))
    _check_settings(meta, config, lambda message, field: issues.append(Issue(message, None, "error", field)),
                    lambda message, field: issues.append(Issue(message, None, "warning", field)))
    return issues


def check_something_trains(graph: Graph, report: Report) -> list[Issue]:
    """A model whose every layer with weights is frozen would train nothing."""
    frozen = [n for n in graph.nodes if n.params.get("trainable") is False and n.id in report.shapes]
    if not frozen or report.trainable_params or not report.total_params:
        return []
    last = frozen[-1]
    return [Issue(f"Every layer with weights is frozen (trainable off), so training would change nothing. Turn "
                  f"trainable on for at least one layer, such as {last.name}, the last one frozen.", last.id,
                  field="trainable")]


# Layers that work on the last axis only: a stack of them keeps an image's height and width.
LAST_AXIS_LAYERS = ("Dense", "Dropout", "Activation")


def first_dense_of_output_stack(graph: Graph) -> Node | None:
    """The first Dense of the layers that end the model and work on the last axis only: where a
    Flatten belongs when the output is still image-shaped."""
    outputs = graph.outputs()
    if len(outputs) != 1:
        return None
    node, first = outputs[0], None
    while node.type in LAST_AXIS_LAYERS and len(node.inputs) == 1:
        if node.type == "Dense":
            first = node
        node = graph.node(node.inputs[0])
    return first


def _not_per_sample(graph: Graph, output_id: str, shape: tuple[int, ...], meta: DatasetMeta) -> Issue:
    output = graph.node(output_id)
    first = first_dense_of_output_stack(graph) or output
    what = "class" if meta.task == "classification" else "number"
    autoencoder = (" If it is meant to give back its input (an autoencoder), set the training setting target to "
                   "input." if list(shape) == list(meta.input_shape) else "")
    return Issue(f"{output.name} gives {describe(shape)}: a prediction for every position of its "
                 f"{len(shape) + 1}-D input, but {meta.name} has one {what} per sample, so Keras cannot "
                 f"compare them and training would fail. Add a Flatten layer before {first.name}, or press "
                 f"\"Fit the output layer to the data\".{autoencoder}", output_id, code=PER_SAMPLE_OUTPUT)


def check_fit(output_units: int, output_activation: str, meta: DatasetMeta, config: TrainConfig,
              *, layer_id: str | None = None) -> list[Issue]:
    """Does this output layer, this loss and this data fit together? Errors refuse the run."""
    issues: list[Issue] = []

    def error(message: str, field: str, on_layer: bool = False) -> None:
        issues.append(Issue(message, layer_id if on_layer else None, "error", field))

    def warn(message: str, field: str, on_layer: bool = False) -> None:
        issues.append(Issue(message, layer_id if on_layer else None, "warning", field))

    loss, units, act = config.loss, output_units, output_activation
    if meta.task == "classification":
        _check_classification(loss, units, act, meta, config, error, warn)
    elif meta.task == "regression":
        _check_regression(loss, units, act, meta, config, error, warn)
    else:
        error(f"Unknown task {meta.task!r} for {meta.name}; expected classification or regression.",
              "loss")
    _check_settings(meta, config, error, warn)
    return issues


def _classes(meta: DatasetMeta) -> str:
    names = meta.class_names
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    return f"{len(names)} classes ({shown})"


# How the checks below report: error(message, field, on_layer=False) and warn(...) alike.
Say = Callable[..., None]


def _check_classification(loss: str, units: int, act: str, meta: DatasetMeta, config: TrainConfig,
                          error: Say, warn: Say) -> None:
    k = meta.num_classes
    if loss in REGRESSION_LOSSES:
        if k == 2 and units == 1 and act == "sigmoid":
            warn(f"{loss} on a sigmoid output works for two classes, but binary_crossentropy "
                 "usually learns faster and is the usual choice.", "loss")
        else:
            error(f"{loss} measures how far a predicted number is from the target, but "
                  f"{meta.name} has class labels (0 to {k - 1}) and the output layer gives {units} "
                  f"{act} {'value' if units == 1 else 'values'}. For classes use "
                  f"sparse_categorical_crossentropy with {k} softmax units.", "loss")
        return
    if loss == "binary_crossentropy":
        if k != 2:
            error(f"binary_crossentropy is for two classes, but {meta.name} has {_classes(meta)}. "
                  f"Use sparse_categorical_crossentropy with {k} softmax units.", "loss")
        elif units != 1:
            error(f"binary_crossentropy expects one output unit (the probability of "
                  f"{meta.class_names[1]!r}); the output layer has {units}. Set its units to 1 with "
                  "sigmoid, or keep 2 softmax units and use sparse_categorical_crossentropy.",
                  "units", on_layer=True)
        elif act == "softmax":
            error("softmax over a single unit always outputs 1, so nothing can be learned. "
                  "Use sigmoid on this one-unit output layer.", "activation", on_layer=True)
        else:
            _check_probabilities(loss, act, "sigmoid", warn)
        return
    if units != k:
        if k == 2 and units == 1:
            error(f"{loss} needs one output unit per class (2); the output layer has 1. Set its "
                  "units to 2 with softmax, or use binary_crossentropy with sigmoid.", "loss")
        else:
            error(f"The output layer has {plural(units, 'unit')}, but {meta.name} has {_classes(meta)}. "
                  f"Set its units to {k}: one score per class.", "units", on_layer=True)
        return
    if act == "sigmoid":
        warn(f"sigmoid scores each of the {k} classes on its own, so the scores do not add up "
             f"to 1; with {loss} use softmax, which picks one class out of {k}.",
             "activation", on_layer=True)
    else:
        _check_probabilities(loss, act, "softmax", warn)
    if loss == "categorical_crossentropy":
        warn(f"categorical_crossentropy expects one-hot labels (a row of {k} numbers per sample), "
             f"but {meta.name} stores class numbers 0 to {k - 1}; LayerLab one-hot encodes them "
             "for you. sparse_categorical_crossentropy gives the same loss from the class numbers.",
             "loss")
    regression_metrics = [m for m in config.metrics if m in REGRESSION_METRICS]
    if regression_metrics and loss == "sparse_categorical_crossentropy":
        verb = "compares" if len(regression_metrics) == 1 else "compare"
        error(f"{', '.join(regression_metrics)} {verb} the target with the output number by "
              f"number, but here the target is one class number per sample and the output has {k} "
              "scores, so Keras cannot compare them. Use accuracy to measure classification.",
              "metrics")


def _check_probabilities(loss: str, act: str, fits: str, warn: Say) -> None:
    if act == "linear":
        warn(f"The output layer is linear, so it gives raw scores (logits) rather than "
             f"probabilities; {loss} is computed with from_logits=True to match. Use {fits} to "
             "see probabilities in predictions.", "activation", on_layer=True)
    elif act != fits:
        warn(f"{loss} expects probabilities, but {act} does not give values that are. "
             f"Use {fits} on the output layer.", "activation", on_layer=True)


def _check_regression(loss: str, units: int, act: str, meta: DatasetMeta, config: TrainConfig,
                      error: Say, warn: Say) -> None:
    target = f" ({meta.target_name})" if meta.target_name else ""
    if loss in CROSS_ENTROPY_LOSSES:
        error(f"{loss} compares class probabilities with class labels, but {meta.name}'s "
              f"target{target} is a number. Use mean_squared_error, mean_absolute_error or huber.",
              "loss")
    if units != 1:
        error(f"The output layer gives {units} numbers per sample, but the target{target} is one "
              "number. Set its units to 1.", "units", on_layer=True)
    if act == "softmax":
        error("softmax makes the outputs add up to 1 (a single unit always outputs 1), so it "
              "cannot predict a number. Use linear on the output layer for regression.",
              "activation", on_layer=True)
    elif act in ("sigmoid", "hard_sigmoid", "tanh"):
        low = "-1" if act == "tanh" else "0"
        warn(f"{act} only outputs values between {low} and 1, so a target outside that range can "
             "never be reached. Use linear unless the target is scaled to that range.",
             "activation", on_layer=True)
    if "accuracy" in config.metrics:
        error("accuracy counts exactly right class labels, which a predicted number almost never "
              "is. Remove accuracy from the metrics; mae (mean absolute error) fits regression.",
              "metrics")


def _check_settings(meta: DatasetMeta, config: TrainConfig, error: Say, warn: Say) -> None:
    monitor = config.early_stopping_monitor
    if config.early_stopping:
        if monitor == "val_accuracy" and config.target == "input":
            error("Early stopping watches val_accuracy, but with target input there is no class to be right "
                  "about. Watch val_loss.", "early_stopping_monitor")
        elif monitor == "val_accuracy" and "accuracy" not in config.metrics:
            error("Early stopping watches val_accuracy, but accuracy is not among the metrics. "
                  "Add accuracy to the metrics or watch val_loss.", "early_stopping_monitor")
        if monitor.startswith("val_") and meta.split_sizes.get("val", 1) == 0:
            error(f"Early stopping watches {monitor}, but {meta.name} has no validation split. "
                  "Watch loss instead.", "early_stopping_monitor")
    if config.learning_rate > USUAL_MAX_LEARNING_RATE:
        warn(f"learning_rate={config.learning_rate:g} is far above the usual range (0.0001 to 0.1); "
             "expect the loss to jump around or diverge to NaN.", "learning_rate")
    if config.momentum and config.optimizer != "sgd":
        warn(f"momentum applies to sgd only; {config.optimizer} ignores it.", "momentum")
    train = meta.split_sizes.get("train")
    if train and config.batch_size > train:
        warn(f"batch_size={config.batch_size} is larger than the {train} training samples, so each "
             "epoch is a single update.", "batch_size")
