"""Importing a model over the API and from the home page: a clean file becomes an editable model with its
weights; every refusal is a clear 4xx that stores nothing (no model, no file)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.core.graph import Graph, Node
from app.core.starters import STARTERS
from app.core.validation import validate
from app.services import importing
from app.store import repository
from tests.core.test_keras_config import dense, lambda_layer, layer, small_model
from tests.web.live_server import ok
from tests.worker.test_importing import (
    DENSE_MODEL,
    branching_graph,
    dense_weights,
    h5_bytes,
    huge_dataset,
    keras_archive,
    predict,
    randomize,
)

IMPORT = "/api/v1/models/import"


class Workspace:
    def __init__(self, server: TestClient) -> None:
        created = server.post("/api/v1/workspaces").json()
        self.id = created["workspace_id"]
        self.client = TestClient(server.app, headers={"Authorization": f"Bearer {created['token']}"})
        self.client.portal = server.portal
        self.folder: Path = server.app.state.settings.data_dir / "workspaces" / self.id

    def files(self) -> list[str]:
        return sorted(str(p.relative_to(self.folder)) for p in self.folder.rglob("*") if p.is_file()) \
            if self.folder.exists() else []

    def models(self) -> list[dict[str, Any]]:
        return ok(self.client.get("/api/v1/models"))


@pytest.fixture
def ws(server: TestClient) -> Workspace:
    return Workspace(server)


def post(client: TestClient, data: bytes, filename: str = "model.keras", name: str | None = None,
         path: str = IMPORT) -> Any:
    return client.post(path, files={"file": (filename, data, "application/octet-stream")},
                       data={"name": name} if name else {})


def test_a_json_config_becomes_a_model_named_after_the_file(ws):
    body = ok(post(ws.client, json.dumps(DENSE_MODEL).encode(), "tiny net.json"), 201)
    assert body["name"] == "tiny net" and [layer["type"] for layer in body["layers"]] == ["Input", "Dense"]
    assert body["validation"]["valid"] and body["weights"] is None
    assert body["imported"][0] == "2 layers: Input, Dense"
    assert any("trained weights" in note for note in body["not_imported"])
    assert [m["id"] for m in ws.models()] == [body["id"]]
    assert ws.files() == []  # the upload is gone, and there were no weights to keep


@pytest.mark.slow  # the data worker starts TensorFlow to rebuild the model
def test_weights_are_kept_with_the_model_and_named_in_the_answer(ws, app):
    body = ok(post(ws.client, keras_archive(DENSE_MODEL, h5_bytes(dense_weights)), name="Kept"), 201)
    assert body["name"] == "Kept"
    assert body["weights"] == {"layers": ["d"], "values": 27, "used_in_training": True}
    assert not any("fresh weights" in note for note in body["not_imported"])
    stored = ws.files()
    assert len(stored) == 2 and all(re.fullmatch(rf"imports/m{body['id']}-\w+\.(weights\.h5|json)", f) for f in stored)
    with app.state.sessions() as session:
        record = repository.get_model(session, ws.id, body["id"])
        kept = importing.imported_weights(app.state.settings, record)
    assert kept is not None and kept.layers == ["d"] and kept.path.is_file()


def lambda_file(tmp_path: Path) -> bytes:
    return keras_archive(small_model(lambda_layer(tmp_path / "pwned.txt", name="writer")))


BAD_FILES = {
    "lambda": (lambda tmp: lambda_file(tmp), 422, "Layer 'writer' (Lambda)"),
    "module outside keras": (lambda tmp: keras_archive(small_model({**dense("d", "-"), "module": "subprocess"})),
                             422, "module outside Keras"),
    "TFSMLayer": (lambda tmp: keras_archive(small_model(layer("TFSMLayer", "sm", {"filepath": "/srv"}))), 422,
                  "Layer 'sm' (TFSMLayer)"),
    "custom class": (lambda tmp: keras_archive(small_model({**dense("mine", "-"), "class_name": "MyLayer",
                                                            "registered_name": "my_pkg>MyLayer"})),
                     422, "registered_name='my_pkg>MyLayer'"),
    "huge dataset": (lambda tmp: keras_archive(DENSE_MODEL, h5_bytes(huge_dataset)), 413, "declares more than"),
    "extra member": (lambda tmp: keras_archive(DENSE_MODEL, extra={"payload.pkl": b"\x80\x04"}), 422,
                     "holds 'payload.pkl'"),
    "missing config": (lambda tmp: keras_archive(None, h5_bytes(dense_weights)), 422, "has no config.json"),
    "truncated": (lambda tmp: keras_archive(DENSE_MODEL, h5_bytes(dense_weights))[:-400], 422,
                  "not a complete .keras archive"),
    "not a zip": (lambda tmp: b"GIF89a....", 422, "neither a .keras file nor a Keras JSON config"),
    "legacy h5": (lambda tmp: h5_bytes(dense_weights), 422, "legacy whole-model format"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_is_refused_clearly_and_nothing_is_stored(ws, tmp_path, case):
    make, status, words = BAD_FILES[case]
    response = post(ws.client, make(tmp_path))
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]
    assert response.json()["field"] == "file"
    assert ws.models() == [] and ws.files() == []
    assert not (tmp_path / "pwned.txt").exists()


def test_requests_without_a_file_or_with_a_bad_name_are_refused_before_any_work(ws):
    assert "multipart field named `file`" in ok(ws.client.post(IMPORT, data={"name": "x"}), 422)["detail"]
    response = post(ws.client, json.dumps(DENSE_MODEL).encode(), name="../../etc")
    assert response.status_code == 422 and response.json()["field"] == "name"
    assert ws.models() == [] and ws.files() == []


def test_model_files_are_uploads_not_bodies(ws, app):
    """The import takes files up to the upload limit, not just the 1 MB of an ordinary request body."""
    padded = json.dumps(DENSE_MODEL).encode() + b" " * (app.state.settings.max_body_bytes + 1)
    assert ok(post(ws.client, padded), 201)["layers"][1]["type"] == "Dense"


@pytest.mark.slow
@pytest.mark.parametrize("key", [k for k, s in STARTERS.items() if s.layers] + ["branching"])
def test_a_saved_model_comes_back_with_the_same_summary_and_predictions(ws, tmp_path, key):
    from app.worker.build import build_model
    from app.worker.importing import apply_stored_weights

    graph = branching_graph() if key == "branching" else STARTERS[key].graph()
    model = build_model(graph)
    randomize(model)
    model.save(tmp_path / f"{key}.keras")
    body = ok(post(ws.client, (tmp_path / f"{key}.keras").read_bytes(), f"{key}.keras"), 201)
    assert body["name"] == key
    imported = Graph(nodes=[Node(**{k: n[k] for k in ("id", "type", "name", "params", "inputs")})
                            for n in body["layers"]])
    original, back = validate(graph), validate(imported)
    assert body["validation"]["estimate"]["total_params"] == original.total_params
    assert sorted((n.name, n.type, back.shapes[n.id].output) for n in imported.nodes) == \
        sorted((n.name, n.type, original.shapes[n.id].output) for n in graph.nodes)
    note = next(p for p in (ws.folder / "imports").glob("*.json"))
    rebuilt = build_model(imported)
    apply_stored_weights(rebuilt, note.with_name(json.loads(note.read_text())["weights"]),
                         json.loads(note.read_text())["layer_keys"])
    x = np.random.default_rng(2).normal(size=(3, *graph.nodes[0].params["shape"])).astype("float32")
    np.testing.assert_allclose(predict(rebuilt, x), predict(model, x), atol=1e-6)
    assert ok(ws.client.get(f"/api/v1/models/{body['id']}/validate"))["valid"]


# --- the home page's form -----------------------------------------------------------------------

def test_the_home_page_offers_the_import_form(browser_client):
    page = browser_client.get("/").text
    form = page[page.index('action="/models/import/upload"') - 200:]
    assert "Import a model" in page and 'enctype="multipart/form-data"' in form
    assert 'name="csrf"' in form and 'accept=".keras,.json"' in form


def test_importing_from_the_home_page_opens_the_editor_or_shows_why_not(browser_client, tmp_path):
    json_file = ("net.json", json.dumps(DENSE_MODEL).encode(), "application/json")
    response = browser_client.post("/models/import/upload", follow_redirects=False, files={"import_file": json_file})
    assert response.status_code == 303 and re.fullmatch(r"/models/\d+", response.headers["location"])
    assert f'<a href="{response.headers["location"]}">net</a>' in browser_client.get("/").text

    response = browser_client.post("/models/import/upload", data={"import_name": "Evil"},
                                   files={"import_file": ("evil.keras", lambda_file(tmp_path), "application/zip")})
    assert response.status_code == 422
    page = response.text
    error = page[page.index('id="import-model-error"'):]
    assert "Lambda" in error[:600] and 'id="new-model-error"' not in page
    assert 'value="Evil"' in page
    assert not (tmp_path / "pwned.txt").exists()


def test_the_import_form_needs_the_pages_csrf_token(browser_client, server):
    created = browser_client.post("/models", data={"starter": "dense"}, follow_redirects=False)
    assert created.status_code == 303  # the browser has a session now
    forged = TestClient(server.app, headers={"Origin": "http://testserver"}, cookies=dict(browser_client.cookies))
    response = forged.post("/models/import/upload", follow_redirects=False,
                           files={"import_file": ("net.json", json.dumps(DENSE_MODEL).encode(), "application/json")})
    assert response.status_code == 403
    assert browser_client.get("/").text.count('href="/models/') == 1  # only the model made above


@pytest.mark.slow
def test_an_imported_trained_model_trains_on_from_its_weights(server):
    """Export a trained run's .keras, import it, and train it again: it starts where the first run ended."""
    from tests.web.live_server import model_on, read_events, start_run, wait_for_run, workspace_client

    client = workspace_client(server)
    model = model_on(client, "digits", "dense")
    first = wait_for_run(client, start_run(client, model["id"], epochs=3, seed=3)["id"], timeout=180)
    trained = client.get(f"/api/v1/runs/{first['id']}/model").content
    imported = ok(client.post(IMPORT, files={"file": ("trained.keras", trained, "application/octet-stream")}), 201)
    assert imported["weights"]["used_in_training"] is True
    digits = next(d for d in ok(client.get("/api/v1/datasets")) if d["name"].startswith("Digits"))
    ok(client.put(f"/api/v1/models/{imported['id']}/dataset", json={"dataset_id": digits["id"]}))
    again = start_run(client, imported["id"], epochs=1, seed=3)
    started = next(e for e in read_events(client, again["id"]) if e.type == "started")
    assert started.data["initial_weights"] == ["dense", "dense_1", "dense_2"]
    again = wait_for_run(client, again["id"], timeout=180)
    fresh_first_epoch = first["metrics"]["epochs"][0]["logs"]["loss"]
    last_epoch = first["metrics"]["epochs"][-1]["logs"]["loss"]
    assert again["metrics"]["epochs"][0]["logs"]["loss"] < min(fresh_first_epoch, 1.1 * last_epoch)
