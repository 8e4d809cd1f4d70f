"""Limits that hold on every path: the server's queue, storage per workspace, runs kept."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.browser_like import BrowserLikeClient
from tests.web.live_server import ACTIVE, app_without_warm_up, model_on, ok, start_run, wait_for_run, workspace_client

pytestmark = pytest.mark.slow


def test_a_full_queue_answers_429_with_a_time_to_try_again(tmp_path):
    settings = Settings(data_dir=tmp_path, max_queued_runs=1, max_running_runs=1)
    with TestClient(app_without_warm_up(settings)) as server:
        first, second = workspace_client(server), workspace_client(server)
        model = model_on(first, "circle", n_samples=100)
        running = start_run(first, model["id"], epochs=1000)
        queued = start_run(first, model["id"], epochs=1)
        assert queued["state"] == "queued"
        other = model_on(second, "circle", n_samples=100)
        refused = second.post(f"/api/v1/models/{other['id']}/runs", json={"epochs": 1})
        assert refused.status_code == 429 and "queue is full" in refused.json()["detail"]
        assert int(refused.headers["retry-after"]) > 0
        for run in (running, queued):
            ok(first.post(f"/api/v1/runs/{run['id']}/stop"))
            assert wait_for_run(first, run["id"])["state"] not in ACTIVE


def test_the_storage_quota_refuses_what_would_exceed_it_and_the_home_page_shows_the_use(tmp_path):
    settings = Settings(data_dir=tmp_path, workspace_quota_bytes=1024 * 1024)  # 1 MB
    with TestClient(app_without_warm_up(settings)) as server:
        client = workspace_client(server)
        small = b"a,b,target\n" + b"1.5,2.5,0\n2.5,3.5,1\n" * 2000  # about 40 KB
        ok(client.post("/api/v1/datasets/upload", data={"kind": "csv"}, files={"file": ("s.csv", small, "text/csv")}),
           201)
        large = b"a,b,target\n" + b"1.5,2.5,0\n2.5,3.5,1\n" * 60_000  # about 1.2 MB
        refused = client.post("/api/v1/datasets/upload", data={"kind": "csv"},
                              files={"file": ("l.csv", large, "text/csv")})
        assert refused.status_code == 413 and "storage is full" in refused.json()["detail"]
        assert "LAYERLAB_WORKSPACE_QUOTA_BYTES" in refused.json()["detail"]
        assert len(ok(client.get("/api/v1/datasets"))) == 1

        browser = BrowserLikeClient(server.app)
        browser.post("/models", data={"starter": "dense"})
        home = browser.get("/").text
        assert 'id="storage-use"' in home and "of 1.0 MB used" in home


def test_runs_kept_per_workspace_are_capped_and_deleting_one_makes_room(tmp_path):
    settings = Settings(data_dir=tmp_path, max_runs_per_workspace=2)
    with TestClient(app_without_warm_up(settings)) as server:
        client = workspace_client(server)
        model = model_on(client, "circle", n_samples=100)
        first = wait_for_run(client, start_run(client, model["id"], epochs=1)["id"])
        wait_for_run(client, start_run(client, model["id"], epochs=1)["id"])
        refused = client.post(f"/api/v1/models/{model['id']}/runs", json={"epochs": 1})
        assert refused.status_code == 409 and "keeps 2 runs, and may keep 2" in refused.json()["detail"]
        assert len(ok(client.get("/api/v1/runs"))) == 2  # nothing was deleted on its own
        assert client.delete(f"/api/v1/runs/{first['id']}").status_code == 204
        assert start_run(client, model["id"], epochs=1)["state"] in ACTIVE
