"""What a model's augmentation layers do to its training images, drawn in the data worker.

Each row is one training image: first as it is, then as training may see it several times over. The
part of the model from its input to its last augmentation layer runs in training mode, so layers placed
before or between them (a Rescaling, a Resizing) act too, as they do while the model trains.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from app.core.catalog import CATALOG
from app.core.graph import Graph
from app.data.prepared import read_arrays
from app.worker.internals import draw_grid, normalise, save_png, single_input

ROWS = 4        # training images shown
VARIANTS = 5    # augmented versions of each


def augmentation_png(payload: dict[str, Any]) -> dict[str, Any]:
    """payload: graph, dataset_dir, seed, out (the PNG to write). Returns its path and the layers applied."""
    import keras

    from app.worker.build import build_model

    graph = Graph.model_validate(payload["graph"])
    augmenting = [n for n in graph.topological_order() if CATALOG[n.type].category == "Augmentation"]
    keras.utils.set_random_seed(int(payload["seed"]))  # before the build: each layer draws its own seed then
    model = build_model(graph)
    part = keras.Model(single_input(model), model.get_layer(augmenting[-1].name).output)
    images = read_arrays(Path(payload["dataset_dir"]))["x_train"][:ROWS].astype("float32")
    variants = [np.asarray(part(images, training=True)) for _ in range(VARIANTS)]
    tiles = []
    for row, image in enumerate(images):
        tiles.append(_tile(image))
        tiles += [_tile(variant[row]) for variant in variants]
    save_png(draw_grid(tiles, columns=VARIANTS + 1, gap=(160, 166, 176)), Path(payload["out"]),
             {"layers": ",".join(n.name for n in augmenting)})
    return {"path": payload["out"], "layers": [n.name for n in augmenting]}


def _tile(image: np.ndarray) -> np.ndarray:
    """Values clipped to 0..1 (images are prepared that way; a brightness change may overshoot), grey or RGB."""
    pixels = np.clip(np.asarray(image, dtype="float64"), 0.0, 1.0)
    if pixels.ndim == 3 and pixels.shape[-1] != 3:
        pixels = pixels.mean(axis=-1)
    return pixels if pixels.max() > 0 else normalise(pixels)
