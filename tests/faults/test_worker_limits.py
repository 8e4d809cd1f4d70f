"""A training process that needs too much memory, or hangs, is stopped; its run fails with the reason."""

from __future__ import annotations

import os
import signal

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.web.live_server import app_without_warm_up, model_on, ok, start_run, wait_for_run, workspace_client

pytestmark = pytest.mark.slow


def test_a_run_over_its_memory_limit_fails_and_the_next_one_runs(tmp_path):
    # TensorFlow alone takes more than 300 MB, so any run goes past this limit at once.
    settings = Settings(data_dir=tmp_path, worker_memory_mb=300, warm_training_workers=0)
    with TestClient(app_without_warm_up(settings)) as server:
        client = workspace_client(server)
        model = model_on(client, "circle", n_samples=100)
        run = wait_for_run(client, start_run(client, model["id"], epochs=5)["id"], timeout=60)
        assert run["state"] == "failed"
        assert "needed more than 300 MB of memory (LAYERLAB_WORKER_MEMORY_MB)" in run["reason"]
        assert ok(client.get("/api/v1/models"))  # the server keeps answering


def test_a_hung_training_process_is_stopped_and_its_run_failed(tmp_path):
    settings = Settings(data_dir=tmp_path, worker_silence_s=3)
    with TestClient(app_without_warm_up(settings)) as server:
        client = workspace_client(server)
        model = model_on(client, "circle", n_samples=100)
        run = start_run(client, model["id"], epochs=1000)
        # An epoch's event comes just before its checkpoint is written: wait for the saved epoch itself.
        wait_for_run(client, run["id"], lambda r: r["saved_epoch"] is not None, timeout=90)
        os.kill(server.app.state.scheduler.executor.pid(run["id"]), signal.SIGSTOP)  # alive, but silent
        failed = wait_for_run(client, run["id"], timeout=30)
        assert failed["state"] == "failed" and "reported nothing for" in failed["reason"]
        assert "LAYERLAB_WORKER_SILENCE_S" in failed["reason"] and failed["resumable"]
        again = wait_for_run(client, ok(client.post(f"/api/v1/runs/{run['id']}/resume"))["id"],
                             lambda r: r["epochs_done"] > failed["epochs_done"] or r["state"] == "failed", timeout=90)
        assert again["state"] == "running"  # resumed from its last saved epoch
        ok(client.post(f"/api/v1/runs/{run['id']}/stop"))
        wait_for_run(client, run["id"])
