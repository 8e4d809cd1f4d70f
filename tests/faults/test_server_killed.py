"""Kill the real server process mid-run (SIGKILL, no shutdown), start it again, resume."""

import os
import signal
import time

import httpx
import psutil
import pytest

from tests.server_process import start_server, stop_server

pytestmark = pytest.mark.slow


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_server_leaves_the_run_interrupted_and_resumable(tmp_path):
    server, url = start_server(tmp_path)
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            token = client.post("/api/v1/workspaces").json()["token"]
            run = start_long_run(client, token)
            wait_for(lambda: client.get(f"/api/v1/runs/{run['id']}").json()["epochs_done"] >= 2, 90,
                     "two epochs")
        workers = psutil.Process(server.pid).children(recursive=True)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        # The orphaned workers notice their server is gone and stop by themselves.
        _gone, alive = psutil.wait_procs(workers, timeout=20)
        assert not alive
    finally:
        stop_server(server)

    server, url = start_server(tmp_path)
    try:
        with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
            check_interrupted_then_resume(client, run["id"])
    finally:
        stop_server(server)


def start_long_run(client: httpx.Client, token: str) -> dict:
    client.headers["Authorization"] = f"Bearer {token}"
    model = client.post("/api/v1/models", json={"starter": "regression"}).json()
    dataset = client.post("/api/v1/datasets", json={"key": "plane", "params": {"n_samples": 400}}).json()
    client.put(f"/api/v1/models/{model['id']}/dataset", json={"dataset_id": dataset["id"]})
    run = client.post(f"/api/v1/models/{model['id']}/runs",
                      json={"epochs": 400, "batch_size": 8, "steps_per_execution": 1}).json()
    return run


def check_interrupted_then_resume(client: httpx.Client, run_id: int) -> None:
    after = client.get(f"/api/v1/runs/{run_id}").json()
    assert after["state"] == "interrupted" and "server stopped" in after["reason"]
    assert after["epochs_done"] >= 2
    kept = [e["epoch"] for e in after["metrics"]["epochs"]]
    assert kept == list(range(1, after["epochs_done"] + 1))
    resumed = client.post(f"/api/v1/runs/{run_id}/resume")
    assert resumed.status_code == 200
    wait_for(lambda: client.get(f"/api/v1/runs/{run_id}").json()["epochs_done"] > after["epochs_done"], 90,
             "an epoch after the resume")
    client.post(f"/api/v1/runs/{run_id}/stop")
    final = wait_for(lambda: (r := client.get(f"/api/v1/runs/{run_id}").json())["state"] == "cancelled"
                     and r, 30, "the stop")
    assert final["epochs_done"] > after["epochs_done"]
