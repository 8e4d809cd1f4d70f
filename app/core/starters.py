"""Starter models offered when a model is created."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core.graph import Graph, add_layer
from app.data.catalog import SEQUENCE_LENGTH, VOCABULARY


@dataclass(frozen=True)
class Starter:
    key: str
    title: str
    description: str
    layers: tuple[tuple[str, dict[str, Any]], ...]
    model_name: str = ""  # what a new model from it is called ("Convnet", then "Convnet 2"); default: title
    # A layer (by position) that reads from others than the one before it: a merge's inputs, for skips.
    inputs: tuple[tuple[int, tuple[int, ...]], ...] = ()

    def __post_init__(self) -> None:
        if not self.model_name:
            object.__setattr__(self, "model_name", self.title)

    def graph(self) -> Graph:
        """The layers in order, each reading from the one before it unless `inputs` names others."""
        graph, ids = Graph(), list[str]()
        wired = dict(self.inputs)
        for position, (type_name, params) in enumerate(self.layers):
            if position in wired:
                graph, node_id = add_layer(graph, type_name, params, inputs=[ids[i] for i in wired[position]])
            else:
                graph, node_id = add_layer(graph, type_name, params, after=ids[-1] if ids else None)
            ids.append(node_id)
        return graph


STARTERS: dict[str, Starter] = {
    s.key: s
    for s in (
        Starter(
            "dense", "Dense classifier",
            "Flattens a 28x28 grayscale image and classifies it into 10 classes with two hidden layers.",
            (("Input", {"shape": [28, 28, 1]}), ("Flatten", {}),
             ("Dense", {"units": 64, "activation": "relu"}),
             ("Dense", {"units": 64, "activation": "relu"}),
             ("Dense", {"units": 10, "activation": "softmax"})),
        ),
        Starter(
            "convnet", "Convnet",
            "Three Conv2D layers with max pooling learn image features; Dense layers classify them.",
            (("Input", {"shape": [28, 28, 1]}),
             ("Conv2D", {"filters": 32, "kernel_size": [3, 3], "activation": "relu"}),
             ("MaxPooling2D", {"pool_size": [2, 2]}),
             ("Conv2D", {"filters": 64, "kernel_size": [3, 3], "activation": "relu"}),
             ("MaxPooling2D", {"pool_size": [2, 2]}),
             ("Conv2D", {"filters": 64, "kernel_size": [3, 3], "activation": "relu"}),
             ("Flatten", {}),
             ("Dense", {"units": 64, "activation": "relu"}),
             ("Dense", {"units": 10, "activation": "softmax"})),
        ),
        Starter(
            "regression", "Small regression",
            "Predicts one number from 8 input features with two small hidden layers.",
            (("Input", {"shape": [8]}),
             ("Dense", {"units": 32, "activation": "relu"}),
             ("Dense", {"units": 16, "activation": "relu"}),
             ("Dense", {"units": 1, "activation": "linear"})),
            model_name="Regression",
        ),
        Starter(
            "residual", "Residual convnet",
            "A convnet with a residual block: two convolutions whose result is added back to their input (a skip "
            "connection, as in ResNet), so the block only has to learn a correction to what it receives.",
            (("Input", {"shape": [28, 28, 1]}),
             ("Conv2D", {"filters": 32, "kernel_size": [3, 3], "activation": "relu"}),
             ("MaxPooling2D", {"pool_size": [2, 2]}),
             ("Conv2D", {"filters": 32, "kernel_size": [3, 3], "padding": "same", "activation": "relu"}),
             ("Conv2D", {"filters": 32, "kernel_size": [3, 3], "padding": "same", "activation": "linear"}),
             ("Add", {}),
             ("Activation", {"activation": "relu"}),
             ("MaxPooling2D", {"pool_size": [2, 2]}),
             ("Flatten", {}),
             ("Dense", {"units": 64, "activation": "relu"}),
             ("Dense", {"units": 10, "activation": "softmax"})),
            model_name="Residual convnet", inputs=((5, (2, 4)),),
        ),
        Starter(
            "sequence", "Sequence classifier",
            "Reads 20 token ids in order: an Embedding turns each token into a vector, a GRU reads them step by "
            "step and remembers what it saw, and one sigmoid unit gives the probability of the motif. Made for the "
            "Hidden motif set, where only the order of the tokens tells the classes apart.",
            (("Input", {"shape": [SEQUENCE_LENGTH]}),
             ("Embedding", {"input_dim": VOCABULARY, "output_dim": 16}),
             ("GRU", {"units": 32}),
             ("Dense", {"units": 1, "activation": "sigmoid"})),
            model_name="Sequence model",
        ),
        Starter(
            "autoencoder", "Autoencoder",
            "Squeezes a 28x28 image through a small code (7x7x8 values, a sixth of the pixels) with Conv2D and "
            "pooling, then grows it back with Conv2DTranspose. It trains with target input: it learns to give "
            "back each image, without labels, and the test shows originals next to reconstructions.",
            (("Input", {"shape": [28, 28, 1]}),
             ("Conv2D", {"filters": 16, "kernel_size": [3, 3], "padding": "same", "activation": "relu"}),
             ("MaxPooling2D", {"pool_size": [2, 2]}),
             ("Conv2D", {"filters": 8, "kernel_size": [3, 3], "padding": "same", "activation": "relu"}),
             ("MaxPooling2D", {"pool_size": [2, 2]}),
             ("Conv2DTranspose", {"filters": 8, "kernel_size": [3, 3], "strides": [2, 2], "padding": "same",
                                  "activation": "relu"}),
             ("Conv2DTranspose", {"filters": 16, "kernel_size": [3, 3], "strides": [2, 2], "padding": "same",
                                  "activation": "relu"}),
             ("Conv2D", {"filters": 1, "kernel_size": [3, 3], "padding": "same", "activation": "sigmoid"})),
        ),
        Starter("blank", "Blank model", "Start from nothing and add every layer yourself.", (),
                model_name="Network"),
    )
}
