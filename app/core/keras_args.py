"""Translate a node's catalog parameters into Keras constructor arguments.

Shared by the worker's build and by anything that writes Keras code, so that the
mapping from the catalog to Keras lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from app.core.catalog import CATALOG, NO_CHOICE, REGULARIZER_FACTOR
from app.core.graph import Node

T = TypeVar("T")


def keras_kwargs(node: Node) -> dict[str, Any]:
    layer_type = CATALOG[node.type]
    kwargs: dict[str, Any] = {}
    for param in layer_type.params:
        value = node.params.get(param.name, param.default)
        if param.kind in ("pair", "optional_pair", "shape") and value is not None:
            value = tuple(value)
        elif param.kind == "choice" and value == NO_CHOICE:
            value = None
        kwargs[param.name] = value
    kwargs.update(layer_type.fixed)
    for of in ("kernel", "bias"):
        if f"{of}_regularizer_factor" in kwargs:
            factor = kwargs.pop(f"{of}_regularizer_factor")
            kwargs[f"{of}_regularizer"] = regularizer(kwargs[f"{of}_regularizer"], factor)
    return kwargs


REGULARIZER_CLASSES = {"l1": "L1", "l2": "L2", "l1_l2": "L1L2"}


def regularizer(name: str | None, factor: float) -> str | dict[str, Any] | None:
    """A regularizer as Keras takes it: its name when Keras' own factor will do, else its config."""
    if name is None or (name in ("l1", "l2") and factor == REGULARIZER_FACTOR):
        return name
    settings = {"l1": factor, "l2": factor} if name == "l1_l2" else {name: factor}
    return {"class_name": REGULARIZER_CLASSES[name], "config": settings}


@dataclass(frozen=True)
class KerasLayer:
    """What to construct for a node: a Keras class and its arguments, and for a wrapper the layer inside it."""

    class_name: str
    kwargs: dict[str, Any]
    wrapped: KerasLayer | None = None


def keras_layer(node: Node) -> KerasLayer:
    """The Keras layer of a node; a wrapper's own parameters go to the layer it wraps."""
    layer_type = CATALOG[node.type]
    kwargs = keras_kwargs(node)
    if not layer_type.wrapped_params:
        return KerasLayer(layer_type.keras_class, kwargs)
    inner_class = layer_type.wrapped_class or kwargs.pop("layer")
    inner = {name: kwargs.pop(name) for name in layer_type.wrapped_params}
    # Named after the wrapper: a name Keras numbers on its own ("dense_3") could be another layer's of the model,
    # and two layers of one name share their weights' paths.
    inner["name"] = f"{node.name}_{inner_class.lower()}"
    return KerasLayer(layer_type.keras_class, kwargs, KerasLayer(inner_class, inner))


def call_inputs(type_name: str, sources: list[T]) -> tuple[T | list[T], ...]:
    """The positional arguments a layer is called with: a merge gets one list; MultiHeadAttention the query and
    the value (the same tensor for self-attention); any other layer its one input."""
    if type_name == "MultiHeadAttention":
        return (sources[0], sources[-1])
    if CATALOG[type_name].is_merge:
        return (sources,)
    return (sources[0],)
