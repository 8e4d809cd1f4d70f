"""The starters that need a dataset of their kind learn it: the residual convnet on digits, the sequence model on
the motif set (where a model that only counts tokens cannot), and the autoencoder gives digits back."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from app.core.starters import STARTERS
from app.data.prepare import prepare_builtin
from tests.factories import stack
from tests.training.runs import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def motif_dir(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("motif")
    prepare_builtin("motif", {"n_samples": 2000, "seed": 0}, {}, folder / "data", folder / "cache")
    return folder / "data"


def test_the_residual_starter_learns_digits(digits_dir, tmp_path):
    result, _ = train(STARTERS["residual"].graph(), digits_dir, tmp_path / "residual", {"epochs": 2, "seed": 1})
    assert result["state"] == "completed", result["message"]
    assert result["evaluation"]["accuracy"] > 0.5


def test_the_sequence_starter_finds_the_motif_that_counting_tokens_misses(motif_dir, tmp_path):
    binary = {"epochs": 10, "seed": 0, "loss": "binary_crossentropy"}  # what the app suggests for its sigmoid output
    result, _ = train(STARTERS["sequence"].graph(), motif_dir, tmp_path / "gru", binary)
    assert result["state"] == "completed", result["message"]
    assert result["evaluation"]["accuracy"] > 0.85
    recorded = json.loads((tmp_path / "gru" / "internals.json").read_text())
    first = recorded["records"][0]["layers"]
    embedding = next(layer["id"] for layer in recorded["layers"] if layer["name"] == "embedding")
    assert first[embedding]["gradient_norm"] > 0  # its gradient comes as IndexedSlices, recorded densely

    counting = stack(("Input", {"shape": [20]}), ("Embedding", {"input_dim": 10, "output_dim": 16}),
                     ("GlobalAveragePooling1D", {}), ("Dense", {"units": 16}),
                     ("Dense", {"units": 1, "activation": "sigmoid"}))
    bag, _ = train(counting, motif_dir, tmp_path / "bag", binary)
    assert bag["state"] == "completed", bag["message"]
    assert bag["evaluation"]["accuracy"] < result["evaluation"]["accuracy"] - 0.1


def test_the_autoencoder_starter_learns_to_give_back_digits(digits_dir, tmp_path):
    config = {"target": "input", "loss": "mean_squared_error", "metrics": ["mae"], "epochs": 3, "seed": 0}
    result, _ = train(STARTERS["autoencoder"].graph(), digits_dir, tmp_path / "auto", config)
    assert result["state"] == "completed", result["message"]
    evaluation = result["evaluation"]
    assert evaluation["task"] == "reconstruction" and set(evaluation["metrics"]) == {"mae"}
    arrays = np.load(digits_dir / "arrays.npz")
    # Better than the best guess without looking at the sample: the average training image
    baseline = float(np.square(arrays["x_test"] - arrays["x_train"].mean(axis=0)).mean())
    errors = evaluation["reconstruction"]["errors"]
    assert errors["mean"] < 0.5 * baseline and errors["finite"] == errors["count"] == len(arrays["x_test"])
    assert abs(errors["mean"] - evaluation["loss"]) < 1e-3  # the loss is that mean squared error
    shown = [s["error"] for s in evaluation["reconstruction"]["samples"]]
    assert len(shown) == 10 and shown == sorted(shown)  # from the best reconstructed to the worst
    with Image.open(tmp_path / "auto" / "reconstructions.png") as picture:
        assert picture.size == (4 + 10 * 60, 4 + 2 * 60 + 14)
