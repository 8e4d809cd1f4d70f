"""NPZ uploads: round trips, their own test split, labels by name, and refusals from the headers."""

import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from app.core.errors import UserError
from app.data.catalog import UploadLimits
from app.data.prepare import prepare_upload
from app.data.prepared import read_arrays, read_meta
from tests.data.files import files_under, npy_member, write_npz, write_zip

rng = np.random.default_rng(0)


def prepare_npz(tmp_path, options=None, limits=UploadLimits(), **arrays):
    path = write_npz(tmp_path / "data.npz", **arrays)
    prepare_upload("npz", path, options or {}, tmp_path / "out", limits)
    return read_meta(tmp_path / "out"), read_arrays(tmp_path / "out")


def test_uint8_images_with_their_own_test_split_round_trip(tmp_path):
    x_test = rng.integers(0, 256, (20, 12, 12), dtype=np.uint8)
    meta, arrays = prepare_npz(tmp_path, x_train=rng.integers(0, 256, (100, 12, 12), dtype=np.uint8),
                               y_train=np.arange(100) % 4, x_test=x_test, y_test=np.arange(20) % 4)
    assert meta.kind == "image" and meta.input_shape == [12, 12, 1] and meta.class_names == ["0", "1", "2", "3"]
    assert meta.split_sizes == {"train": 85, "val": 15, "test": 20}
    np.testing.assert_allclose(arrays["x_test"][..., 0], x_test / 255.0, rtol=1e-6)
    assert arrays["y_test"].tolist() == (np.arange(20) % 4).tolist()
    assert meta.preview["samples_image"] == "samples.png"
    assert files_under(tmp_path / "out") == {Path("arrays.npz"), Path("meta.json"), Path("samples.png")}


def test_text_labels_and_class_names_are_kept_by_name(tmp_path):
    labels = np.array(["cat", "dog", "emu"])[np.arange(60) % 3]
    meta, arrays = prepare_npz(tmp_path, x_train=rng.normal(size=(60, 5)).astype(np.float32), y_train=labels)
    assert meta.kind == "table" and meta.class_names == ["cat", "dog", "emu"] and meta.input_shape == [5]
    assert meta.split_sizes == {"train": 42, "val": 9, "test": 9} and arrays["y_train"].dtype == np.int64
    assert len(meta.preview["rows"]) == 10 and meta.preview["rows"][0][-1] == "cat"
    named, _ = prepare_npz(tmp_path, x_train=np.zeros((30, 2)), y_train=np.arange(30) % 2,
                           class_names=np.array(["off", "on"]))
    assert named.class_names == ["off", "on"]


def test_float_targets_are_regression_unless_told(tmp_path):
    meta, arrays = prepare_npz(tmp_path, x_train=rng.normal(size=(40, 3)), y_train=rng.normal(size=40))
    assert meta.task == "regression" and arrays["y_train"].dtype == np.float32
    meta, _ = prepare_npz(tmp_path, {"task": "classification"}, x_train=np.zeros((40, 3)),
                          y_train=(np.arange(40) % 2).astype(np.float64))
    assert meta.task == "classification" and meta.class_names == ["0", "1"]


def test_a_pickled_object_array_is_refused_with_a_clear_message(tmp_path):
    objects = np.empty(10, dtype=object)
    objects[:] = [{"evil": i} for i in range(10)]
    path = tmp_path / "pickled.npz"
    np.savez(path, x_train=objects, y_train=np.arange(10))
    with pytest.raises(UserError, match=r"x_train holds Python objects \(a pickled array\), which LayerLab "
                                          r"never loads\. Save plain numbers instead"):
        prepare_upload("npz", path, {}, tmp_path / "out")


def test_declared_shapes_are_checked_before_anything_is_allocated(tmp_path):
    huge = npy_member({"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
    path = write_zip(tmp_path / "huge.npz", {"x_train.npy": huge, "y_train.npy": npy_member(
        {"descr": "<i8", "fortran_order": False, "shape": (0,)})})
    tracemalloc.start()
    with pytest.raises(UserError, match="hold 1000000000000 values in all; at most 200000000"):
        prepare_upload("npz", path, {}, tmp_path / "out")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5 * 2**20
    liar = npy_member({"descr": "<f8", "fortran_order": False, "shape": (10**7,)}, payload=bytes(80))
    path = write_zip(tmp_path / "liar.npz", {"x_train.npy": liar, "y_train.npy": liar})
    with pytest.raises(UserError, match="more data than the file holds"):
        prepare_upload("npz", path, {}, tmp_path / "out")


@pytest.mark.parametrize("arrays,message", [
    ({"x": np.zeros((3, 2))}, "lacks x_train, y_train. It must hold x_train and y_train"),
    ({"x_train": np.zeros((30, 2)), "y_train": np.zeros(30), "x_test": np.zeros((3, 2))}, "only one of x_test"),
    ({"x_train": np.zeros((30, 2)), "y_train": np.zeros(29)}, "y_train holds 29 labels but x_train holds 30"),
    ({"x_train": np.zeros((30, 2)), "y_train": np.eye(2)[np.arange(30) % 2]}, "argmax"),
    ({"x_train": np.array(["a"] * 30), "y_train": np.zeros(30)}, "x_train has dtype <U1; expected booleans"),
    ({"x_train": np.zeros(30), "y_train": np.zeros(30)}, r"x_train has shape \(30,\)"),
    ({"x_train": np.full((30, 2), np.nan), "y_train": np.arange(30) % 2}, "NaN or infinite"),
    ({"x_train": np.zeros((30, 2)), "y_train": np.zeros(30, dtype=np.int64)}, "a single class"),
    ({"x_train": np.zeros((30, 2)), "y_train": np.arange(30) + 0.5, "x_test": np.zeros((3, 3)),
      "y_test": np.zeros(3)}, "x_test samples have shape"),
])
def test_malformed_arrays_are_refused(tmp_path, arrays, message):
    with pytest.raises(UserError, match=message):
        prepare_npz(tmp_path, **arrays)
    assert not (tmp_path / "out").exists()


def test_not_a_zip_and_over_the_limits(tmp_path):
    bogus = tmp_path / "bogus.npz"
    bogus.write_bytes(b"\x93NUMPY not really")
    with pytest.raises(UserError, match="not a readable zip archive"):
        prepare_upload("npz", bogus, {}, tmp_path / "out")
    path = write_npz(tmp_path / "data.npz", x_train=np.zeros((30, 2)), y_train=np.arange(30) % 2)
    with pytest.raises(UserError, match="hold 90 values in all; at most 50 are allowed"):
        prepare_upload("npz", path, {}, tmp_path / "out", UploadLimits(max_npz_elements=50))
    with zipfile.ZipFile(path) as archive:
        assert {i.filename for i in archive.infolist()} == {"x_train.npy", "y_train.npy"}
