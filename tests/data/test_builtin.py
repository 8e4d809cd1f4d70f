"""Every built-in dataset prepares offline with its documented shape; MNIST fails fast and helpfully."""

import functools
import gzip
import socket
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from app.core.errors import Unavailable
from app.data import keras_datasets
from app.data.catalog import DATASETS
from app.data.prepare import prepare_builtin
from app.data.prepared import read_arrays, read_meta
from tests.data.files import files_under, write_keras_cache, write_npz

SKLEARN_KEYS = ("digits", "digits28", "iris", "wine", "breast_cancer", "diabetes")


def check_prepared(folder, spec):
    meta = read_meta(folder)
    arrays = read_arrays(folder)
    assert meta.kind == spec.kind and meta.task == spec.task
    assert meta.input_shape == list(spec.input_shape)
    assert meta.class_names == list(spec.class_names)
    for split in ("train", "val", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        assert x.dtype == np.float32 and x.shape[1:] == spec.input_shape and len(x) == len(y) > 0
        assert y.dtype == (np.int64 if spec.task == "classification" else np.float32)
        assert meta.split_sizes[split] == len(y)
    if spec.kind == "image":
        assert 0.0 <= arrays["x_train"].min() and arrays["x_train"].max() <= 1.0
    return meta, arrays


def check_prepared_builtin(key, tmp_path, params=None, options=None):
    prepare_builtin(key, params or {}, options or {}, tmp_path / "out", tmp_path / "cache")
    return check_prepared(tmp_path / "out", DATASETS[key])


@pytest.mark.slow  # the first one pays for importing scikit-learn
@pytest.mark.parametrize("key", SKLEARN_KEYS)
def test_scikit_learn_sets_load_offline_with_their_documented_shape(key, tmp_path):
    spec = DATASETS[key]
    meta, _ = check_prepared_builtin(key, tmp_path)
    assert sum(meta.split_sizes.values()) == spec.num_samples
    if spec.kind == "table":
        assert len(meta.preview["rows"]) == 10 and meta.preview["header"][-1] == meta.target_name
    else:
        assert meta.preview["grid"]["rows"] == list(spec.class_names)
        assert (tmp_path / "out" / "samples.png").is_file()


@pytest.mark.parametrize("key", ("circle", "xor", "gaussian", "spiral", "plane", "multi_gaussian"))
def test_generated_sets_prepare_with_a_scatter_preview(key, tmp_path):
    meta, _arrays = check_prepared_builtin(key, tmp_path, {"n_samples": 200, "noise": 0.2, "seed": 3})
    assert sum(meta.split_sizes.values()) == 200
    points = meta.preview["points"]
    assert len(points) == 200 and all(len(p) == 3 for p in points)
    assert meta.source == {"type": "builtin", "key": key, "params": {"n_samples": 200, "noise": 0.2, "seed": 3},
                           "options": {"validation_fraction": 0.15, "test_fraction": 0.15, "split_seed": 0}}


def test_generated_points_preview_is_capped_at_500(tmp_path):
    meta, _ = check_prepared_builtin("spiral", tmp_path, {"n_samples": 2000})
    assert len(meta.preview["points"]) == 500


@pytest.mark.parametrize("key", ("mnist", "fashion_mnist"))
def test_keras_image_sets_load_from_the_cache_and_keep_their_own_test_split(key, tmp_path):
    write_keras_cache(tmp_path / "cache", key, n_train=120, n_test=30)
    meta, arrays = check_prepared_builtin(key, tmp_path)
    assert meta.split_sizes["test"] == 30 and meta.split_sizes["train"] + meta.split_sizes["val"] == 120
    cached = np.load(tmp_path / "cache" / f"{key}.npz")
    np.testing.assert_allclose(arrays["x_test"][..., 0], cached["x_test"] / 255.0, rtol=1e-6)
    assert meta.preview["grid"]["rows"] == list(DATASETS[key].class_names)
    assert meta.preview["class_counts"]["test"] == [3] * 10


def test_train_samples_takes_a_fixed_subset(tmp_path):
    write_keras_cache(tmp_path / "cache", "mnist", n_train=300)
    meta, _ = check_prepared_builtin("mnist", tmp_path, {"train_samples": 100})
    assert meta.split_sizes["train"] + meta.split_sizes["val"] == 100


def test_a_damaged_cache_file_is_reported_not_crashed_on(tmp_path):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "mnist.npz").write_bytes(b"not a zip")
    with pytest.raises(Unavailable, match="cannot be read .* delete it"):
        prepare_builtin("mnist", {}, {}, tmp_path / "out", tmp_path / "cache")
    write_npz(tmp_path / "cache" / "mnist.npz", x_train=np.zeros((3, 5)), y_train=np.zeros(3),
              x_test=np.zeros((3, 5)), y_test=np.zeros(3))
    with pytest.raises(Unavailable, match=r"expected \(n, 28, 28\)"):
        prepare_builtin("mnist", {}, {}, tmp_path / "out", tmp_path / "cache")


