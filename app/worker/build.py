"""Build a Keras functional model from a LayerLab graph."""

from __future__ import annotations

import keras

from app.core.catalog import CATALOG
from app.core.errors import UserError
from app.core.graph import Graph
from app.core.keras_args import KerasLayer, call_inputs, keras_kwargs, keras_layer
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
            layer = make_layer(keras_layer(node), node.name)
            tensors[node.id] = layer(*call_inputs(node.type, sources))
            if kwargs.get("trainable") is False and CATALOG[node.type].freezes_once_built:
                for weight in layer.weights:
                    weight.trainable = False
        except Exception as exc:  # Keras raises ValueError, TypeError and others
            shapes = [tuple(t.shape) for t in sources]
            raise UserError(explain_keras_error(node, shapes, exc), layer_id=node.id,
                            details={"keras_message": str(exc)[:1000]}) from exc
    outputs = [tensors[n.id] for n in graph.outputs()]
    return keras.Model(inputs=inputs, outputs=outputs if len(outputs) > 1 else outputs[0],
                       name="layerlab_model")


def make_layer(spec: KerasLayer, name: str | None = None) -> keras.layers.Layer:
    """Construct a Keras layer, and first the layer inside it for a wrapper."""
    named = {"name": name} if name else {}
    layer_class = getattr(keras.layers, spec.class_name)
    if spec.wrapped is None:
        return layer_class(**named, **spec.kwargs)
    return layer_class(make_layer(spec.wrapped), **named, **spec.kwargs)
