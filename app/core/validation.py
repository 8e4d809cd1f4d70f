"""Validate a graph in pure Python: wiring, shapes, and the size estimate.

Runs on every edit in well under a millisecond for typical models, so that an
impossible or oversized model is explained at once without starting Keras.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from app.core.catalog import CATALOG, coerce_params
from app.core.errors import UserError
from app.core.graph import Graph, Node
from app.core.shapes import LayerShape, describe, infer_layer

BYTES_PER_VALUE = 4  # float32
PER_SAMPLE_OUTPUT = "per_sample_output"  # an output that is not one row per sample


@dataclass(frozen=True)
class Limits:
    max_params: int = 20_000_000
    max_activation_values: int = 20_000_000  # per sample, summed over layers


@dataclass(frozen=True)
class Issue:
    """One problem of a model, shown at its layer and field; errors stop training, warnings advise."""

    message: str
    layer_id: str | None = None
    severity: str = "error"  # or "warning"
    field: str | None = None
    too_large: bool = False  # size-limit issues make an edit be refused, not stored
    code: str | None = None  # names a kind of problem that several checks may find (shown once)

    def as_dict(self) -> dict[str, str | None]:
        return {"severity": self.severity, "layer_id": self.layer_id, "field": self.field,
                "message": self.message}

    def as_error(self, prefix: str = "", others: list[Issue] | None = None) -> UserError:
        """This issue raised as the request's error; `others` go along in the API body."""
        details = {"issues": [i.as_dict() for i in others]} if others else None
        return UserError(prefix + self.message, field=self.field, layer_id=self.layer_id, details=details)


@dataclass
class Report:
    issues: list[Issue] = field(default_factory=list)
    shapes: dict[str, LayerShape] = field(default_factory=dict)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def issues_for(self, layer_id: str) -> list[Issue]:
        return [i for i in self.issues if i.layer_id == layer_id]

    @property
    def total_params(self) -> int:
        return sum(s.params for s in self.shapes.values())

    @property
    def trainable_params(self) -> int:
        return sum(s.trainable for s in self.shapes.values())

    @property
    def activation_values(self) -> int:
        return sum(math.prod(s.output) for s in self.shapes.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.ok,
            "issues": [i.as_dict() for i in self.issues],
            "estimate": {
                "total_params": self.total_params,
                "weights_bytes": self.total_params * BYTES_PER_VALUE,
                "activations_bytes_per_sample": self.activation_values * BYTES_PER_VALUE,
            },
        }


def validate(graph: Graph, limits: Limits = Limits()) -> Report:
    report = Report()
    if not graph.nodes:
        report.issues.append(Issue("This model is empty. Add an Input layer, then the layers after it."))
        return report
    try:
        order = graph.topological_order()
    except UserError as exc:
        report.issues.append(Issue(exc.message, exc.layer_id, field=exc.field))
        return report

    _check_wiring(graph, report)
    _infer_shapes(order, report)
    _check_size(report, limits)
    _add_warnings(graph, report)
    return report


def _check_wiring(graph: Graph, report: Report) -> None:
    known = {n.id for n in graph.nodes}
    inputs = [n for n in graph.nodes if CATALOG[n.type].is_input]
    if not inputs:
        report.issues.append(Issue("This model has no Input layer. Add one: it tells Keras the "
                                   "shape of one sample."))
    for extra in inputs[1:]:
        report.issues.append(Issue(f"This model has {len(inputs)} Input layers; LayerLab trains "
                                   "models with one input. Remove this one or rewire its users.",
                                   extra.id))
    for node in graph.nodes:
        layer_type = CATALOG[node.type]
        try:
            coerce_params(layer_type, node.params)
        except UserError as exc:
            report.issues.append(Issue(exc.message, node.id, field=exc.field))
        missing = [i for i in node.inputs if i not in known]
        if missing:
            report.issues.append(Issue(f"{node.name} reads from a layer that no longer exists; "
                                       "choose its input again.", node.id, field="inputs"))
        elif not layer_type.is_input and len(node.inputs) < max(layer_type.min_inputs, 1):
            what = "at least two inputs" if layer_type.is_merge else "an input"
            report.issues.append(Issue(f"{node.name} needs {what}; it has {len(node.inputs)}. "
                                       "Choose what it reads from.", node.id, field="inputs"))
    outputs = graph.outputs()
    if len(outputs) > 1:
        last = outputs[-1]
        for node in outputs[:-1]:
            report.issues.append(Issue(f"The output of {node.name} is not used by any layer, so the "
                                       f"model would have two outputs ({node.name} and {last.name}). "
                                       "Connect it to a merge layer (Add or Concatenate) or remove it.",
                                       node.id))


