"""Importing model files in the worker: archives and weights files are checked as data, the model is
rebuilt from the catalog, and a refused file leaves nothing written."""

from __future__ import annotations

import io
import json
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from app.core.errors import TooLarge, UserError
from app.core.graph import Graph, add_layer, graph_from_layers
from app.core.starters import STARTERS
from app.core.validation import validate
from app.worker.importing import import_model, open_weights, read_array
from tests.core.test_keras_config import dense, functional, input_layer, lambda_layer, layer, small_model

MAX_BYTES = 50 * 1024 * 1024
# Input(8) -> Dense(3): Keras saves layers/dense/vars/0 (8, 3) and vars/1 (3,)
DENSE_MODEL = functional(input_layer(), dense("d", "input", units=3))


def keras_archive(config: dict[str, Any] | None, weights: bytes | None = None,
                  extra: dict[str, bytes] | None = None) -> bytes:
    """A .keras file as Keras lays it out: metadata.json, config.json and model.weights.h5 in a zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1", "date_saved": "2026-01-01@00:00:00"}))
        if config is not None:
            archive.writestr("config.json", json.dumps(config))
        if weights is not None:
            archive.writestr("model.weights.h5", weights)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def h5_bytes(build: Callable[[h5py.File], None]) -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        build(handle)
    return buffer.getvalue()


def dense_weights(handle: h5py.File) -> None:
    handle["layers/dense/vars/0"] = np.ones((8, 3), np.float32)
    handle["layers/dense/vars/1"] = np.zeros(3, np.float32)


def huge_dataset(handle: h5py.File) -> None:
    """A dataset declaring 4 PB (10**9 x 10**6 float32) of which nothing is written: the file stays small."""
    handle.create_dataset("layers/dense/vars/0", shape=(10**9, 10**6), dtype="float32", chunks=(1, 1024))
    handle["layers/dense/vars/1"] = np.zeros(3, np.float32)


def run_import(tmp_path: Path, data: bytes, filename: str = "model.keras") -> tuple[dict[str, Any], Path]:
    folder = tmp_path / "uploads"
    folder.mkdir(exist_ok=True)
    upload, out = folder / "upload.bin", folder / "out.weights.h5"
    upload.write_bytes(data)
    result = import_model({"path": str(upload), "filename": filename, "max_bytes": MAX_BYTES,
                           "weights_out": str(out)})
    return result, out


def refused(tmp_path: Path, data: bytes, filename: str = "model.keras") -> UserError:
    with pytest.raises(UserError) as caught:
        run_import(tmp_path, data, filename)
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == ["upload.bin"]  # nothing written
    return caught.value


# --- the archive --------------------------------------------------------------------------------

def test_a_json_config_without_weights_is_imported(tmp_path):
    result, out = run_import(tmp_path, json.dumps(DENSE_MODEL).encode(), "model.json")
    assert [n["type"] for n in result["graph"]["nodes"]] == ["Input", "Dense"]
    assert result["weights"] is None and not out.exists()
    assert any("trained weights" in note for note in result["not_imported"])


@pytest.mark.parametrize(("make", "words"), [
    (lambda: keras_archive(DENSE_MODEL, extra={"evil.py": b"import os"}), "holds 'evil.py'"),
    (lambda: keras_archive(DENSE_MODEL, extra={"assets/": b""}), "holds 'assets/'"),
    (lambda: keras_archive(DENSE_MODEL, extra={f"junk{i}": b"" for i in range(40)}), "declares 42 members"),
    (lambda: keras_archive(None), "has no config.json"),
    (lambda: keras_archive(DENSE_MODEL, h5_bytes(dense_weights))[:700], "not a complete .keras archive"),
    (lambda: b"PK\x03\x04" + b"\x00" * 200, "not a complete .keras archive"),
    (lambda: b"\x7fELF not a model at all", "neither a .keras file nor a Keras JSON config"),
    (lambda: b"\x7fELF not a model at all", "begins with the bytes 7f 45 4c 46 20 6e 6f 74"),
    (lambda: b"hello, not a model", "begins with the text 'hello, not a'"),
    (lambda: b"", "empty"),
    (lambda: h5_bytes(dense_weights), "Keras 2's legacy whole-model format"),
    (lambda: keras_archive({"class_name": "Functional", "config": {"layers": [], "x": "a" * 100}})[:-30],
     "not a complete .keras archive"),
])
def test_files_that_are_not_clean_keras_archives_are_refused(tmp_path, make, words):
    error = refused(tmp_path, make())
    assert words in error.message, error.message


def test_a_legacy_h5_is_refused_with_what_to_do(tmp_path):
    error = refused(tmp_path, b"anything", filename="model.h5")
    assert "can run code" in error.message and "model.save('model.keras')" in error.message


def test_a_lambda_layer_in_a_keras_file_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned.txt"
    error = refused(tmp_path, keras_archive(small_model(lambda_layer(marker))))
    assert "Layer 'lambda' (Lambda)" in error.message
    assert not marker.exists()


# --- the weights file ---------------------------------------------------------------------------

def test_a_weights_file_declaring_a_huge_dataset_is_refused_at_once(tmp_path):
    data = keras_archive(DENSE_MODEL, h5_bytes(huge_dataset))
    assert len(data) < 100_000
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(TooLarge, match="declares more than 50.0 MB"):
        run_import(tmp_path, data)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 20 * 1024 * 1024
    assert not (tmp_path / "uploads" / "out.weights.h5").exists()


def soft_link(handle: h5py.File) -> None:
    dense_weights(handle)
    handle["layers/dense/vars/2"] = h5py.SoftLink("/layers/dense/vars/0")


def external_link(handle: h5py.File) -> None:
    dense_weights(handle)
    handle["layers/dense/vars/2"] = h5py.ExternalLink("/etc/passwd.h5", "/data")


def external_storage(handle: h5py.File) -> None:
    handle.create_dataset("layers/dense/vars/0", shape=(8, 3), dtype="float32", external=[("/etc/passwd", 0, 96)])
    handle["layers/dense/vars/1"] = np.zeros(3, np.float32)


def virtual_dataset(handle: h5py.File) -> None:
    layout = h5py.VirtualLayout(shape=(8, 3), dtype="float32")
    layout[:] = h5py.VirtualSource("/elsewhere.h5", "data", shape=(8, 3))
    handle.create_virtual_dataset("layers/dense/vars/0", layout)
    handle["layers/dense/vars/1"] = np.zeros(3, np.float32)


def lzf(handle: h5py.File) -> None:
    handle.create_dataset("layers/dense/vars/0", data=np.ones((8, 3), np.float32), compression="lzf")
    handle["layers/dense/vars/1"] = np.zeros(3, np.float32)


def text_values(handle: h5py.File) -> None:
    dense_weights(handle)
    handle["layers/dense/vars/2"] = np.array([b"rm -rf /"], dtype=h5py.string_dtype())


@pytest.mark.parametrize(("build", "words"), [
    (soft_link, "holds a link"), (external_link, "to another file"), (external_storage, "external files"),
    (virtual_dataset, "virtual dataset"), (lzf, "HDF5 filter 32000"), (text_values, "Expected arrays of numbers"),
])
def test_weights_files_that_reach_outside_or_hide_things_are_refused(tmp_path, build, words):
    error = refused(tmp_path, keras_archive(DENSE_MODEL, h5_bytes(build)))
    assert words in error.message, error.message


def test_compressed_chunks_are_read_here_and_never_unpack_past_their_declared_size(tmp_path):
    values = np.arange(3000, dtype=np.float32).reshape(100, 30)
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("ok", data=values, chunks=(7, 30), compression="gzip", shuffle=True, fletcher32=True)
        bomb = handle.create_dataset("bomb", shape=(1000,), dtype="float32", chunks=(1000,), compression="gzip")
        bomb.id.write_direct_chunk((0,), zlib.compress(b"\0" * (64 * 1024 * 1024), 9))
    with open_weights(path) as handle:
        np.testing.assert_array_equal(read_array(handle["ok"]), values)
        tracemalloc.start()
        with pytest.raises(UserError, match="unpacks to more than"):
            read_array(handle["bomb"])
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


# --- the rebuilt model (TensorFlow) -------------------------------------------------------------

def branching_graph() -> Graph:
    """Input -> two Dense branches -> Add, joined with a third branch by Concatenate -> Dense."""
    graph = graph_from_layers([("Input", {"shape": [6]})])
    graph, left = add_layer(graph, "Dense", {"units": 5, "activation": "tanh"}, inputs=["n1"])
    graph, right = add_layer(graph, "Dense", {"units": 5, "activation": "relu"}, inputs=["n1"])
    graph, added = add_layer(graph, "Add", inputs=[left, right])
    graph, skip = add_layer(graph, "BatchNormalization", inputs=["n1"])
    graph, joined = add_layer(graph, "Concatenate", inputs=[added, skip])
    graph, _ = add_layer(graph, "Dense", {"units": 3, "activation": "softmax"}, inputs=[joined])
    return graph


def summary(graph: Graph) -> list[tuple[str, str, tuple[int, ...], int]]:
    report = validate(graph)
    assert report.ok
    return sorted((n.name, n.type, report.shapes[n.id].output, report.shapes[n.id].params) for n in graph.nodes)


def randomize(model: Any, seed: int = 0) -> None:
    """Trained-looking weights: every variable random (variances positive), so every array matters."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        values = rng.normal(0, 0.3, size=tuple(variable.shape))
        variable.assign(np.abs(values) + 0.5 if "variance" in variable.path else values)


