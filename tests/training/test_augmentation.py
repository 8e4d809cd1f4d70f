"""Layers that act differently in training: augmentation changes the images in training only (a model with it
predicts the same every time at inference, and trains and tests through LayerLab like any other); Normalization
measures the training split when a run starts."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.catalog import CATALOG
from app.worker.build import build_model
from tests.factories import stack
from tests.training.runs import train

pytestmark = pytest.mark.slow

AUGMENTATION = sorted(name for name, t in CATALOG.items() if t.category == "Augmentation")


def augmented(*layers: tuple[str, dict]) -> object:
    return stack(("Input", {"shape": [28, 28, 1]}), *layers, ("Flatten", {}),
                 ("Dense", {"units": 10, "activation": "softmax"}))


@pytest.mark.parametrize("type_name", AUGMENTATION)
def test_an_augmentation_layer_changes_images_in_training_only(type_name):
    import keras

    keras.utils.set_random_seed(0)  # the draws no longer depend on what ran before in this process
    model = build_model(augmented((type_name, {})))
    layer = model.get_layer(model.layers[1].name)
    # 32 images: a random flip leaves each one as it is half the time, all 32 almost never
    images = np.random.default_rng(0).random((32, 28, 28, 1), dtype="float32")
    inference = [np.asarray(layer(images, training=False)) for _ in range(2)]
    assert np.array_equal(inference[0], images) and np.array_equal(inference[1], images)
    trained = np.asarray(layer(images, training=True))
    assert trained.shape == images.shape and not np.allclose(trained, images), type_name
    assert keras.ops.convert_to_numpy(model([images], training=False)).shape == (32, 10)


def test_a_model_with_augmentation_trains_and_tests_the_same_twice(digits_dir, tmp_path):
    graph = augmented(("RandomFlip", {"mode": "horizontal"}), ("RandomRotation", {"factor": 0.05}),
                      ("RandomZoom", {"height_factor": 0.1}))
    result, _ = train(graph, digits_dir, tmp_path / "run", {"epochs": 2, "seed": 4})
    assert result["state"] == "completed", result["message"]
    import keras

    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    x = np.load(digits_dir / "arrays.npz")["x_test"][:50]
    first, second = model.predict(x, verbose=0), model.predict(x, verbose=0)
    assert np.array_equal(first, second)  # inference ignores the random layers
    assert result["evaluation"]["accuracy"] > 0.3


def test_a_normalization_layer_measures_the_training_split_when_the_run_starts(regression_dir, tmp_path):
    import keras

    graph = stack(("Input", {"shape": [8]}), ("Normalization", {}), ("Dense", {"units": 8}),
                  ("Dense", {"units": 1, "activation": "linear"}))
    result, _ = train(graph, regression_dir, tmp_path / "norm", {"epochs": 2, "loss": "mean_squared_error",
                                                                 "metrics": ["mae"], "seed": 3})
    assert result["state"] == "completed", result["message"]
    layer = keras.models.load_model(tmp_path / "norm" / "model.keras").get_layer("normalization")
    x_train = np.load(regression_dir / "arrays.npz")["x_train"]
    assert np.allclose(np.asarray(layer.mean).reshape(-1), x_train.mean(axis=0), atol=1e-4)
    assert np.allclose(np.asarray(layer.variance).reshape(-1), x_train.var(axis=0), rtol=1e-3)