def _infer_shapes(order: list[Node], report: Report) -> None:
    for node in order:
        if not CATALOG[node.type].is_input and (
                not node.inputs or any(i not in report.shapes for i in node.inputs)):
            continue  # the problem upstream is reported already
        try:
            report.shapes[node.id] = infer_layer(node.type, node.params,
                                                 [report.shapes[i].output for i in node.inputs])
        except UserError as exc:
            report.issues.append(Issue(exc.message, node.id, field=exc.field))
        except (KeyError, TypeError, ValueError):
            report.issues.append(Issue(f"{node.name} has parameters that do not fit together.", node.id))


def _check_size(report: Report, limits: Limits) -> None:
    total = report.total_params
    if total > limits.max_params:
        largest_id, largest = max(report.shapes.items(), key=lambda item: item[1].params)
        report.issues.append(Issue(
            f"This model would have {total:,} parameters; the limit is {limits.max_params:,}. "
            f"This layer alone has {largest.params:,}: use fewer units or filters, or shrink its "
            "input with pooling before it.", largest_id, too_large=True))
    values = report.activation_values
    if values > limits.max_activation_values:
        largest_id, largest = max(report.shapes.items(), key=lambda item: math.prod(item[1].output))
        report.issues.append(Issue(
            f"One sample would produce {values:,} intermediate values (about "
            f"{values * BYTES_PER_VALUE / 1e6:,.0f} MB); the limit is {limits.max_activation_values:,}. "
            f"This layer's output {describe(largest.output)} is the largest: use strides or pooling "
            "to make it smaller.", largest_id, too_large=True))


def _add_warnings(graph: Graph, report: Report) -> None:
    outputs = graph.outputs()
    for node in graph.nodes:
        if node.type != "Dense" or len(node.inputs) != 1 or node.inputs[0] not in report.shapes:
            continue
        shape = report.shapes[node.inputs[0]].output
        if len(shape) >= 2 and any(o.id == node.id for o in outputs):
            report.issues.append(Issue(
                f"Dense got a {len(shape) + 1}-D input {describe(shape)} and works on its last axis "
                f"only, so this output layer gives {describe(report.shapes[node.id].output)} instead "
                "of one row of predictions per sample. Add a Flatten layer before it (or before the "
                "first Dense).", node.id, severity="warning", code=PER_SAMPLE_OUTPUT))
        elif len(shape) >= 3 and _is_first_dense_after_images(graph, node):
            report.issues.append(Issue(
                f"Dense got a {len(shape) + 1}-D input {describe(shape)} and works on the last axis "
                "(the channels) only. Usually a Flatten layer belongs before it.",
                node.id, severity="warning"))
    for node in outputs:
        activation = node.params.get("activation")
        if activation == "softmax" and node.params.get("units") == 1:
            report.issues.append(Issue(
                "softmax over a single unit always outputs 1. For a yes/no output use sigmoid, "
                "or give this layer one unit per class.", node.id, severity="warning",
                field="activation"))
    for node in graph.nodes:
        if node.params.get("kernel_initializer") in ("zeros", "ones"):
            report.issues.append(Issue(
                f"With every weight starting at {'0' if node.params['kernel_initializer'] == 'zeros' else '1'}, "
                "all neurons of this layer compute the same thing and learn the same updates. "
                "Choose a random initializer such as glorot_uniform or he_normal.",
                node.id, severity="warning", field="kernel_initializer"))


def _is_first_dense_after_images(graph: Graph, node: Node) -> bool:
    upstream = graph.node(node.inputs[0])
    return upstream.type != "Dense"
