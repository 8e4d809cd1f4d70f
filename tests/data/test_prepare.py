"""Preparation as a whole: seeded stratified splits, the on-disk contract, and uploads over the limit."""

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from app.core.errors import TooLarge, UserError
from app.data.prepare import prepare_builtin, prepare_upload
from app.data.prepared import ARRAYS, META, read_arrays, read_meta
from app.data.splits import split_indices
from tests.data.files import files_under, write_csv


def test_splits_are_disjoint_complete_and_seeded():
    labels = np.repeat(np.arange(3), [50, 30, 20])
    first = split_indices(100, labels, 0.15, 0.15, seed=4)
    assert sorted(np.concatenate(list(first.values())).tolist()) == list(range(100))
    assert {k: len(v) for k, v in first.items()} == {"train": 70, "val": 15, "test": 15}
    again = split_indices(100, labels, 0.15, 0.15, seed=4)
    other = split_indices(100, labels, 0.15, 0.15, seed=5)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["train"], other["train"])


def test_splits_keep_class_proportions_even_for_tiny_classes():
    labels = np.repeat(np.arange(4), [600, 300, 97, 3])
    parts = split_indices(1000, labels, 0.2, 0.1, seed=0)
    assert np.bincount(labels[parts["test"]], minlength=4).tolist()[:2] == [60, 30]
    assert np.bincount(labels[parts["val"]], minlength=4).tolist()[:2] == [120, 60]
    assert len(parts["test"]) == 100 and len(parts["val"]) == 200
    assert np.bincount(labels[parts["train"]], minlength=4)[3] >= 1  # a 3-sample class still trains


def test_a_zero_test_fraction_leaves_the_test_split_empty():
    parts = split_indices(50, None, 0.2, 0.0, seed=0)
    assert len(parts["test"]) == 0 and len(parts["val"]) == 10 and len(parts["train"]) == 40


def test_the_split_seed_and_fractions_reach_the_prepared_folder(tmp_path):
    options = {"validation_fraction": 0.25, "test_fraction": 0.1, "split_seed": 9}
    meta = prepare_builtin("gaussian", {"n_samples": 400}, options, tmp_path / "a", tmp_path / "cache")
    assert meta.split_sizes == {"train": 260, "val": 100, "test": 40}
    prepare_builtin("gaussian", {"n_samples": 400}, options, tmp_path / "b", tmp_path / "cache")
    first, second = read_arrays(tmp_path / "a"), read_arrays(tmp_path / "b")
    assert all(np.array_equal(first[k], second[k]) for k in first)
    assert meta.preview["class_counts"]["test"] == [20, 20]


@pytest.mark.slow  # imports scikit-learn
def test_the_prepared_folder_follows_the_contract(tmp_path):
    meta = prepare_builtin("iris", {}, {}, tmp_path / "iris", tmp_path / "cache")
    assert files_under(tmp_path / "iris") == {Path(ARRAYS), Path(META)}
    assert read_meta(tmp_path / "iris") == meta
    assert set(read_arrays(tmp_path / "iris")) == {f"{p}_{s}" for p in "xy" for s in ("train", "val", "test")}
    assert meta.preview["splits"]["train"] == {"size": 106, "x_shape": [106, 4], "y_shape": [106]}
    train_counts = meta.preview["class_counts"]["train"]
    assert sum(train_counts) == 106 and max(train_counts) - min(train_counts) <= 1


@pytest.mark.slow  # imports scikit-learn
def test_regression_tables_preview_a_target_histogram(tmp_path):
    meta = prepare_builtin("diabetes", {}, {}, tmp_path / "out", tmp_path / "cache")
    histogram = meta.preview["target_histogram"]
    assert len(histogram["bins"]) == 21 and sum(histogram["counts"]) == 442
    assert meta.preview["header"][:3] == ["age", "sex", "bmi"] and meta.preview["rows"][0][0] == "59"


def test_bad_parameters_are_refused_before_any_work(tmp_path):
    with pytest.raises(UserError, match="Received: n_samples=100000") as info:
        prepare_builtin("circle", {"n_samples": 100_000}, {}, tmp_path / "out", tmp_path / "cache")
    assert info.value.field == "n_samples"
    with pytest.raises(UserError, match="Expected one of csv, npz, images"):
        prepare_upload("exe", tmp_path / "x", {}, tmp_path / "out")
    assert files_under(tmp_path) == set()


def test_an_upload_over_the_size_limit_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "big.csv"
    with open(path, "wb") as handle:
        handle.truncate(51 * 1024 * 1024)  # sparse: no disk space and no time to write it
    for kind in ("csv", "npz", "images"):
        tracemalloc.start()
        with pytest.raises(TooLarge, match="The file is 51.0 MB; an upload may be at most 50.0 MB."):
            prepare_upload(kind, path, {}, tmp_path / "out")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 2**20
    assert files_under(tmp_path) == {Path("big.csv")}


def test_rows_without_a_target_are_dropped_and_counted(tmp_path):
    rows = [[i, None if i % 5 == 0 else i % 2] for i in range(40)]
    path = write_csv(tmp_path / "gaps.csv", ["x", "y"], rows)
    meta = prepare_upload("csv", path, {"name": "Gaps"}, tmp_path / "out")
    assert meta.name == "Gaps" and meta.preview["dropped_rows"] == 8 and sum(meta.split_sizes.values()) == 32
    assert meta.source == {"type": "upload", "format": "csv", "file": "gaps.csv", "options": meta.source["options"]}