def inputs_for(model: Any) -> np.ndarray:
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(1).normal(size=(4, *shape)).astype("float32")


def assert_same_model(original: Any, result: dict[str, Any], out: Path) -> None:
    from app.worker.build import build_model
    from app.worker.importing import apply_stored_weights

    rebuilt = build_model(Graph.model_validate(result["graph"]))
    applied = apply_stored_weights(rebuilt, out, result["weights"]["layer_keys"])
    assert sorted(applied) == sorted(layer.name for layer in original.layers if layer.weights)
    x = inputs_for(original)
    np.testing.assert_allclose(predict(rebuilt, x), predict(original, x), atol=1e-6)


def predict(model: Any, x: np.ndarray) -> np.ndarray:
    """The model's output on `x`; LayerLab's models take their one input as a list."""
    return np.asarray(model(x if type(model).__name__ == "Sequential" else [x], training=False))


@pytest.mark.slow
@pytest.mark.parametrize("key", [k for k, s in STARTERS.items() if s.layers] + ["branching"])
def test_a_saved_layerlab_model_comes_back_the_same(tmp_path, key):
    from app.worker.build import build_model

    graph = branching_graph() if key == "branching" else STARTERS[key].graph()
    model = build_model(graph)
    randomize(model)
    model.save(tmp_path / "x.keras")
    result, out = run_import(tmp_path, (tmp_path / "x.keras").read_bytes())
    imported = Graph.model_validate(result["graph"])
    assert summary(imported) == summary(graph)
    assert {n.name: n.params for n in imported.nodes} == {n.name: n.params for n in graph.nodes}
    names = {n.id: n.name for n in graph.nodes}
    imported_names = {n.id: n.name for n in imported.nodes}
    assert {n.name: [imported_names[i] for i in n.inputs] for n in imported.nodes} == \
        {n.name: [names[i] for i in n.inputs] for n in graph.nodes}
    assert result["imported"][-1].startswith("trained weights of")
    assert_same_model(model, result, out)


