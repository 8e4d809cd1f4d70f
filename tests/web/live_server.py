"""Helpers for API tests that prepare real datasets and train real Keras models.

`workspace_client` gives a bearer-token client that shares the server's event loop
(the TestClient's portal), as one uvicorn loop would: the run event hub hands events to
streams through the loop it was bound to at start-up, so a client with a loop of its
own would see only the events recorded before its stream opened.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app

ACTIVE = ("queued", "running")


def workspace_client(server: TestClient) -> TestClient:
    """A client with a fresh workspace, running its requests on `server`'s event loop."""
    assert server.portal is not None, "enter the server's TestClient context first"
    token = server.post("/api/v1/workspaces").json()["token"]
    client = TestClient(server.app, headers={"Authorization": f"Bearer {token}"})
    client.portal = server.portal  # requests go through the running app's loop
    return client


def app_without_warm_up(settings: Settings) -> FastAPI:
    """An app whose model inspector is not warmed up at start-up (it still starts when a summary is asked
    for): tests that only train spare the CPU a TensorFlow import the run workers need more."""
    app = create_app(settings)
    app.state.inspector.start = lambda: None  # the lifespan's warm-up timer calls this
    return app


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text[:2000]}"
    return response.json() if response.content else None


def add_builtin(client: TestClient, key: str, **params: Any) -> dict[str, Any]:
    return ok(client.post("/api/v1/datasets", json={"key": key, "params": params}), 201)


def create_model(client: TestClient, starter: str, name: str = "Net") -> dict[str, Any]:
    return ok(client.post("/api/v1/models", json={"name": name, "starter": starter}), 201)


def attach(client: TestClient, model_id: int, dataset_id: int, fit_output: bool = False) -> dict[str, Any]:
    attached = ok(client.put(f"/api/v1/models/{model_id}/dataset", json={"dataset_id": dataset_id}))
    if fit_output:
        ok(client.post(f"/api/v1/models/{model_id}/dataset/fit-output"))
    return attached


def model_on(client: TestClient, key: str, starter: str = "dense", **params: Any) -> dict[str, Any]:
    """A starter model with a built-in dataset attached and its output layer fitted to it."""
    dataset = add_builtin(client, key, **params)
    model = create_model(client, starter)
    attach(client, model["id"], dataset["id"], fit_output=True)
    return model


def start_run(client: TestClient, model_id: int, **settings: Any) -> dict[str, Any]:
    return ok(client.post(f"/api/v1/models/{model_id}/runs", json=settings), 201)


def get_run(client: TestClient, run_id: int) -> dict[str, Any]:
    return ok(client.get(f"/api/v1/runs/{run_id}"))


def wait_for_run(client: TestClient, run_id: int, until: Callable[[dict[str, Any]], bool] | None = None,
                 timeout: float = 90.0, interval: float = 0.1) -> dict[str, Any]:
    """Poll GET /runs/{id} until `until(run)` holds (default: the run has ended)."""
    until = until or (lambda run: run["state"] not in ACTIVE)
    deadline = time.monotonic() + timeout
    while True:
        run = get_run(client, run_id)
        if until(run):
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} did not get there in {timeout:.0f} s; it is {run['state']} "
                                 f"after {run['epochs_done']} epoch(s): {run['reason']}")
        time.sleep(interval)


@dataclass
class Event:
    id: int
    type: str
    data: dict[str, Any]


def iter_events(lines: Iterator[str]) -> Iterator[Event]:
    """Parse a Server-Sent Events body; comments (keep-alives) are skipped."""
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in lines:
        if line == "":
            if data or fields:
                yield Event(int(fields["id"]), fields.get("event", "message"), json.loads("\n".join(data)))
            fields, data = {}, []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            else:
                fields[name] = value


def read_events(client: TestClient, run_id: int, last_event_id: int | None = None,
                stop: Callable[[Event], bool] | None = None) -> list[Event]:
    """Read a run's event stream until it ends, or until `stop(event)` holds (then disconnect)."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    events: list[Event] = []
    with client.stream("GET", f"/api/v1/runs/{run_id}/events", headers=headers) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in iter_events(response.iter_lines()):
            events.append(event)
            if stop is not None and stop(event):
                break
    return events
