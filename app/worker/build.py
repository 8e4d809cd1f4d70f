"""Build a Keras functional model from a LayerLab graph."""

from __future__ import annotations

import keras

from app.core.catalog import CATALOG
from app.core.errors import UserError
from app.core.graph import Graph
from app.core.keras_args import keras_kwargs
from app.worker.advice import explain_keras_error


def build_model(graph: Graph) -> keras.Model:
    """The Keras model of a graph; a layer Keras refuses raises UserError at that layer, in plain words."""
    tensors: dict[str, keras.KerasTensor] = {}
    inputs = []
    for node in graph.topological_order():
        kwargs = keras_kwargs(node)
        if CATALOG[node.type].is_input:
            tensors[node.id] = keras.Input(shape=kwargs["shape"], name=node.name)
            inputs.append(tensors[node.id])
            continue
        sources = [tensors[i] for i in node.inputs]
        try:
            layer = getattr(keras.layers, node.type)(name=node.name, **kwargs)
            tensors[node.id] = layer(sources if CATALOG[node.type].is_merge else sources[0])
        except Exception as exc:  # Keras raises ValueError, TypeError and others
            shapes = [tuple(t.shape) for t in sources]
            raise UserError(explain_keras_error(node, shapes, exc), layer_id=node.id,
                            details={"keras_message": str(exc)[:1000]}) from exc
    outputs = [tensors[n.id] for n in graph.outputs()]
    return keras.Model(inputs=inputs, outputs=outputs if len(outputs) > 1 else outputs[0],
                       name="layerlab_model")
