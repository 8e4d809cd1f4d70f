"""Keras' own view of a graph: per-layer output shapes and parameter counts."""

from __future__ import annotations

import io
import math
from typing import Any

import keras
import numpy as np

from app.core.graph import Graph
from app.worker.build import build_model


def _count(weights: list) -> int:
    return sum(math.prod(w.shape) for w in weights)


def summarize_graph(graph: Graph, with_text: bool = False) -> dict[str, Any]:
    # A summary needs shapes and counts, not weight values: skipping their random
    # initialization halves the build time. Never use this scope for training.
    with keras.StatelessScope(initialize_variables=False):
        return _summarize(graph, with_text)


def _summarize(graph: Graph, with_text: bool) -> dict[str, Any]:
    model = build_model(graph)
    layers = []
    for node in graph.topological_order():
        layer = model.get_layer(node.name)
        layers.append({
            "id": node.id,
            "name": node.name,
            "keras_class": type(layer).__name__,
            "output_shape": [d for d in tuple(layer.output.shape)],
            "params": int(layer.count_params()),
        })
    trainable, non_trainable = _count(model.trainable_weights), _count(model.non_trainable_weights)
    result: dict[str, Any] = {
        "layers": layers,
        "total_params": trainable + non_trainable,
        "trainable_params": trainable,
        "non_trainable_params": non_trainable,
        "weights_bytes": sum(math.prod(w.shape) * np.dtype(w.dtype).itemsize for w in model.weights),
    }
    if with_text:
        buffer = io.StringIO()
        model.summary(print_fn=lambda line, **_: buffer.write(line + "\n"))
        result["keras_text"] = buffer.getvalue()
    return result
