"""Variant searches: the axes a learner can vary, the trials they make, and how trials rank.

Pure Python. A trial's parameters become changes in the paths of app.core.compare
(`layers.dense.activation`, `settings.optimizer`, `layers.dropout` for an added layer),
applied to the base model's graph and settings like a suggestion's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.core.activations import ACTIVATIONS
from app.core.errors import UserError, invalid_value, shown
from app.core.graph import Graph, default_name
from app.core.initializers import INITIALIZERS
from app.core.suggestions import hidden_layers
from app.core.text import plural
from app.core.training import OPTIMIZERS, PARAMS_BY_NAME, coerce_setting

STRATEGIES = ("grid", "optuna")
METRICS = ("val_accuracy", "val_loss", "accuracy", "loss")
MAX_AXIS_VALUES = 8
MAX_WIDTH_UNITS = 4096


@dataclass(frozen=True)
class Axis:
    name: str
    help: str
    example: tuple[Any, ...]

    def check(self, value: Any) -> Any:
        """The value made canonical, or UserError naming `axes.<name>` and what is allowed."""
        field = f"axes.{self.name}"
        if self.name == "activation":
            if value not in ACTIVATIONS or value == "softmax":
                raise invalid_value(field, "one of " + ", ".join(a for a in ACTIVATIONS if a != "softmax"), value)
            return value
        if self.name == "kernel_initializer":
            if value not in INITIALIZERS:
                raise invalid_value(field, "one of " + ", ".join(INITIALIZERS), value)
            return value
        if self.name == "width":
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.25 <= value <= 4:
                raise invalid_value(field, "a factor between 0.25 and 4 (0.5 halves the neurons, 2 doubles them)",
                                    value)
            return float(value)
        if self.name == "depth":
            if value not in (-1, 0, 1) or isinstance(value, bool):
                raise invalid_value(field, "-1 (one fewer hidden layer), 0 or 1 (one more)", value)
            return int(value)
        if self.name == "dropout":
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 0.9:
                raise invalid_value(field, "a rate from 0 (no Dropout) up to 0.9", value)
            return float(value)
        if self.name == "optimizer":
            if value not in OPTIMIZERS:
                raise invalid_value(field, "one of " + ", ".join(OPTIMIZERS), value)
            return value
        try:  # learning_rate and batch_size: the training settings' own bounds
            return coerce_setting(self.name, value)
        except UserError as exc:
            exc.field = field
            raise


AXES: dict[str, Axis] = {a.name: a for a in (
    Axis("activation", "the activation of every hidden layer", ("relu", "tanh", "sigmoid")),
    Axis("kernel_initializer", "the initial weights of every hidden layer", ("glorot_uniform", "he_normal")),
    Axis("width", "neurons or filters of every hidden layer times this factor", (0.5, 1, 2)),
    Axis("depth", "one fewer (-1) or one more (1) hidden Dense layer", (-1, 0, 1)),
    Axis("dropout", "a Dropout layer of this rate after the last hidden layer (0: none)", (0, 0.2, 0.5)),
    Axis("optimizer", "the optimizer", ("adam", "sgd", "rmsprop")),
    Axis("learning_rate", "the learning rate", (0.01, 0.001, 0.0001)),
    Axis("batch_size", "the batch size", (16, 32, 64)),
)}


@dataclass(frozen=True)
class SearchSpec:
    axes: dict[str, list[Any]]
    runs: int
    epochs: int
    strategy: str
    metric: str

    @property
    def grid_size(self) -> int:
        return math.prod(len(values) for values in self.axes.values())

    @property
    def maximize(self) -> bool:
        return "accuracy" in self.metric

    def grid(self) -> list[dict[str, Any]]:
        names = list(self.axes)
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*self.axes.values())]


def parse_spec(body: Mapping[str, Any], graph: Graph, max_runs: int) -> SearchSpec:
    """Check a search request against the catalog, the model and the budget limit; UserError names the field."""
    axes = body.get("axes")
    if not isinstance(axes, dict) or not axes:
        raise UserError("Choose at least one axis to vary: " + ", ".join(AXES) + ".", field="axes")
    checked: dict[str, list[Any]] = {}
    for name, values in axes.items():
        axis = AXES.get(name)
        if axis is None:
            raise UserError(f"There is no axis {shown(name)}. The axes are: {', '.join(AXES)}.", field="axes")
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_AXIS_VALUES:
            raise invalid_value(f"axes.{name}", f"a list of 1 to {MAX_AXIS_VALUES} values, such as "
                                f"{list(axis.example)}", values)
        checked[name] = list(dict.fromkeys(axis.check(v) for v in values))
    _check_axes_fit(checked, graph)
    budget = body.get("budget") or {}
    if not isinstance(budget, dict):
        raise invalid_value("budget", 'an object such as {"runs": 8, "epochs": 5}', budget)
    runs = budget.get("runs", 8)
    if not isinstance(runs, int) or isinstance(runs, bool) or not 1 <= runs <= max_runs:
        raise invalid_value("budget.runs", f"an integer between 1 and {max_runs} (LAYERLAB_MAX_SEARCH_RUNS)", runs)
    epochs_param = PARAMS_BY_NAME["epochs"]
    epochs = budget.get("epochs", 5)
    if not isinstance(epochs, int) or isinstance(epochs, bool) or not 1 <= epochs <= (epochs_param.maximum or 1000):
        raise invalid_value("budget.epochs", f"an integer between 1 and {epochs_param.maximum}", epochs)
    strategy = body.get("strategy", "grid")
    if strategy not in STRATEGIES:
        raise invalid_value("strategy", "grid or optuna", strategy)
    metric = body.get("metric", "val_accuracy")
    if metric not in METRICS:
        raise invalid_value("metric", "one of " + ", ".join(METRICS), metric)
    spec = SearchSpec(checked, runs, epochs, strategy, metric)
    if strategy == "grid" and spec.grid_size > runs:
        raise UserError(f"The full grid has {spec.grid_size} combinations but the search may make only "
                        f"{plural(runs, 'run')}: allow {spec.grid_size} runs (`budget.runs`, \"Runs at most\" on "
                        "the page), remove values, or let optuna choose which to try.", field="budget.runs")
    return spec


def _check_axes_fit(axes: Mapping[str, list[Any]], graph: Graph) -> None:
    hidden = hidden_layers(graph)
    layer_axes = [name for name in ("activation", "kernel_initializer", "width", "dropout", "depth") if name in axes]
    if layer_axes and not hidden:
        raise UserError(f"This model has no hidden Dense or convolution layer for axes.{layer_axes[0]} to change.",
                        field=f"axes.{layer_axes[0]}")
    dense = [n for n in hidden if n.type == "Dense"]
    if "depth" in axes and not dense:
        raise UserError("axes.depth adds or removes a hidden Dense layer, and this model has none.",
                        field="axes.depth")
    if -1 in axes.get("depth", []) and len(dense) < 2:
        raise UserError("axes.depth -1 would remove the only hidden Dense layer; use 0 and 1.", field="axes.depth")


def trial_changes(graph: Graph, config: Mapping[str, Any], params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The changes a trial's parameters make to the base model's graph and settings."""
    hidden = hidden_layers(graph)
    changes: list[dict[str, Any]] = []

    def layer_change(name: str, param: str, old: Any, new: Any) -> None:
        if old != new:
            changes.append({"path": f"layers.{name}.{param}", "from": old, "to": new})

    for node in hidden:
        if "activation" in params:
            layer_change(node.name, "activation", node.params.get("activation"), params["activation"])
        if "kernel_initializer" in params:
            layer_change(node.name, "kernel_initializer", node.params.get("kernel_initializer"),
                         params["kernel_initializer"])
        if params.get("width", 1) != 1:
            size = "units" if "units" in node.params else "filters"
            old = int(node.params[size])
            layer_change(node.name, size, old, max(1, min(MAX_WIDTH_UNITS, round(old * params["width"]))))
    dense = [n for n in hidden if n.type == "Dense"]
    added_dense = None
    if params.get("depth") == 1:
        last = dense[-1]
        added_dense = default_name(graph, "Dense")
        changes.append({"path": f"layers.{added_dense}", "from": None, "to": {
            "type": "Dense", "after": last.name,
            "params": {"units": _changed(changes, last.name, "units", last.params.get("units")),
                       "activation": _changed(changes, last.name, "activation", last.params.get("activation")),
                       "kernel_initializer": _changed(changes, last.name, "kernel_initializer",
                                                      last.params.get("kernel_initializer"))}}})
    elif params.get("depth") == -1:
        last = dense[-1]
        changes = [c for c in changes if not c["path"].startswith(f"layers.{last.name}.")]
        changes.append({"path": f"layers.{last.name}", "from": last.name, "to": None})
    if params.get("dropout"):
        kept = [n.name for n in hidden if not (params.get("depth") == -1 and n is dense[-1])]
        after = added_dense if added_dense and kept[-1] == dense[-1].name else kept[-1]
        changes.append({"path": f"layers.{default_name(graph, 'Dropout')}", "from": None,
                        "to": {"type": "Dropout", "params": {"rate": params["dropout"]}, "after": after}})
    for name in ("optimizer", "learning_rate", "batch_size"):
        if name in params and config.get(name) != params[name]:
            changes.append({"path": f"settings.{name}", "from": config.get(name), "to": params[name]})
    return changes


def _changed(changes: Sequence[Mapping[str, Any]], layer: str, param: str, default: Any) -> Any:
    """A layer parameter's value after the changes made so far (a new layer copies its neighbour)."""
    for change in changes:
        if change["path"] == f"layers.{layer}.{param}":
            return change["to"]
    return default


def rank(trials: Sequence[Mapping[str, Any]], maximize: bool) -> list[Mapping[str, Any]]:
    """Trials with a value, best first (ties: the earlier trial first)."""
    scored = [t for t in trials if isinstance(t.get("value"), (int, float)) and t["value"] == t["value"]]
    return sorted(scored, key=lambda t: (-t["value"] if maximize else t["value"], t["number"]))
