"""One suite for every executor, through the real server: the local executor (spawned processes) and the Ray
executor on a real local Ray instance. A run completes with its events in order and its files in the server's
folder; stop ends it promptly; a worker that dies fails its run with the reason and its epochs kept; a server
stopped mid-run leaves the run interrupted, and it resumes from its last saved epoch."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.jobs.runs import FIRST_RUN_TIMEOUT, forget_ray_processes, long_run
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

EXECUTORS = ("local", "ray")
# What a run's reason says when its worker dies, on each executor
DIED = {"local": "The training process stopped unexpectedly", "ray": "The Ray worker training this run stopped"}


@pytest.fixture(scope="module", params=EXECUTORS)
def executor(request: pytest.FixtureRequest) -> str:
    if request.param == "ray" and importlib.util.find_spec("ray") is None:
        if os.environ.get("LAYERLAB_REQUIRE_RAY") == "1":
            pytest.fail("Ray is not installed, and LAYERLAB_REQUIRE_RAY=1")
        pytest.skip("Ray is the optional extra layerlab[ray]")
    return request.param


def settings_for(executor: str, data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, executor=executor, workspaces_per_hour=1_000_000)


@pytest.fixture(scope="module")
def server(executor: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with TestClient(app_without_warm_up(settings_for(executor, tmp_path_factory.mktemp(executor)))) as client:
        yield client
    forget_ray_processes()


def test_a_run_completes_with_its_events_in_order_and_its_files_on_the_server(server):
    client = workspace_client(server)
    run = wait_for_run(client, start_run(client, model_on(client, "iris")["id"], epochs=3, seed=2)["id"],
                       timeout=FIRST_RUN_TIMEOUT)
    assert run["state"] == "completed", run["reason"]
    assert run["device"] == "CPU" and [e["epoch"] for e in run["metrics"]["epochs"]] == [1, 2, 3]
    events = read_events(client, run["id"])
    assert [e.id for e in events] == sorted(e.id for e in events)
    kinds = [e.type for e in events]
    assert kinds.index("started") < kinds.index("epoch") < kinds.index("finished") and kinds.count("epoch") == 3
    assert client.get(run["model_url"]).content[:2] == b"PK"  # the model is in the server's run folder
    assert run["evaluation"]["available"]


def test_stop_ends_a_run_promptly_keeping_its_saved_epochs(server):
    client = workspace_client(server)
    run = long_run(client)
    ok(client.post(f"/api/v1/runs/{run['id']}/stop"))
    stopped = wait_for_run(client, run["id"], timeout=10)
    assert stopped["state"] == "cancelled" and stopped["saved_epoch"] >= 1 and stopped["resumable"]


def test_a_worker_that_dies_fails_its_run_with_the_reason_and_its_epochs_kept(server, executor):
    client = workspace_client(server)
    run = long_run(client)
    server.app.state.scheduler.executor.kill(run["id"])  # as a lost node or an out-of-memory kill would
    failed = wait_for_run(client, run["id"], timeout=60)
    assert failed["state"] == "failed" and DIED[executor] in failed["reason"]
    assert failed["saved_epoch"] >= 1 and failed["resumable"]
    assert ok(client.get("/api/v1/models"))  # the server keeps answering
    after = wait_for_run(client, start_run(client, model_on(client, "iris")["id"], epochs=1)["id"], timeout=60)
    assert after["state"] == "completed", after["reason"]  # and trains the next run


def test_a_server_stopped_mid_run_leaves_it_interrupted_and_it_resumes(executor, tmp_path):
    with TestClient(app_without_warm_up(settings_for(executor, tmp_path))) as first:
        client = workspace_client(first)
        token = client.headers["Authorization"]
        run = long_run(client)
    forget_ray_processes()
    with TestClient(app_without_warm_up(settings_for(executor, tmp_path))) as restarted:
        client = TestClient(restarted.app, headers={"Authorization": token})
        client.portal = restarted.portal
        after = ok(client.get(f"/api/v1/runs/{run['id']}"))
        assert after["state"] == "interrupted" and after["resumable"] and after["saved_epoch"] >= 1
        saved = after["saved_epoch"]
        ok(client.post(f"/api/v1/runs/{run['id']}/resume"))
        wait_for_run(client, run["id"], until=lambda r: (r["saved_epoch"] or 0) > saved, timeout=FIRST_RUN_TIMEOUT)
        ok(client.post(f"/api/v1/runs/{run['id']}/stop"))
        resumed = wait_for_run(client, run["id"], timeout=10)
        epochs = [e["epoch"] for e in resumed["metrics"]["epochs"]]
        assert resumed["state"] == "cancelled" and epochs == list(range(1, len(epochs) + 1)) and len(epochs) > saved
    forget_ray_processes()
