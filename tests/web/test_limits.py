"""Limits that hold on every path: the server's queue, storage per workspace, runs kept."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
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
