"""Graphs that tests build again and again."""

from __future__ import annotations

from typing import Any

from app.core.catalog import CATALOG
from app.core.graph import Graph, add_layer, graph_from_layers

# An input shape each layer type accepts, for building it alone after an Input.
INPUT_FOR = {
    "Dense": [8], "Activation": [8], "Dropout": [8], "Flatten": [4, 4, 2], "Reshape": [784],
    "Rescaling": [8], "Conv1D": [10, 3], "Conv2D": [8, 8, 3], "MaxPooling1D": [10, 3],
    "MaxPooling2D": [8, 8, 3], "AveragePooling2D": [8, 8, 3], "GlobalAveragePooling2D": [8, 8, 3],
    "BatchNormalization": [8], "LayerNormalization": [8], "Embedding": [10], "LSTM": [10, 3],
    "GRU": [10, 3], "Add": [8], "Concatenate": [8],
    "Conv2DTranspose": [6, 6, 3], "SeparableConv2D": [8, 8, 3], "DepthwiseConv2D": [8, 8, 3],
    "UpSampling1D": [10, 3], "UpSampling2D": [6, 6, 3], "ZeroPadding2D": [6, 6, 3], "Cropping2D": [8, 8, 3],
    "AveragePooling1D": [10, 3], "GlobalMaxPooling1D": [10, 3], "GlobalMaxPooling2D": [8, 8, 3],
    "GlobalAveragePooling1D": [10, 3], "SimpleRNN": [10, 3], "RepeatVector": [8], "Permute": [10, 3],
    "Masking": [10, 3], "ReLU": [8], "LeakyReLU": [8], "PReLU": [8], "ELU": [8], "Softmax": [8],
    "Multiply": [8], "Subtract": [8], "Average": [8], "Maximum": [8], "Minimum": [8],
    "GroupNormalization": [8, 8, 16], "UnitNormalization": [8], "SpatialDropout1D": [10, 3],
    "SpatialDropout2D": [8, 8, 3], "GaussianNoise": [8], "GaussianDropout": [8], "ActivityRegularization": [8],
    "Normalization": [8], "Resizing": [28, 28, 1], "CenterCrop": [28, 28, 1], "RandomFlip": [28, 28, 1],
    "RandomRotation": [28, 28, 1],
    "RandomZoom": [28, 28, 1], "RandomTranslation": [28, 28, 1], "RandomContrast": [28, 28, 1],
    "RandomBrightness": [28, 28, 1], "Bidirectional": [10, 3], "TimeDistributed": [10, 3],
    "MultiHeadAttention": [10, 3], "Dot": [8],
}


def single_layer_graph(type_name: str, params: dict[str, Any] | None = None,
                       input_shape: list[int] | None = None) -> Graph:
    """Input -> the layer; merge layers get two Dense branches to join."""
    graph = graph_from_layers([("Input", {"shape": input_shape or INPUT_FOR[type_name]})])
    if CATALOG[type_name].is_merge:
        graph, left = add_layer(graph, "Dense", {"units": 4}, inputs=["n1"])
        graph, right = add_layer(graph, "Dense", {"units": 4}, inputs=["n1"])
        graph, _ = add_layer(graph, type_name, params, inputs=[left, right])
        return graph
    graph, _ = add_layer(graph, type_name, params)
    return graph


def stack(*layers: tuple[str, dict[str, Any]]) -> Graph:
    return graph_from_layers(list(layers))