@pytest.fixture
def no_proxy(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def assert_helpful(message: str):
    assert "NPZ dataset" in message and "Docker image" in message and "cache_keras_datasets" in message


def test_with_an_empty_cache_and_no_network_the_error_is_quick_and_helpful(tmp_path, monkeypatch, no_proxy):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: the connection is refused at once
    monkeypatch.setattr(keras_datasets, "ORIGIN", f"http://127.0.0.1:{port}/")
    started = time.monotonic()
    with pytest.raises(Unavailable) as info:
        prepare_builtin("fashion_mnist", {}, {}, tmp_path / "out", tmp_path / "cache")
    assert time.monotonic() - started < 3
    assert_helpful(info.value.message)
    assert files_under(tmp_path) <= {Path("cache")}  # no partial download, no output folder


@pytest.mark.slow
def test_a_mirror_that_never_answers_gives_up_within_a_few_seconds(tmp_path, monkeypatch, no_proxy):
    with socket.socket() as silent:  # accepts connections (the kernel does) but never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setattr(keras_datasets, "ORIGIN", f"http://127.0.0.1:{silent.getsockname()[1]}/")
        started = time.monotonic()
        with pytest.raises(Unavailable, match="could not be downloaded") as info:
            prepare_builtin("mnist", {}, {}, tmp_path / "out", tmp_path / "cache")
        assert time.monotonic() - started < keras_datasets.CONNECT_DEADLINE_S + 2
    assert_helpful(info.value.message)
    assert not (tmp_path / "cache" / "mnist.npz").exists()


@pytest.fixture
def mirror(tmp_path, monkeypatch, no_proxy):
    """A local stand-in for Keras' dataset mirror, serving the files put in its folder."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    handler = functools.partial(QuietHandler, directory=str(folder))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        monkeypatch.setattr(keras_datasets, "ORIGIN", f"http://127.0.0.1:{server.server_address[1]}/")
        yield folder
        server.shutdown()
        thread.join()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_fashion_mnist_is_downloaded_once_into_the_cache(tmp_path, mirror, monkeypatch):
    monkeypatch.setattr(keras_datasets, "EXPECTED_SIZES", {"x_train": 40, "x_test": 10})
    labels = {"y_train": np.arange(40) % 10, "y_test": np.arange(10)}
    for key, (file, offset) in keras_datasets.FASHION_FILES.items():
        values = labels[key] if key in labels else np.full(len(labels["y" + key[1:]]) * 784, 7)
        (mirror / file).write_bytes(gzip.compress(bytes(offset) + values.astype(np.uint8).tobytes()))
    meta, arrays = check_prepared_builtin("fashion_mnist", tmp_path)
    assert meta.split_sizes["test"] == 10 and np.allclose(arrays["x_test"], 7 / 255)
    assert (tmp_path / "cache" / "fashion_mnist.npz").is_file()
    assert files_under(tmp_path / "cache") == {Path("fashion_mnist.npz")}


def test_a_download_that_fails_its_checksum_is_not_cached(tmp_path, mirror):
    (mirror / "mnist.npz").write_bytes(b"tampered")
    with pytest.raises(Unavailable, match="does not match its published checksum"):
        prepare_builtin("mnist", {}, {}, tmp_path / "out", tmp_path / "cache")
    assert files_under(tmp_path / "cache") == set()


def test_the_cache_script_imports_without_side_effects_and_skips_cached_files(tmp_path, capsys):
    from app.data import cache_keras_datasets

    for name in ("mnist", "fashion_mnist"):
        write_keras_cache(tmp_path, name)
    assert cache_keras_datasets.main([str(tmp_path)]) == 0
    assert capsys.readouterr().out.count("already cached") == 2