@pytest.mark.slow
def test_a_trained_keras_model_keeps_its_weights_and_says_what_it_left_out(tmp_path):
    import keras

    model = keras.Sequential([
        keras.Input((12, 3)), keras.layers.Conv1D(4, 3, activation="relu"), keras.layers.BatchNormalization(),
        keras.layers.LSTM(5, return_sequences=True), keras.layers.GRU(4), keras.layers.LayerNormalization(),
        keras.layers.Dropout(0.2), keras.layers.Dense(2, activation="softmax", kernel_regularizer="l2")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(np.zeros((4, 12, 3)), np.zeros(4), epochs=1, verbose=0)
    randomize(model, seed=3)
    model.save(tmp_path / "trained.keras")
    result, out = run_import(tmp_path, (tmp_path / "trained.keras").read_bytes())
    notes = " | ".join(result["not_imported"])
    assert "optimizer state" in notes and "compile settings" in notes and "kernel_regularizer" not in notes
    assert result["graph"]["nodes"][-1]["params"]["kernel_regularizer"] == "l2"  # offered by name: kept
    imported = Graph.model_validate(result["graph"])
    assert validate(imported).total_params == model.count_params()
    assert_same_model(model, result, out)


@pytest.mark.slow
def test_weights_of_another_model_are_refused_naming_the_layer(tmp_path):
    def wrong_shape(handle: h5py.File) -> None:
        handle["layers/dense/vars/0"] = np.ones((8, 4), np.float32)
        handle["layers/dense/vars/1"] = np.zeros(3, np.float32)

    def missing(handle: h5py.File) -> None:
        handle["layers/dense/vars/0"] = np.ones((8, 3), np.float32)

    error = refused(tmp_path, keras_archive(DENSE_MODEL, h5_bytes(wrong_shape)))
    assert "Layer 'd' (Dense)" in error.message and "Expected shape (8, 3)" in error.message
    error = refused(tmp_path, keras_archive(DENSE_MODEL, h5_bytes(missing)))
    assert "Layer 'd' (Dense)" in error.message and "no array 'layers/dense/vars/1'" in error.message
    result, out = run_import(tmp_path, keras_archive(DENSE_MODEL, h5_bytes(dense_weights)))
    assert result["weights"]["values"] == 27 and out.exists()


@pytest.mark.slow
def test_the_lambda_file_would_write_when_loaded_unsafely_but_import_never_runs_it(tmp_path):
    """The positive control: Keras itself, told to drop safe mode, runs the Lambda's code and writes the file."""
    import keras

    def weights(handle: h5py.File) -> None:
        handle["layers/dense/vars/0"] = np.ones((8, 2), np.float32)
        handle["layers/dense/vars/1"] = np.zeros(2, np.float32)

    marker = tmp_path / "pwned.txt"
    data = keras_archive(small_model(lambda_layer(marker)), h5_bytes(weights))
    (tmp_path / "evil.keras").write_bytes(data)
    keras.models.load_model(tmp_path / "evil.keras", safe_mode=False)
    assert marker.read_text() == "pwned"
    marker.unlink()
    error = refused(tmp_path, data)
    assert "Lambda" in error.message and not marker.exists()


def test_a_config_naming_a_layer_outside_the_catalog_is_refused_before_weights_are_read(tmp_path):
    config = small_model(layer("TFSMLayer", "tfsm", {"filepath": "/tmp/saved", "call_endpoint": "serve"}))
    error = refused(tmp_path, keras_archive(config, h5_bytes(huge_dataset)))
    assert "Layer 'tfsm' (TFSMLayer)" in error.message
