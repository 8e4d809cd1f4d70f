"""The dataset catalog: entries, parameter validation in Keras' wording, limits, and purity."""

import json
import subprocess
import sys

import pytest

from app.core.catalog import coerce_param
from app.core.errors import TooLarge, UserError
from app.data.catalog import (
    BUILTIN_DATASETS,
    DATASETS,
    FASHION_MNIST_CLASS_NAMES,
    SPLIT_OPTIONS,
    UploadLimits,
    catalog_as_dict,
    validate_dataset_params,
    validate_split_options,
    validate_upload_options,
)

EXPECTED = {
    "digits": ("image", "classification", (8, 8, 1)), "digits28": ("image", "classification", (28, 28, 1)),
    "mnist": ("image", "classification", (28, 28, 1)), "fashion_mnist": ("image", "classification", (28, 28, 1)),
    "iris": ("table", "classification", (4,)), "wine": ("table", "classification", (13,)),
    "breast_cancer": ("table", "classification", (30,)), "diabetes": ("table", "regression", (10,)),
    "circle": ("points2d", "classification", (2,)), "xor": ("points2d", "classification", (2,)),
    "gaussian": ("points2d", "classification", (2,)), "spiral": ("points2d", "classification", (2,)),
    "plane": ("points2d", "regression", (2,)), "multi_gaussian": ("points2d", "regression", (2,)),
    "motif": ("sequence", "classification", (20,)),
}


def test_every_builtin_is_listed_with_its_kind_task_and_shape():
    assert {key: (s.kind, s.task, s.input_shape) for key, s in DATASETS.items()} == EXPECTED
    assert DATASETS["digits"].num_samples == 1797
    assert DATASETS["fashion_mnist"].class_names == FASHION_MNIST_CLASS_NAMES
    assert DATASETS["fashion_mnist"].class_names[9] == "Ankle boot"
    for spec in BUILTIN_DATASETS:
        assert spec.title and spec.description.endswith(".")
        assert (len(spec.class_names) >= 2) == (spec.task == "classification")


@pytest.mark.parametrize("spec", BUILTIN_DATASETS, ids=lambda s: s.key)
def test_every_parameter_has_help_and_a_valid_default(spec):
    for param in (*spec.params, *SPLIT_OPTIONS):
        assert param.help.endswith(".")
        assert coerce_param(param, param.default) == param.default
    assert validate_dataset_params(spec.key, {}) == spec.defaults()


def test_generated_sets_take_bounded_samples_noise_and_seed():
    assert validate_dataset_params("spiral", {"n_samples": "800", "noise": "0.3", "seed": 7}) == {
        "n_samples": 800, "noise": 0.3, "seed": 7}
    with pytest.raises(UserError) as info:
        validate_dataset_params("circle", {"n_samples": 10})
    assert info.value.field == "n_samples"
    assert str(info.value) == ("Invalid value received for `n_samples`. Expected an integer between 50 and 5000. "
                               "Received: n_samples=10")
    with pytest.raises(UserError, match="Expected a number from 0 up to 0.5. Received: noise=0.9"):
        validate_dataset_params("xor", {"noise": 0.9})


@pytest.mark.parametrize("key,params,field,message", [
    ("cifar", {}, "dataset", "Unknown dataset 'cifar'. Expected one of: digits, digits28"),
    ("iris", {"noise": 0.1}, "noise", "Dataset 'iris' has no parameter `noise`. Its parameters are: none."),
    ("circle", {"seed": -1}, "seed", "Received: seed=-1"),
    ("mnist", {"train_samples": 10**6}, "train_samples", "between 100 and 60000"),
])
def test_bad_requests_name_the_field_and_what_is_allowed(key, params, field, message):
    with pytest.raises(UserError, match=message) as info:
        validate_dataset_params(key, params)
    assert info.value.field == field
    assert type(info.value) is UserError  # a plain user error: 422


def test_split_options_default_and_refuse_leaving_too_little_for_training():
    assert validate_split_options(None) == {"validation_fraction": 0.15, "test_fraction": 0.15, "split_seed": 0}
    with pytest.raises(UserError, match="at least 20% for training") as info:
        validate_split_options({"validation_fraction": 0.5, "test_fraction": 0.5})
    assert info.value.field == "test_fraction"
    with pytest.raises(UserError, match="Received: validation_fraction=0.9"):
        validate_split_options({"validation_fraction": 0.9})


def test_upload_options_are_normalized_per_kind():
    options = validate_upload_options("images", {"image_size": "32", "color_mode": "rgb", "split_seed": "3"})
    assert options["image_size"] == [32, 32] and options["color_mode"] == "rgb" and options["split_seed"] == 3
    csv = validate_upload_options("csv", {"target": " price ", "task": "regression",
                                          "column_types": {"id": "ignore"}})
    assert csv["target"] == "price" and csv["task"] == "regression" and csv["column_types"] == {"id": "ignore"}
    assert validate_upload_options("csv", csv) == csv  # normalizing twice changes nothing
    with pytest.raises(UserError, match="Expected one of csv, npz, images"):
        validate_upload_options("xlsx", {})
    with pytest.raises(UserError, match="has no parameter `target`"):
        validate_upload_options("npz", {"target": "y"})
    with pytest.raises(UserError, match="between 4 and 256"):
        validate_upload_options("images", {"image_size": [1024, 1024]})
    with pytest.raises(UserError, match="numeric / categorical / ignore") as info:
        validate_upload_options("csv", {"column_types": {"age": "text"}})
    assert info.value.field == "column_types"


def test_upload_limits_have_the_documented_defaults_and_refuse_big_files():
    limits = UploadLimits()
    assert (limits.max_bytes, limits.max_csv_rows, limits.max_columns, limits.max_classes) == (
        50 * 1024 * 1024, 200_000, 500, 1000)
    assert (limits.max_zip_entries, limits.max_total_uncompressed, limits.max_compression_ratio) == (
        20_000, 500 * 1024 * 1024, 100)
    assert (limits.max_image_pixels, limits.max_npz_elements) == (4096 * 4096, 200_000_000)
    with pytest.raises(TooLarge, match="The file is 60.0 MB; an upload may be at most 50.0 MB."):
        limits.check_upload_size(60 * 1024 * 1024)


def test_catalog_is_json_ready():
    data = json.loads(json.dumps(catalog_as_dict()))
    assert [d["key"] for d in data["datasets"]] == list(DATASETS)
    assert data["upload_limits"]["max_bytes"] == 50 * 1024 * 1024


def test_the_web_process_can_import_the_catalog_without_numpy():
    code = ("import sys, app.data.catalog, app.core.errors; "
            "print(sorted(m for m in ('numpy', 'sklearn', 'PIL', 'tensorflow') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
