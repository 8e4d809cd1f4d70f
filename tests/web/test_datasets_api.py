"""The datasets API: built-ins, generated sets, uploads and their limits, attaching data to a model.

Datasets are prepared for real by the data worker (scikit-learn data, no download).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.web.live_server import add_builtin, app_without_warm_up, attach, create_model, ok, workspace_client

pytestmark = pytest.mark.slow  # the data worker prepares every dataset


@pytest.fixture
def api(server: TestClient) -> TestClient:
    return workspace_client(server)


def csv_bytes(rows: int = 60) -> bytes:
    lines = ["width,height,colour,label"]
    for i in range(rows):
        lines.append(f"{i % 13 / 2},{(i * 7) % 11},{'red' if i % 3 else 'blue'},{'big' if i % 2 else 'small'}")
    return ("\n".join(lines) + "\n").encode()


def upload(client: TestClient, content: bytes, kind: str, options: dict, filename: str):
    return client.post("/api/v1/datasets/upload", files={"file": (filename, content, "application/octet-stream")},
                       data={"kind": kind, "options": json.dumps(options)})


def test_builtin_catalog_lists_every_dataset_with_its_parameters(api):
    catalog = ok(api.get("/api/v1/datasets/builtin"))
    by_key = {d["key"]: d for d in catalog["datasets"]}
    assert {"digits28", "iris", "circle", "xor", "plane"} <= set(by_key)
    assert by_key["digits28"]["input_shape"] == [28, 28, 1] and by_key["digits28"]["num_samples"] == 1797
    assert by_key["iris"]["class_names"] == ["setosa", "versicolor", "virginica"]
    n_samples = next(p for p in by_key["circle"]["params"] if p["name"] == "n_samples")
    assert (n_samples["minimum"], n_samples["maximum"]) == (50, 5000)
    assert {p["name"] for p in catalog["split_options"]} >= {"validation_fraction", "test_fraction"}
    assert set(catalog["upload_kinds"]) >= {"csv", "npz", "images"}


def test_digits28_is_prepared_with_its_shape_classes_and_splits(api):
    dataset = add_builtin(api, "digits28")
    assert dataset["input_shape"] == [28, 28, 1]
    assert dataset["class_names"] == [str(d) for d in range(10)]
    assert dataset["kind"] == "image" and dataset["task"] == "classification" and dataset["state"] == "ready"
    sizes = dataset["split_sizes"]
    assert set(sizes) == {"train", "val", "test"} and sum(sizes.values()) == 1797
    assert all(sizes[s] > 0 for s in sizes)
    counts = dataset["preview"]["class_counts"]
    assert sum(map(sum, counts.values())) == 1797
    image = api.get(dataset["samples_url"])
    assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert [d["id"] for d in ok(api.get("/api/v1/datasets"))] == [dataset["id"]]
    assert ok(api.get(f"/api/v1/datasets/{dataset['id']}"))["split_sizes"] == sizes


def test_generated_set_takes_its_parameters(api):
    dataset = add_builtin(api, "xor", n_samples=200, noise=0.05, seed=3)
    assert dataset["kind"] == "points2d" and dataset["input_shape"] == [2]
    assert dataset["class_names"] == ["opposite signs", "same signs"]
    assert sum(dataset["split_sizes"].values()) == 200
    points = dataset["preview"]["points"]
    assert points and all(len(p) == 3 and p[2] in (0, 1) for p in points)
    again = add_builtin(api, "xor", n_samples=200, noise=0.05, seed=3)
    assert again["id"] == dataset["id"] and again["preview"]["points"] == points  # the same set, not a copy


@pytest.mark.parametrize("body,field,message", [
    ({"key": "imagenet"}, "key", "Expected one of digits, digits28"),
    ({"key": "circle", "params": {"n_samples": 5}}, "n_samples", "Expected an integer between 50 and 5000"),
    ({"key": "circle", "params": {"noise": "loud"}}, "noise", "noise"),
    ({"key": "circle", "params": {"radius": 2}}, "radius", "has no parameter `radius`"),
    ({"key": "circle", "options": {"validation_fraction": 0.9}}, "validation_fraction", "0.05 up to 0.5"),
    # A download-only set's parameters are checked before whether it is cached or can be downloaded.
    ({"key": "mnist", "params": {"train_samples": 5}}, "train_samples", "Expected an integer between 100 and 60000"),
])
def test_bad_key_or_parameters_are_refused_and_nothing_is_stored(api, body, field, message):
    before = ok(api.get("/api/v1/datasets"))
    response = api.post("/api/v1/datasets", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert message in error["detail"] and error["field"] == field
    assert ok(api.get("/api/v1/datasets")) == before


def test_unknown_request_field_is_a_422(api):
    response = api.post("/api/v1/datasets", json={"key": "circle", "colour": "red"})
    assert response.status_code == 422 and "colour" in response.json()["detail"]
    assert ok(api.get("/api/v1/datasets")) == []


def test_csv_upload_is_previewed_with_rows_and_statistics(api):
    response = upload(api, csv_bytes(), "csv", {"target": "label"}, "shapes.csv")
    dataset = ok(response, 201)
    assert dataset["name"] == "shapes" and dataset["source"] == "csv"
    assert dataset["kind"] == "table" and dataset["task"] == "classification"
    assert dataset["target_name"] == "label" and dataset["class_names"] == ["big", "small"]
    assert sum(dataset["split_sizes"].values()) == 60
    preview = dataset["preview"]
    assert preview["header"] == ["width", "height", "colour", "label"]
    assert preview["rows"][0] == ["0.0", "0", "blue", "small"] and len(preview["rows"]) >= 5
    columns = {c["name"]: c for c in preview["columns"]}
    assert columns["height"]["role"] == "numeric" and columns["height"]["missing"] == 0
    assert columns["height"]["min"] == 0.0 and columns["height"]["max"] == 10.0
    assert columns["label"]["role"] == "target"
    # `colour` has two values, one-hot encoded into two inputs beside width and height.
    assert dataset["input_shape"] == [len(dataset["feature_names"])] and len(dataset["feature_names"]) >= 3
    assert [d["id"] for d in ok(api.get("/api/v1/datasets"))] == [dataset["id"]]


def test_csv_upload_with_an_unknown_target_is_refused(api):
    response = upload(api, csv_bytes(), "csv", {"target": "weight"}, "shapes.csv")
    assert response.status_code == 422, response.text
    assert "weight" in response.json()["detail"]
    assert ok(api.get("/api/v1/datasets")) == []


def test_zip_with_parent_directory_entries_is_refused(api):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cats/1.png", b"not really a png")
        archive.writestr("../../etc/evil.png", b"payload")
    response = upload(api, buffer.getvalue(), "images", {}, "pets.zip")
    assert response.status_code == 422, response.text
    error = response.json()
    assert "../../etc/evil.png" in error["detail"] and "outside the archive" in error["detail"]
    assert error["field"] == "file"
    assert ok(api.get("/api/v1/datasets")) == []


# --- the upload size limit, on an app of its own with a small limit --------------------------------------

LIMIT = 64 * 1024


@pytest.fixture
def small_limit(tmp_path: Path) -> TestClient:
    """An app that accepts uploads up to 64 KiB. The limit is enforced before any worker runs,
    so no lifespan (and no worker) is needed."""
    app = create_app(Settings(data_dir=tmp_path, max_upload_bytes=LIMIT))
    client = TestClient(app)
    token = ok(client.post("/api/v1/workspaces"), 201)["token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def multipart_body(payload: bytes) -> tuple[bytes, str]:
    boundary = "layerlab-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\ncsv\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n"
            "Content-Type: text/csv\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def assert_refused_as_too_large(response, client: TestClient, tmp_path: Path) -> None:
    assert response.status_code == 413, response.text
    error = response.json()
    assert "larger than" in error["detail"] and "LAYERLAB_MAX_UPLOAD_BYTES" in error["detail"]
    assert error["field"] == "file"
    assert ok(client.get("/api/v1/datasets")) == []
    uploads = list((tmp_path / "workspaces").rglob("*")) if (tmp_path / "workspaces").exists() else []
    assert [p for p in uploads if p.is_file()] == []  # no partial upload left behind


def test_upload_over_the_limit_with_content_length_is_a_413(small_limit, tmp_path):
    big = csv_bytes(6000)
    assert len(big) > LIMIT
    response = upload(small_limit, big, "csv", {"target": "label"}, "big.csv")
    assert int(response.request.headers["content-length"]) > LIMIT
    assert_refused_as_too_large(response, small_limit, tmp_path)


def test_chunked_upload_over_the_limit_without_content_length_is_a_413(small_limit, tmp_path):
    body, content_type = multipart_body(csv_bytes(6000))

    def chunks():
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    response = small_limit.post("/api/v1/datasets/upload", content=chunks(), headers={"Content-Type": content_type})
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_refused_as_too_large(response, small_limit, tmp_path)


def test_a_small_limit_is_stated_in_a_unit_that_shows_it(tmp_path):
    client = TestClient(create_app(Settings(data_dir=tmp_path, max_upload_bytes=1000)))
    response = client.post("/api/v1/datasets/upload", content=b"x" * 2000,
                           headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert response.status_code == 413
    assert "0.0 MB" not in response.json()["detail"]


def test_upload_under_the_limit_is_accepted_by_the_small_limit_app(tmp_path):
    with TestClient(app_without_warm_up(Settings(data_dir=tmp_path, max_upload_bytes=LIMIT))) as client:
        token = ok(client.post("/api/v1/workspaces"), 201)["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        dataset = ok(upload(client, csv_bytes(60), "csv", {"target": "label"}, "small.csv"), 201)
        assert sum(dataset["split_sizes"].values()) == 60


# --- attaching a dataset to a model -----------------------------------------------------------------------

def test_attaching_sets_the_input_shape_and_proposes_the_output(api):
    circle = add_builtin(api, "circle", n_samples=200)
    model = create_model(api, "dense")
    attached = attach(api, model["id"], circle["id"])
    assert attached["dataset"]["id"] == circle["id"]
    assert attached["proposed_output"] == {"units": 1, "activation": "sigmoid", "loss": "binary_crossentropy"}
    assert attached["suggested_config"]["metrics"] == ["accuracy"]
    layers = ok(api.get(f"/api/v1/models/{model['id']}"))["layers"]
    assert layers[0]["type"] == "Input" and layers[0]["params"]["shape"] == [2]
    assert layers[-1]["params"]["units"] == 10  # the output is proposed, not changed, until fit-output

    digits = add_builtin(api, "digits28")
    again = attach(api, model["id"], digits["id"])
    assert again["proposed_output"] == {"units": 10, "activation": "softmax",
                                        "loss": "sparse_categorical_crossentropy"}
    assert ok(api.get(f"/api/v1/models/{model['id']}"))["layers"][0]["params"]["shape"] == [28, 28, 1]


def test_fit_output_gives_the_output_layer_the_units_the_data_needs(api):
    iris = add_builtin(api, "iris")
    model = create_model(api, "regression")
    attached = attach(api, model["id"], iris["id"])
    assert attached["proposed_output"] == {"units": 3, "activation": "softmax",
                                           "loss": "sparse_categorical_crossentropy"}
    fitted = ok(api.post(f"/api/v1/models/{model['id']}/dataset/fit-output"))
    output = fitted["layers"][-1]
    assert output["type"] == "Dense" and output["params"]["units"] == 3 and output["params"]["activation"] == "softmax"
    assert fitted["layers"][0]["params"]["shape"] == [4]
    stored = ok(api.get(f"/api/v1/models/{model['id']}"))
    assert stored["layers"] == fitted["layers"] and stored["validation"]["valid"] is True


def test_fit_output_without_a_dataset_is_a_422(api):
    model = create_model(api, "dense")
    response = api.post(f"/api/v1/models/{model['id']}/dataset/fit-output")
    assert response.status_code == 422 and "Attach a dataset" in response.json()["detail"]


def test_another_workspaces_dataset_is_invisible(api, server):
    theirs = workspace_client(server)
    dataset = add_builtin(theirs, "circle", n_samples=100)
    model = create_model(api, "dense")
    for response in (api.get(f"/api/v1/datasets/{dataset['id']}"),
                     api.put(f"/api/v1/models/{model['id']}/dataset", json={"dataset_id": dataset["id"]}),
                     api.delete(f"/api/v1/datasets/{dataset['id']}")):
        assert response.status_code == 404, response.text
        assert f"no dataset {dataset['id']}" in response.json()["detail"]
    assert ok(api.get(f"/api/v1/models/{model['id']}"))["layers"][0]["params"]["shape"] == [28, 28, 1]
    assert ok(api.get("/api/v1/datasets")) == []
    assert [d["id"] for d in ok(theirs.get("/api/v1/datasets"))] == [dataset["id"]]
