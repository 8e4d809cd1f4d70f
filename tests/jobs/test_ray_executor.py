"""The Ray executor on a real local Ray instance, through the real server: a run trains on a Ray actor with its
events in order and its files back on the server; stop works; an actor that dies fails its run cleanly with the
epochs saved so far kept; a server that stops mid-run leaves the run interrupted and resumable."""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.web.live_server import (
    app_without_warm_up,
    model_on,
    ok,
    read_events,
    start_run,
    wait_for_run,
    workspace_client,
)

# Ray leaves files and processes to the garbage collector on its own (its start-up, its shutdown): not ours
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]

if os.environ.get("LAYERLAB_REQUIRE_RAY") != "1":
    pytest.importorskip("ray", reason="Ray is the optional extra layerlab[ray]")

RAY_TIMEOUT = 180.0  # the first run waits for Ray's workers to start and import TensorFlow


def forget_ray_processes() -> None:
    """Ray's shutdown ends its processes but leaves their Popen objects to the garbage collector, which warns
    that they were still running when it made them: collect them now, without that warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def ray_settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, executor="ray", workspaces_per_hour=1_000_000)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ray-data")


@pytest.fixture(scope="module")
def ray_server(data_dir: Path) -> Iterator[TestClient]:
    with TestClient(app_without_warm_up(ray_settings(data_dir))) as client:
        yield client
    forget_ray_processes()


def test_a_run_trains_on_a_ray_actor_with_its_events_in_order_and_its_files_back(ray_server):
    client = workspace_client(ray_server)
    run = wait_for_run(client, start_run(client, model_on(client, "iris")["id"], epochs=3, seed=2)["id"],
                       timeout=RAY_TIMEOUT)
    assert run["state"] == "completed", run["reason"]
    assert run["device"] == "CPU" and [e["epoch"] for e in run["metrics"]["epochs"]] == [1, 2, 3]
    events = read_events(client, run["id"])
    assert [e.id for e in events] == sorted(e.id for e in events)
    kinds = [e.type for e in events]
    assert kinds.index("started") < kinds.index("epoch") < kinds.index("finished") and kinds.count("epoch") == 3
    assert client.get(run["model_url"]).content[:2] == b"PK"  # the model came back into the server's folder


def test_stop_cancels_a_ray_run_promptly_keeping_its_saved_epochs(ray_server):
    client = workspace_client(ray_server)
    run = start_run(client, model_on(client, "iris")["id"], epochs=1000, batch_size=1)
    wait_for_run(client, run["id"], until=lambda r: r["saved_epoch"] is not None, timeout=RAY_TIMEOUT)
    ok(client.post(f"/api/v1/runs/{run['id']}/stop"))
    stopped = wait_for_run(client, run["id"], timeout=10)  # as quickly as a local run stops
    assert stopped["state"] == "cancelled" and stopped["saved_epoch"] >= 1


def test_a_ray_actor_that_dies_fails_its_run_with_the_reason_and_its_epochs_kept(ray_server):
    client = workspace_client(ray_server)
    run = start_run(client, model_on(client, "iris")["id"], epochs=1000, batch_size=1)
    wait_for_run(client, run["id"], until=lambda r: r["saved_epoch"] is not None, timeout=RAY_TIMEOUT)
    ray_server.app.state.scheduler.executor.kill(run["id"])  # as a lost node or an out-of-memory kill would
    failed = wait_for_run(client, run["id"], timeout=60)
    assert failed["state"] == "failed" and "The Ray worker training this run stopped" in failed["reason"]
    assert failed["saved_epoch"] >= 1 and failed["resumable"]
    assert ok(client.get("/api/v1/models"))  # the server keeps answering


def test_a_server_stopped_mid_run_leaves_it_interrupted_and_resumable(tmp_path):
    with TestClient(app_without_warm_up(ray_settings(tmp_path))) as server:
        client = workspace_client(server)
        token = client.headers["Authorization"]
        run = start_run(client, model_on(client, "iris")["id"], epochs=1000, batch_size=1)
        wait_for_run(client, run["id"], until=lambda r: r["saved_epoch"] is not None, timeout=RAY_TIMEOUT)
    forget_ray_processes()
    with TestClient(app_without_warm_up(ray_settings(tmp_path))) as restarted:
        client = TestClient(restarted.app, headers={"Authorization": token})
        client.portal = restarted.portal
        after = ok(client.get(f"/api/v1/runs/{run['id']}"))
        assert after["state"] == "interrupted" and after["resumable"] and after["saved_epoch"] >= 1
    forget_ray_processes()


def test_an_unreachable_ray_cluster_stops_the_server_from_starting_at_once(tmp_path):
    from app.jobs.ray_executor import RayUnavailable
    from app.main import create_app

    settings = Settings(data_dir=tmp_path, executor="ray", ray_address="127.0.0.1:9")
    with pytest.raises(RayUnavailable, match=r"cannot reach the Ray cluster at 127\.0\.0\.1:9 .*LAYERLAB_RAY_ADDRESS"):
        create_app(settings)
