"""The REST API, through real HTTP handling, a real SQLite file and the real Keras worker."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.both_databases]  # slow: summaries need the Keras worker


def create(api, starter="convnet", name="Net"):
    response = api.post("/api/v1/models", json={"name": name, "starter": starter})
    assert response.status_code == 201, response.text
    return response.json()


def layer_id(model, name):
    return next(layer["id"] for layer in model["layers"] if layer["name"] == name)


def test_requests_without_a_workspace_are_told_how_to_get_one(server):
    response = server.get("/api/v1/models", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert "POST /api/v1/workspaces" in response.json()["detail"]
    fresh = server.__class__(server.app)
    assert fresh.get("/api/v1/models").status_code == 401


def test_convnet_summary_is_keras_own(api):
    model = create(api)
    summary = api.get(f"/api/v1/models/{model['id']}/summary", params={"text": "true"}).json()
    assert [tuple(r["output_shape"]) for r in summary["layers"][1:6]] == [
        (None, 26, 26, 32), (None, 13, 13, 32), (None, 11, 11, 64), (None, 5, 5, 64), (None, 3, 3, 64)]
    assert summary["total_params"] == 93_322
    assert summary["trainable_params"] == 93_322 and summary["non_trainable_params"] == 0
    assert summary["weights_bytes"] == 93_322 * 4
    assert "Total params: 93,322" in summary["keras_text"]


def test_model_lifecycle(api):
    model = create(api, "dense", "First")
    assert [m["name"] for m in api.get("/api/v1/models").json()] == ["First"]
    renamed = api.patch(f"/api/v1/models/{model['id']}", json={"name": "Renamed"}).json()
    assert renamed["name"] == "Renamed"
    copy = api.post(f"/api/v1/models/{model['id']}/duplicate", json={}).json()
    assert copy["name"] == "Renamed (copy)" and copy["layers"] == model["layers"]
    assert api.delete(f"/api/v1/models/{model['id']}").status_code == 204
    assert api.get(f"/api/v1/models/{model['id']}").status_code == 404
    assert [m["name"] for m in api.get("/api/v1/models").json()] == ["Renamed (copy)"]


def test_layer_edits_and_undo(api):
    model = create(api, "blank")
    base = f"/api/v1/models/{model['id']}"
    api.post(f"{base}/layers", json={"type": "Input", "params": {"shape": [8]}})
    api.post(f"{base}/layers", json={"type": "Dense", "params": {"units": 16}})
    out = api.post(f"{base}/layers", json={"type": "Dense", "params": {"units": 1, "activation": "sigmoid"},
                                           "name": "output"}).json()
    assert [layer["name"] for layer in out["layers"]] == ["input", "dense", "output"]
    assert out["validation"]["valid"] is True
    dropout = api.post(f"{base}/layers", json={"type": "Dropout", "after": layer_id(out, "dense")}).json()
    assert [layer["name"] for layer in dropout["layers"]] == ["input", "dense", "dropout", "output"]
    drop_id = layer_id(dropout, "dropout")
    moved = api.post(f"{base}/layers/{drop_id}/move", json={"direction": "up"}).json()
    assert [layer["name"] for layer in moved["layers"]] == ["input", "dropout", "dense", "output"]
    changed = api.patch(f"{base}/layers/{drop_id}", json={"params": {"rate": 0.2}}).json()
    assert next(x for x in changed["layers"] if x["id"] == drop_id)["params"]["rate"] == 0.2
    removed = api.delete(f"{base}/layers/{drop_id}").json()
    assert [layer["name"] for layer in removed["layers"]] == ["input", "dense", "output"]
    undone = api.post(f"{base}/undo").json()
    assert [layer["name"] for layer in undone["layers"]] == ["input", "dropout", "dense", "output"]
    assert api.get(f"{base}/summary").json()["total_params"] == 8 * 16 + 16 + 17


def test_an_edit_that_changes_nothing_stores_no_revision_and_spends_no_undo(api):
    model = create(api, "dense")
    base = f"/api/v1/models/{model['id']}"
    dense = layer_id(model, "dense")
    units = next(x for x in model["layers"] if x["id"] == dense)["params"]["units"]
    changed = api.patch(f"{base}/layers/{dense}", json={"params": {"units": units + 1}}).json()
    same = api.patch(f"{base}/layers/{dense}", json={"params": {"units": units + 1}})
    assert same.status_code == 200 and same.json()["revision"] == changed["revision"]
    undone = api.post(f"{base}/undo").json()  # undoes the real change, not the repeat
    assert next(x for x in undone["layers"] if x["id"] == dense)["params"]["units"] == units


def test_timestamps_are_given_in_utc_in_every_answer(api):
    created = create(api, "dense")
    listed = next(m for m in api.get("/api/v1/models").json() if m["id"] == created["id"])
    assert created["updated_at"] == listed["updated_at"]  # read back from the database as it was written
    assert listed["updated_at"].endswith(("Z", "+00:00"))


def test_branch_and_merge_through_the_api(api):
    model = create(api, "regression")
    base = f"/api/v1/models/{model['id']}"
    first_dense = layer_id(model, "dense")
    side = api.post(f"{base}/layers", json={"type": "Dense", "params": {"units": 32}, "inputs": ["n1"],
                                            "name": "side"}).json()
    merged = api.post(f"{base}/layers", json={"type": "Concatenate",
                                              "inputs": [first_dense, layer_id(side, "side")]}).json()
    concat = layer_id(merged, "concatenate")
    second = layer_id(merged, "dense_1")
    api.put(f"{base}/layers/{second}/inputs", json={"inputs": [concat]})
    summary = api.get(f"{base}/summary").json()
    assert next(r for r in summary["layers"] if r["id"] == concat)["output_shape"] == [None, 64]


@pytest.mark.parametrize("path_suffix,method,body,status,message,field", [
    ("/layers/n3", "patch", {"params": {"units": 0}}, 422, "Expected an integer between 1 and 1000000", "units"),
    ("/layers/n3", "patch", {"params": {"units": "many"}}, 422, "Received: units='many'", "units"),
    ("/layers/n3", "patch", {"params": {"units": 10**9}}, 422, "Expected an integer between 1", "units"),
    ("/layers/n3", "patch", {"params": {"units": 500_000}}, 422, "parameters; the limit is 20,000,000", None),
    ("/layers/n3", "patch", {"name": "<img src=x onerror=alert(1)>"}, 422, "Invalid value received for `name`", "name"),
    ("/layers/n3", "patch", {"name": 'say "hi"'}, 422, "Invalid value received for `name`", "name"),
    ("/layers", "post", {"type": "Dense3D"}, 422, "Unknown layer type 'Dense3D'", "type"),
    ("/layers", "post", {"type": "Dense", "params": {"units": 4}, "after": "n42"}, 404, "no layer with id 'n42'", None),
    ("/layers/n2/inputs", "put", {"inputs": ["n4"]}, 422, "loop", None),
    ("/layers/n9/move", "post", {"direction": "sideways"}, 422, "Invalid value for `direction`", None),
    ("/layers/n3", "patch", {"params": {"units": 4}, "colour": "red"}, 422, "colour", None),
    ("/undo", "post", None, 409, "nothing to undo", None),
])
def test_bad_input_gets_a_clear_4xx_and_changes_nothing(api, path_suffix, method, body, status, message, field):
    model = create(api, "dense")
    base = f"/api/v1/models/{model['id']}"
    response = getattr(api, method)(base + path_suffix, **({"json": body} if body is not None else {}))
    assert response.status_code == status, response.text
    error = response.json()
    assert message in error["detail"]
    if field:
        assert error["field"] == field and error["layer_id"] in (None, "n3")
    after = api.get(base).json()
    assert after["layers"] == model["layers"] and after["revision"] == model["revision"]


def test_malformed_json_is_a_422_not_a_500(api):
    model = create(api, "dense")
    response = api.post(f"/api/v1/models/{model['id']}/layers", content=b"{not json",
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("The request body is not valid JSON (at character 1: ")
    assert response.json()["field"] is None and response.json()["layer_id"] is None  # the one error body
    form = api.post(f"/api/v1/models/{model['id']}/layers", content=b"type=Dense",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 422 and form.json()["detail"] == (
        "The request body must be a JSON object, sent with Content-Type: application/json.")
    wrong = api.post(f"/api/v1/models/{model['id']}/layers", json={"type": "Dense", "colour": "red"})
    assert wrong.status_code == 422 and wrong.json()["field"] == "colour"
    assert "Extra inputs are not permitted" in wrong.json()["detail"]


def test_unknown_starter_and_bad_model_name(api):
    response = api.post("/api/v1/models", json={"starter": "resnet152"})
    assert response.status_code == 422 and "Expected one of dense, convnet" in response.json()["detail"]
    response = api.post("/api/v1/models", json={"name": "<b>bold</b>"})
    assert response.status_code == 422
    assert api.get("/api/v1/models").json() == []


def test_another_workspaces_model_is_invisible(api, server):
    model = create(api, "dense")
    token = server.post("/api/v1/workspaces").json()["token"]
    other = {"Authorization": f"Bearer {token}"}
    assert server.get(f"/api/v1/models/{model['id']}", headers=other).status_code == 404
    assert server.delete(f"/api/v1/models/{model['id']}", headers=other).status_code == 404
    assert server.patch(f"/api/v1/models/{model['id']}/layers/n3", json={"params": {"units": 1}},
                        headers=other).status_code == 404
    assert api.get(f"/api/v1/models/{model['id']}").json()["layers"] == model["layers"]


def test_summary_of_a_broken_model_points_at_the_layer(api):
    model = create(api, "dense")
    base = f"/api/v1/models/{model['id']}"
    added = api.post(f"{base}/layers", json={"type": "Conv2D", "after": "n5"})  # after the (None, 10) output
    assert added.status_code == 201  # stored, and explained at the layer
    response = api.get(f"{base}/summary")
    assert response.status_code == 422
    body = response.json()
    assert body["layer_id"] == "n6" and "Conv2D expects a 4-D input" in body["detail"]
    validation = api.get(f"{base}/validate").json()
    assert validation["valid"] is False
    assert {i["layer_id"] for i in validation["issues"]} >= {"n6"}


def test_catalog_describes_every_parameter(server):
    catalog = server.get("/api/v1/catalog").json()
    dense = next(t for t in catalog["layers"] if t["type"] == "Dense")
    units = next(p for p in dense["params"] if p["name"] == "units")
    assert units == {"name": "units", "kind": "int", "default": 64, "minimum": 1, "maximum": 1_000_000,
                     "help": units["help"], "allowed": "an integer between 1 and 1000000"}
    assert {a["name"] for a in catalog["activations"]} >= {"relu", "sigmoid", "tanh"}
    assert [s["key"] for s in server.get("/api/v1/starters").json()] == [
        "dense", "convnet", "regression", "residual", "sequence", "autoencoder", "blank"]


def test_openapi_is_served(server):
    docs = server.get("/docs")
    assert docs.status_code == 200
    assert "/static/vendor/swagger-ui-dist/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text.lower()
    assert server.get("/static/vendor/swagger-ui-dist/swagger-ui-bundle.js").status_code == 200
    assert "/api/v1/models/{model_id}/layers" in server.get("/openapi.json").json()["paths"]


SERVE_AND_REPORT_MODULES = """
import sys, tempfile
from tests.browser_like import BrowserLikeClient
from app.config import Settings
from app.main import create_app
with BrowserLikeClient(create_app(Settings(data_dir=tempfile.mkdtemp()))) as client:
    page = client.post("/models", data={"name": "Page", "starter": "convnet"})
    assert page.status_code == 200 and "93,322" in page.text, page.status_code
    token = client.post("/api/v1/workspaces").json()["token"]
    headers = {"Authorization": "Bearer " + token}
    model = client.post("/api/v1/models", json={"starter": "dense"}, headers=headers).json()
    assert client.get(f"/api/v1/models/{model['id']}/summary", headers=headers).status_code == 200
