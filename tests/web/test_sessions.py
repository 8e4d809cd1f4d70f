"""Sessions and tokens are server-side records with an expiry; looking creates nothing; ids and bodies are bounded."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, select

from app.config import Settings
from app.main import create_app
from app.store.tables import Workspace
from tests.browser_like import BrowserLikeClient

pytestmark = pytest.mark.slow


def workspace_count(app) -> int:
    with app.state.sessions() as session:
        return session.scalar(select(func.count()).select_from(Workspace))


@pytest.fixture
def fresh(tmp_path):
    app = create_app(Settings(data_dir=tmp_path, workspaces_per_hour=3, session_days=0.5 / 86400))
    with TestClient(app) as client:
        yield app, client


def test_looking_around_creates_no_workspace(server):
    stranger = server.__class__(server.app)
    before = workspace_count(server.app)
    for path in ["/", "/runs", "/no/such/page", "/models/1", "/runs/3", "/datasets/2"] * 9:
        assert "set-cookie" not in stranger.get(path).headers
    assert workspace_count(server.app) == before


def test_a_token_expires_after_its_time_and_can_be_revoked(fresh):
    _, client = fresh  # sessions last half a second here
    token = client.post("/api/v1/workspaces").json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/models", headers=headers).status_code == 200
    time.sleep(0.6)
    expired = client.get("/api/v1/models", headers=headers)
    assert expired.status_code == 401 and "expired or been revoked" in expired.json()["detail"]

    token = client.post("/api/v1/workspaces").json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.delete("/api/v1/workspaces/token", headers=headers).status_code == 204
    assert client.get("/api/v1/models", headers=headers).status_code == 401
    assert client.delete("/api/v1/workspaces/token", headers=headers).status_code == 401


def test_new_workspaces_are_rate_limited_per_address(fresh):
    app, client = fresh  # three an hour here
    for _ in range(3):
        assert client.post("/api/v1/workspaces").status_code == 201
    refused = client.post("/api/v1/workspaces")
    assert refused.status_code == 429 and "Too many new workspaces" in refused.json()["detail"]
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    page = BrowserLikeClient(app).post("/models", data={"starter": "dense"})  # a first visit, too
    assert page.status_code == 429
    assert workspace_count(app) == 3


def test_a_cookie_from_before_sessions_keeps_its_workspace(server):
    owner = BrowserLikeClient(server.app)
    owner.post("/models", data={"name": "Kept", "starter": "dense"})
    workspace_id = _workspace_of(server.app, "Kept")
    legacy = URLSafeSerializer(server.app.state.settings.signing_key, salt="workspace").dumps(workspace_id)
    returning = server.__class__(server.app, cookies={"layerlab_workspace": legacy})
    page = returning.get("/")
    assert "Kept" in page.text
    assert "layerlab_session=" in page.headers["set-cookie"]  # now an ordinary session


def _workspace_of(app, model_name: str) -> str:
    from app.store.tables import ModelRecord

    with app.state.sessions() as session:
        return session.scalar(select(ModelRecord.workspace_id).where(ModelRecord.name == model_name))


@pytest.mark.parametrize("path", ["/api/v1/models/{n}", "/api/v1/runs/{n}", "/api/v1/datasets/{n}",
                                  "/api/v1/runs?model_id={n}"])
def test_ids_too_large_for_the_database_are_unknown_ids(api, path):
    for n in (2**63, 2**63 - 1, 10**30):
        response = api.get(path.format(n=n))
        assert response.status_code in (200, 404), (path, n, response.status_code)
        if "?" in path:
            assert response.json() == []


def test_ids_too_large_on_pages_and_forms_are_unknown_ids(browser_client):
    editor = browser_client.post("/models", data={"starter": "dense"}, follow_redirects=False).headers["location"]
    for path in ("/models/9223372036854775808", "/runs/99999999999999999999", "/datasets/9223372036854775807"):
        assert browser_client.get(path).status_code == 404
    chosen = browser_client.post(f"{editor}/dataset", data={"dataset": "9223372036854775808"},
                                 headers={"HX-Request": "true"})
    assert chosen.status_code == 422 and "Choose a dataset from the list" in chosen.text


def test_bodies_are_bounded_and_bad_values_are_quoted_short(api):
    big = json.dumps({"name": "x" * (2 * 1024 * 1024)})
    response = api.post("/api/v1/models", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "LAYERLAB_MAX_BODY_BYTES" in response.json()["detail"]

    def chunks():
        for _ in range(40):
            yield b"[" * 65536

    response = api.post("/api/v1/models", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413  # no Content-Length: refused while it arrives

    deep = "[" * 100 + "]" * 100
    response = api.post("/api/v1/models", content=json.dumps({"name": "x", "starter": "dense", "n": json.loads(deep)}),
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and "nests deeper" in response.json()["detail"]

    model = api.post("/api/v1/models", json={"starter": "dense"}).json()
    huge_list = list(range(150_000))  # about 1 MB of JSON: within the limit, far beyond any parameter
    response = api.patch(f"/api/v1/models/{model['id']}/layers/n3", json={"params": {"units": huge_list}})
    assert response.status_code == 422 and len(response.content) < 2000
    assert "Received: units=[0, 1, 2" in response.json()["detail"]
