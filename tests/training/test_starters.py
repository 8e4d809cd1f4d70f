"""The starters that need a dataset of their kind learn it: the residual convnet on digits, the sequence model on
the motif set (where a model that only counts tokens cannot)."""

from __future__ import annotations

import json

import pytest

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
