"""The app on a real PostgreSQL server: a model is built, trained and tested over the API with its events and
history recorded, and a database that goes away answers 503 with nothing changed, then recovers by itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.faults.stream_holder import held_streams, quiet_followed_run
from tests.postgres import PostgresServer
from tests.server_process import start_server, stop_server
from tests.web.live_server import (
    app_without_warm_up,
    model_on,
    ok,
    read_events,
    start_run,
    wait_for_run,
    workspace_client,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pg_server(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("pg-data"), database_url=postgres.new_database(),
                        workspaces_per_hour=1_000_000, database_pool_size=2)
    app = app_without_warm_up(settings)
    with TestClient(app) as client:  # its shutdown disposes of the engine
        yield client


def test_a_run_trains_and_its_events_and_history_are_recorded(pg_server):
    client = workspace_client(pg_server)
    model = model_on(client, "iris")
    run = wait_for_run(client, start_run(client, model["id"], epochs=3, seed=1)["id"])
    assert run["state"] == "completed", run["reason"]
    assert [e["epoch"] for e in run["metrics"]["epochs"]] == [1, 2, 3] and run["evaluation"]["available"]
    events = read_events(client, run["id"])
    assert [e.type for e in events].count("epoch") == 3 and events[-1].type in ("finished", "state")
    assert [e.id for e in events] == sorted(e.id for e in events)  # in the order they were recorded
    listed = ok(client.get("/api/v1/runs"))
    assert [r["id"] for r in listed] == [run["id"]]
    second = wait_for_run(client, start_run(client, model["id"], epochs=2, seed=1, learning_rate=0.01)["id"])
    compared = ok(client.get(f"/api/v1/runs/compare?ids={run['id']},{second['id']}"))
    assert [c["path"] for c in compared["runs"][1]["changes"]] == ["settings.learning_rate", "settings.epochs"]


def test_a_database_that_goes_away_answers_503_with_nothing_changed_and_recovers(pg_server, postgres):
    client = workspace_client(pg_server)
    models = ok(client.get("/api/v1/models"))
    postgres.stop()
    try:
        refused = client.post("/api/v1/models", json={"name": "Lost", "starter": "dense"})
        assert refused.status_code == 503, refused.text
        assert "nothing was changed" in refused.json()["detail"]
        assert client.get("/api/v1/models").status_code == 503
    finally:
        postgres.start()
    assert ok(client.get("/api/v1/models")) == models  # the first request after the restart is answered
    ok(client.post("/api/v1/models", json={"name": "Found", "starter": "dense"}), 201)
    assert [m["name"] for m in ok(client.get("/api/v1/models"))] == ["Found"]


def test_the_server_refuses_to_start_on_an_unreachable_database(tmp_path: Path):
    from app.main import create_app
    from app.store.db import DatabaseUnreachable

    with pytest.raises(DatabaseUnreachable, match=r"cannot reach the database postgresql\+psycopg://postgres:\*\*\*@"):
        create_app(Settings(data_dir=tmp_path, database_url="postgresql+psycopg://postgres:secret@127.0.0.1:9/x"))


def test_streams_that_wait_hold_no_postgresql_connection(postgres, tmp_path):
    """Twenty streams follow a stopped run on a server with 2 connections at most: edits are still answered."""
    streams = 20
    server, url = start_server(tmp_path, env={"LAYERLAB_DATABASE_URL": postgres.new_database(),
                                              "LAYERLAB_DATABASE_POOL_SIZE": "1",
                                              "LAYERLAB_MAX_STREAMS_PER_SESSION": str(streams)})
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            client.headers["Authorization"] = "Bearer " + client.post("/api/v1/workspaces").json()["token"]
            model, run = quiet_followed_run(client)
            with held_streams(url, client.headers["Authorization"][7:], run["id"], streams):
                for units in range(10, 30):
                    edited = client.patch(f"/api/v1/models/{model['id']}/layers/n3", json={"params": {"units": units}})
                    assert edited.status_code == 200, edited.text
                assert client.get(f"/api/v1/runs/{run['id']}").status_code == 200
    finally:
        stop_server(server)
