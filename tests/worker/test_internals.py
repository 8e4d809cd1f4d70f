"""Feature maps, filters and saliency of tiny models with weights set by hand, against plain Keras."""

from __future__ import annotations

import io

import numpy as np
import pytest

from app.core.errors import UserError
from app.worker import internals

pytestmark = pytest.mark.slow

keras = pytest.importorskip("keras")

IDENTITY = np.zeros((3, 3, 1), dtype="float32")
IDENTITY[1, 1, 0] = 1.0
EDGE = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype="float32")[..., None]  # Sobel, left to right


def conv_model(activation: str | None = None) -> keras.Model:
    inputs = keras.Input((8, 8, 1), name="picture")
    conv = keras.layers.Conv2D(2, 3, padding="same", activation=activation, name="conv")(inputs)
    pooled = keras.layers.MaxPooling2D(2, name="pool")(conv)
    outputs = keras.layers.Dense(3, name="out")(keras.layers.Flatten(name="flat")(pooled))
    model = keras.Model(inputs, outputs)
    kernel = np.stack([IDENTITY, EDGE], axis=-1)  # (3, 3, 1, 2)
    model.get_layer("conv").set_weights([kernel, np.zeros(2, dtype="float32")])
    return model


def picture() -> np.ndarray:
    x = np.zeros((8, 8, 1), dtype="float32")
    x[:, 4:, 0] = 1.0   # a vertical edge down the middle
    x[2, 1, 0] = 3.0
    return x


def png(image) -> tuple[int, int]:
    from PIL import Image

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    with Image.open(io.BytesIO(buffer.getvalue())) as opened:
        return opened.size


def test_feature_maps_are_what_keras_computes_and_are_drawn_most_active_first():
    model, x = conv_model(), picture()
    for name in ("conv", "pool"):
        maps = internals.feature_maps(model, name, x)
        plain = keras.Model(model.input, model.get_layer(name).output)(x[None]).numpy()[0]
        np.testing.assert_allclose(maps, plain, rtol=1e-6, atol=1e-6)
    maps = internals.feature_maps(model, "conv", x)
    np.testing.assert_allclose(maps[..., 0], x[..., 0], atol=1e-6)  # the identity kernel copies its input
    assert maps[3, 3, 1] == pytest.approx(4.0) and maps[3, 6, 1] == pytest.approx(0.0)  # the edge detector
    order = internals.channel_order(maps)
    assert list(order) == sorted(range(2), key=lambda c: -maps[..., c].mean())
    # 2 tiles of 8x8 scaled by 7 (56 px) in one row, with 2-pixel gaps
    assert png(internals.draw_grid([internals.normalise(maps[..., c]) for c in order])) == (2 * 56 + 3 * 2, 56 + 4)


def test_many_channels_are_cut_to_the_maximum(tmp_path):
    inputs = keras.Input((8, 8, 1), name="picture")
    model = keras.Model(inputs, keras.layers.Conv2D(40, 3, name="wide")(inputs))
    model.save(tmp_path / "model.keras")
    data = tmp_path / "data"
    data.mkdir()
    np.savez(data / "arrays.npz", x_test=np.random.default_rng(0).random((3, 8, 8, 1), dtype="float32"))
    payload = {"query": "feature_maps", "run_dir": str(tmp_path), "model": "model.keras",
               "dataset_dir": str(data), "layer_id": "n2", "layer_name": "wide", "index": 1, "max_channels": 32}
    first = internals.internal_png(payload)
    assert (first["shown"], first["total"]) == ("32", "40")
    assert "/internals/" in first["path"] and first["path"].endswith("sample-1-feature-maps-n2-32.png")
    from PIL import Image

    with Image.open(first["path"]) as drawn:
        assert drawn.size == (8 * 6 * 9 + 9 * 2, 4 * 6 * 9 + 5 * 2)  # 6x6 maps scaled by 9, 8 by 4 tiles
    stamp = (tmp_path / first["path"]).stat().st_mtime_ns
    again = internals.internal_png(payload)  # the cached file, not drawn again
    assert again == first and (tmp_path / first["path"]).stat().st_mtime_ns == stamp
    filters = internals.internal_png({**payload, "query": "filters"})
    assert (filters["shown"], filters["total"]) == ("32", "40")
    with pytest.raises(UserError, match="from 0 to 2"):
        internals.internal_png({**payload, "index": 3})


def test_filters_are_the_kernels_normalised_one_tile_each():
    model = conv_model()
    kernel = model.get_layer("conv").get_weights()[0]
    tiles = internals.filter_tiles(kernel)
    assert len(tiles) == 2
    np.testing.assert_allclose(tiles[0], IDENTITY[..., 0])           # already 0..1
    np.testing.assert_allclose(tiles[1], (EDGE[..., 0] + 2) / 4)    # -2..2 to 0..1
    assert png(internals.draw_grid(tiles)) == (2 * 57 + 3 * 2, 57 + 4)  # 3x3 scaled by 19 (about 56)
    rgb = internals.filter_tiles(np.random.default_rng(1).normal(size=(3, 3, 3, 5)))
    assert len(rgb) == 5 and rgb[0].shape == (3, 3, 3) and rgb[0].min() == 0 and rgb[0].max() == 1


def test_the_input_gradient_peaks_at_the_one_pixel_a_dense_model_looks_at():
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs)))
    weights = np.zeros((64, 1), dtype="float32")
    weights[5 * 8 + 2, 0] = 2.0
    model.layers[-1].set_weights([weights, np.zeros(1, dtype="float32")])
    heat, method, _ = internals.saliency_map(model, np.random.default_rng(2).random((8, 8, 1)))
    assert method == "input-gradient" and heat.shape == (8, 8)
    assert np.unravel_index(heat.argmax(), heat.shape) == (5, 2)
    assert heat[5, 2] == 1.0 and np.count_nonzero(heat) == 1


def test_grad_cam_peaks_where_the_last_conv_layer_sees_the_predicted_class():
    inputs = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(1, 1, activation="relu", name="conv")(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(conv))
    model = keras.Model(inputs, outputs)
    model.get_layer("conv").set_weights([np.ones((1, 1, 1, 1), dtype="float32"), np.zeros(1, dtype="float32")])
    model.layers[-1].set_weights([np.array([[0.0, 1.0]], dtype="float32"), np.zeros(2, dtype="float32")])
    x = np.zeros((8, 8, 1), dtype="float32")
    x[6, 1, 0] = 5.0
    heat, method, chosen = internals.saliency_map(model, x)
    assert method == "grad-cam" and chosen == 1 and heat.shape == (8, 8)
    assert np.unravel_index(heat.argmax(), heat.shape) == (6, 1) and heat.max() == pytest.approx(1.0)
    assert png(internals.overlay(x, heat)) == (224, 224)


def test_a_layer_without_filters_is_refused(tmp_path):
    model = conv_model()
    model.save(tmp_path / "model.keras")
    payload = {"query": "filters", "run_dir": str(tmp_path), "model": "model.keras", "dataset_dir": str(tmp_path),
               "layer_id": "n3", "layer_name": "pool", "index": 0, "max_channels": 32}
    with pytest.raises(UserError, match="not a Conv2D"):
        internals.internal_png(payload)
    assert internals.internal_png({**payload, "layer_name": "conv", "layer_id": "n2"})["total"] == "2"
