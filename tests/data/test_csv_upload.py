"""CSV uploads: round trip, column treatments, missing values, task inference, and refusals."""

import numpy as np
import pytest

from app.core.errors import TooLarge, UserError
from app.data.catalog import UploadLimits
from app.data.csv_upload import read_csv_table
from app.data.prepare import prepare_upload
from app.data.prepared import read_arrays, read_meta
from tests.data.files import write_csv

COLORS = ("red", "green", "blue")


def people_rows(n: int = 60):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        age = None if i % 10 == 3 else int(rng.integers(18, 80))
        color = None if i % 15 == 4 else COLORS[i % 3]
        rows.append([f"id{i}", age, color, round(float(rng.normal(50, 10)), 2), "yes" if i % 2 else "no"])
    return rows


HEADER = ["name", "age", "color", "score", "bought"]


def prepare_csv(tmp_path, rows=None, header=HEADER, **options):
    path = write_csv(tmp_path / "people.csv", header, people_rows() if rows is None else rows)
    prepare_upload("csv", path, options, tmp_path / "out")
    return read_meta(tmp_path / "out"), read_arrays(tmp_path / "out")


def test_a_csv_round_trips_with_standardised_numbers_and_one_hot_text(tmp_path):
    meta, arrays = prepare_csv(tmp_path)
    assert meta.kind == "table" and meta.task == "classification" and meta.target_name == "bought"
    assert meta.class_names == ["no", "yes"]
    assert meta.feature_names == ["age", "color=blue", "color=green", "color=red", "score"]
    assert meta.input_shape == [5] and sum(meta.split_sizes.values()) == 60
    encoding = {row["name"]: row for row in meta.preview["encoding"]}
    assert encoding["name"]["treatment"] == "ignore" and "identifier" in encoding["name"]["reason"]
    assert encoding["age"]["treatment"] == "numeric" and encoding["color"]["treatment"] == "categorical"
    x_train = arrays["x_train"]
    assert abs(x_train[:, 0].mean()) < 1e-5  # mean and deviation come from the training rows
    np.testing.assert_allclose(x_train[:, 4].std(), 1.0, rtol=1e-4)
    assert set(np.unique(x_train[:, 1:4])) == {0.0, 1.0} and np.all(x_train[:, 1:4].sum(axis=1) == 1)
    assert meta.preview["header"] == HEADER and len(meta.preview["rows"]) == 10
    assert meta.preview["rows"][0][0] == "id0"


def test_missing_values_are_counted_per_column_and_filled(tmp_path):
    meta, arrays = prepare_csv(tmp_path)
    stats = {row["name"]: row for row in meta.preview["columns"]}
    assert stats["age"]["missing"] == 6 and stats["color"]["missing"] == 4 and stats["score"]["missing"] == 0
    assert stats["color"]["distinct"] == 3 and stats["age"]["min"] >= 18
    encoding = {row["name"]: row for row in meta.preview["encoding"]}
    assert encoding["color"]["filled_with"] in COLORS
    # A missing age becomes the training mean, which standardises to exactly 0.
    features = np.concatenate([arrays[f"x_{s}"] for s in ("train", "val", "test")])
    assert np.sum(features[:, 0] == 0.0) >= 6


def test_task_is_inferred_from_the_target_and_can_be_overridden(tmp_path):
    meta, arrays = prepare_csv(tmp_path, target="score")
    assert meta.task == "regression" and arrays["y_train"].dtype == np.float32 and meta.class_names == []
    assert "target_histogram" in meta.preview
    rows = [[i, i % 3] for i in range(30)]
    meta, arrays = prepare_csv(tmp_path, rows, ["x", "level"])
    assert meta.task == "classification" and meta.class_names == ["0", "1", "2"]
    meta, _ = prepare_csv(tmp_path, rows, ["x", "level"], task="regression")
    assert meta.task == "regression"


