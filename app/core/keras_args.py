"""Translate a node's catalog parameters into Keras constructor arguments.

Shared by the worker's build and by anything that writes Keras code, so that the
mapping from the catalog to Keras lives in one place.
"""

from __future__ import annotations

from typing import Any

from app.core.catalog import CATALOG, NO_CHOICE
from app.core.graph import Node


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
    return kwargs
