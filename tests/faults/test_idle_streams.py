"""500 open event streams cost nothing while they wait: other requests are as fast as without them."""

from __future__ import annotations

import statistics
import time

import httpx
import pytest

from tests.faults.stream_holder import held_streams, quiet_followed_run
from tests.server_process import start_server, stop_server

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
            model, run = quiet_followed_run(client)
            edit_latencies(client, model["id"], 10, 100)  # warm up the summary worker
            without = edit_latencies(client, model["id"], EDITS, 200)
            with held_streams(url, client.headers["Authorization"][7:], run["id"], STREAMS):
                time.sleep(2)  # idle streams: the opening rush is over
                during = edit_latencies(client, model["id"], EDITS, 300)
                assert client.get("/").status_code == 200
        ratio = p95(during) / p95(without)
        print(f"edit p95 without streams {1000 * p95(without):.1f} ms, with {STREAMS} streams "
              f"{1000 * p95(during):.1f} ms (ratio {ratio:.2f})")
        assert ratio < 2.0, (p95(without), p95(during))
    finally:
        stop_server(server)