def test_columns_can_be_forced_numeric_categorical_or_ignored(tmp_path):
    meta, _ = prepare_csv(tmp_path, column_types={"age": "categorical", "color": "ignore", "score": "ignore"})
    assert meta.feature_names[0].startswith("age=") and "score" not in meta.feature_names
    reasons = {row["name"]: row["reason"] for row in meta.preview["encoding"]}
    assert reasons["color"] == "chosen"


@pytest.mark.parametrize("options,message", [
    ({"target": "price"}, "There is no column 'price'. The columns are: 'name', 'age'"),
    ({"column_types": {"color": "numeric"}}, "holds text such as 'blue', 'green', 'red', so it cannot be numeric"),
    ({"column_types": {"height": "ignore"}}, "names a column 'height' that the file does not have"),
    ({"column_types": {"bought": "ignore"}}, "'bought' is the target column"),
    ({"target": "color", "task": "regression"}, "regression needs numbers"),
    ({"column_types": {"age": "ignore", "color": "ignore", "score": "ignore"}}, "No feature column is left"),
])
def test_bad_choices_are_refused_with_what_is_allowed(tmp_path, options, message):
    with pytest.raises(UserError, match=message):
        prepare_csv(tmp_path, **options)


def test_a_file_without_a_header_row_is_refused(tmp_path):
    path = write_csv(tmp_path / "data.csv", None, [[5.1, 3.5, 1.4, 0.2, 0]] * 20)
    with pytest.raises(UserError, match=r"The first row \(5.1, 3.5, 1.4, 0.2, \.\.\.\) looks like data, not "
                                          r"column names: every field is a number\. .*needs a header row"):
        prepare_upload("csv", path, {}, tmp_path / "out")
    iris_like = write_csv(tmp_path / "iris.csv", None, [[5.1, 3.5, "setosa"], [6.2, 2.9, "virginica"]] * 10)
    with pytest.raises(UserError, match="looks like data, not column names"):
        prepare_upload("csv", iris_like, {}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_text_target_with_ten_thousand_classes_is_refused(tmp_path):
    rows = [[i % 7, f"class_{i}"] for i in range(10_000)]
    path = write_csv(tmp_path / "many.csv", ["x", "label"], rows)
    with pytest.raises(UserError, match="The target column 'label' has more than 1000 different values; a "
                                          "classification target may have at most 1000 classes") as info:
        prepare_upload("csv", path, {}, tmp_path / "out")
    assert info.value.field == "target"


@pytest.mark.parametrize("content,message", [
    (b"", "The file is empty"),
    (b"a,b\n1,2\n3\n", "Line 3 has 1 fields but the header has 2"),
    (b"a,a\n" + b"1,2\n" * 20, "'a' appears more than once"),
    (b"only\n" + b"1\n" * 20, "The file has one column"),
    (b"a,b\n\xff\xfe,1\n", "not UTF-8 text"),
    (b"a,b\x00\n1,2\n", "binary data"),
    (b"a,b\n1,2\n", "holds 1 data rows; a dataset needs at least 10"),
])
def test_malformed_files_are_refused(content, message):
    with pytest.raises(UserError, match=message):
        read_csv_table(content)


def test_row_and_column_limits_apply():
    wide = ",".join(f"c{i}" for i in range(600)).encode() + b"\n"
    with pytest.raises(UserError, match="600 columns; at most 500"):
        read_csv_table(wide)
    tall = b"a,b\n" + b"1,2\n" * 101
    with pytest.raises(UserError, match="more than 100 data rows"):
        read_csv_table(tall, UploadLimits(max_csv_rows=100))
    with pytest.raises(TooLarge, match="an upload may be at most"):
        read_csv_table(tall, UploadLimits(max_bytes=100))


def test_semicolons_and_tabs_are_understood_and_bytes_are_accepted():
    for separator in (";", "\t"):
        text = f"a{separator}b\n" + "".join(f"{i}{separator}{i % 2}\n" for i in range(12))
        table = read_csv_table(text.encode())
        assert table.names == ["a", "b"] and table.n_rows == 12
