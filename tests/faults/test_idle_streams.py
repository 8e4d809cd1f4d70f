"""500 open event streams cost nothing while they wait: other requests are as fast as without them."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import httpx
import pytest

from tests.server_process import REPO_ROOT, start_server, stop_server

pytestmark = pytest.mark.slow

STREAMS = 500
EDITS = 60


def edit_latencies(client: httpx.Client, model_id: int, count: int, start: int) -> list[float]:
    """Layer edits with their summary, as the editor makes them; seconds each."""
    took = []
    for units in range(start, start + count):
        began = time.perf_counter()
        edited = client.patch(f"/api/v1/models/{model_id}/layers/n3", json={"params": {"units": units}})
        assert edited.status_code == 200
        assert client.get(f"/api/v1/models/{model_id}/summary").status_code == 200
        took.append(time.perf_counter() - began)
    return took


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def test_500_idle_streams_leave_edits_as_fast_as_without(tmp_path):
    server, url = start_server(tmp_path, env={"LAYERLAB_MAX_STREAMS_PER_SESSION": str(STREAMS)})
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            client.headers["Authorization"] = "Bearer " + client.post("/api/v1/workspaces").json()["token"]
            model = client.post("/api/v1/models", json={"starter": "dense"}).json()
            dataset = client.post("/api/v1/datasets", json={"key": "circle", "params": {"n_samples": 100}}).json()
            client.put(f"/api/v1/models/{model['id']}/dataset", json={"dataset_id": dataset["id"]})
            client.post(f"/api/v1/models/{model['id']}/dataset/fit-output")
            # A stopped run with a saved epoch: pages follow it in case it is resumed, and it stays quiet.
            run = client.post(f"/api/v1/models/{model['id']}/runs", json={"epochs": 1000}).json()
            deadline = time.monotonic() + 90
            while client.get(f"/api/v1/runs/{run['id']}").json()["saved_epoch"] is None:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            client.post(f"/api/v1/runs/{run['id']}/stop")
            while client.get(f"/api/v1/runs/{run['id']}").json()["state"] == "running":
                time.sleep(0.2)

            edit_latencies(client, model["id"], 10, 100)  # warm up the summary worker
            without = edit_latencies(client, model["id"], EDITS, 200)
            # The streams are held by another process, so that this one measures the server alone.
            holder = subprocess.Popen([sys.executable, "-m", "tests.faults.stream_holder", url,
                                       client.headers["Authorization"][7:], str(run["id"]), str(STREAMS)],
                                      cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
            try:
                assert holder.stdout is not None and holder.stdout.readline().strip() == f"opened {STREAMS}"
                time.sleep(2)  # idle streams: the opening rush is over
                during = edit_latencies(client, model["id"], EDITS, 300)
                assert client.get("/").status_code == 200
            finally:
                holder.kill()
                holder.wait(timeout=10)
                if holder.stdout is not None:
                    holder.stdout.close()
        ratio = p95(during) / p95(without)
        print(f"edit p95 without streams {1000 * p95(without):.1f} ms, with {STREAMS} streams "
              f"{1000 * p95(during):.1f} ms (ratio {ratio:.2f})")
        assert ratio < 2.0, (p95(without), p95(during))
    finally:
        stop_server(server)