print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
"""


def test_the_web_process_never_imports_tensorflow():
    # A fresh interpreter: this test process imports Keras itself for the worker tests.
    result = subprocess.run([sys.executable, "-c", SERVE_AND_REPORT_MODULES], capture_output=True, text=True,
                            timeout=240, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_undo_history_keeps_the_configured_depth(api, server):
    depth = server.app.state.settings.undo_depth
    model = create(api, "dense")
    base = f"/api/v1/models/{model['id']}"
    for units in range(1, depth + 6):
        assert api.patch(f"{base}/layers/n3", json={"params": {"units": units}}).status_code == 200
    for _ in range(depth):
        assert api.post(f"{base}/undo").status_code == 200
    assert api.post(f"{base}/undo").status_code == 409
    units = next(layer for layer in api.get(base).json()["layers"] if layer["id"] == "n3")["params"]["units"]
    assert units == 5  # the oldest edits fell off the end of the history


def test_models_without_a_name_are_named_after_their_starter(api):
    names = [api.post("/api/v1/models", json={"starter": "convnet"}).json()["name"] for _ in range(3)]
    assert names == ["Convnet", "Convnet 2", "Convnet 3"]
    copy = api.post(f"/api/v1/models/{create(api, 'dense', 'Mine')['id']}/duplicate", json={})
    assert copy.status_code == 201 and copy.json()["name"] == "Mine (copy)"


def test_every_path_that_creates_a_model_or_dataset_checks_its_limit(tmp_path):
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.main import create_app

    settings = Settings(data_dir=tmp_path, max_models_per_workspace=3, max_datasets_per_workspace=2)
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = "Bearer " + client.post("/api/v1/workspaces").json()["token"]
        first = client.post("/api/v1/models", json={"starter": "blank"}).json()
        for _ in range(2):
            assert client.post(f"/api/v1/models/{first['id']}/duplicate", json={}).status_code == 201
        for refused in (client.post(f"/api/v1/models/{first['id']}/duplicate", json={}),
                        client.post("/api/v1/models", json={"starter": "blank"})):
            assert refused.status_code == 409 and "already holds 3 models" in refused.json()["detail"]
        assert len(client.get("/api/v1/models").json()) == 3

        for key in ("circle", "xor"):
            assert client.post("/api/v1/datasets", json={"key": key, "params": {"n_samples": 100}}).status_code == 201
        again = client.post("/api/v1/datasets", json={"key": "circle", "params": {"n_samples": 100}})
        assert again.status_code == 201  # the same built-in again is the same dataset, not a new one
        refused = client.post("/api/v1/datasets", json={"key": "spiral", "params": {"n_samples": 100}})
        assert refused.status_code == 409 and "already holds 2 datasets" in refused.json()["detail"]
        upload = client.post("/api/v1/datasets/upload", data={"kind": "csv"},
                             files={"file": ("t.csv", b"a,b\n" + b"1,2\n" * 30, "text/csv")})
        assert upload.status_code == 409
        assert len(client.get("/api/v1/datasets").json()) == 2
