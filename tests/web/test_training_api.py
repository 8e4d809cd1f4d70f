"""Training over the API: real Keras runs in worker processes, their events, limits, failures and restarts.

Every run trains a real model on a small built-in dataset; most last a few seconds, of which
TensorFlow's start-up in the new worker process is the larger part.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.web.live_server import (
    ACTIVE,
    add_builtin,
    app_without_warm_up,
    attach,
    create_model,
    get_run,
    model_on,
    ok,
    read_events,
    start_run,
    wait_for_run,
    workspace_client,
)

# slow: every test here trains, or prepares data in the data worker
pytestmark = [pytest.mark.slow, pytest.mark.both_databases]


@pytest.fixture
def api(server: TestClient) -> TestClient:
    return workspace_client(server)


def trained_epochs(run: dict) -> list[int]:
    return [e["epoch"] for e in run["metrics"]["epochs"]]


# --- a dense network on digits28: the whole life of a run ----------------------------------------------------

DIGITS_EPOCHS = 5


@pytest.fixture(scope="module")
def digits_run(server: TestClient) -> tuple[TestClient, dict]:
    """The dense starter training on digits28, as the POST that started it answered."""
    client = workspace_client(server)
    model = model_on(client, "digits28", "dense")
    return client, start_run(client, model["id"], epochs=DIGITS_EPOCHS)


def test_run_is_recorded_as_queued_or_running_before_the_request_returns(digits_run):
    client, started = digits_run
    assert started["state"] in ACTIVE
    assert started["epochs"] == DIGITS_EPOCHS and started["config"]["epochs"] == DIGITS_EPOCHS
    assert started["config"]["loss"] == "sparse_categorical_crossentropy"
    assert started["evaluation"] is None and started["model_url"] is None
    listed = ok(client.get("/api/v1/runs"))
    assert [r["id"] for r in listed] == [started["id"]]


def test_streams_opened_and_closed_mid_run_leave_none_open(digits_run, server):
    client, started = digits_run
    hub = server.app.state.event_hub
    assert hub.open_streams() == 0
    with contextlib.ExitStack() as stack:
        streams = [stack.enter_context(client.stream("GET", f"/api/v1/runs/{started['id']}/events"))
                   for _ in range(3)]
        readers = [stream.iter_lines() for stream in streams]  # kept: a dropped reader closes its stream
        for stream, lines in zip(streams, readers):  # each replays the run so far, then waits for more
            assert stream.status_code == 200
            assert any(line == "event: started" for line in lines)
        assert hub.open_streams() == 3
        assert get_run(client, started["id"])["state"] == "running"
    assert hub.open_streams() == 0
    assert get_run(client, started["id"])["state"] == "running"  # closed mid-run
    run = wait_for_run(client, started["id"])
    assert run["state"] == "completed", run["reason"]
    assert hub.open_streams() == 0


def test_dense_starter_learns_digits28(digits_run):
    client, started = digits_run
    run = wait_for_run(client, started["id"])
    assert run["state"] == "completed", run["reason"]
    assert run["epochs_done"] == DIGITS_EPOCHS and trained_epochs(run) == list(range(1, DIGITS_EPOCHS + 1))
    for epoch in run["metrics"]["epochs"]:
        assert set(epoch["logs"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    val_losses = [e["logs"]["val_loss"] for e in run["metrics"]["epochs"]]
    assert run["best_epoch"] == 1 + val_losses.index(min(val_losses))
    assert run["metrics"]["epochs"][-1]["logs"]["loss"] < run["metrics"]["epochs"][0]["logs"]["loss"]
    assert run["started_at"] and run["finished_at"] and run["queue_position"] is None
    assert run["device"] == "CPU"  # LAYERLAB_DEVICE=auto on a machine whose TensorFlow sees no GPU

    evaluation = run["evaluation"]
    assert evaluation["available"] is True and evaluation["task"] == "classification"
    assert evaluation["test_samples"] == 270
    assert evaluation["accuracy"] >= 0.9, evaluation["accuracy"]
    matrix = evaluation["confusion_matrix"]
    assert matrix["labels"] == [str(d) for d in range(10)]
    assert len(matrix["matrix"]) == 10 and all(len(row) == 10 for row in matrix["matrix"])
    assert sum(map(sum, matrix["matrix"])) == 270
    assert sum(matrix["matrix"][i][i] for i in range(10)) / 270 == pytest.approx(evaluation["accuracy"])
    assert [c["support"] for c in evaluation["per_class"]] == [sum(row) for row in matrix["matrix"]]


def test_trained_model_downloads_as_a_keras_file(digits_run):
    client, started = digits_run
    run = wait_for_run(client, started["id"])
    assert run["model_url"] == f"/api/v1/runs/{run['id']}/model"
    response = client.get(run["model_url"])
    assert response.status_code == 200
    assert response.content[:4] == b"PK\x03\x04"  # a .keras file is a zip
    assert response.headers["content-disposition"].endswith(f"-run{run['id']}.keras\"")
    image = client.get(f"/api/v1/runs/{run['id']}/predictions.png")
    assert image.status_code == 200 and image.content[:4] == b"\x89PNG"


# --- requests refused before any worker starts ---------------------------------------------------------------

@pytest.fixture
def circle_model(api: TestClient) -> dict:
    return model_on(api, "circle", "dense", n_samples=200, noise=0.05)


@pytest.mark.parametrize("settings,field,message", [
    ({"epochs": 0}, "epochs", "Expected an integer between 1 and 1000"),
    ({"epochs": 1001}, "epochs", "Expected an integer between 1 and 1000"),
    ({"batch_size": 0}, "batch_size", "batch_size"),
    ({"batch_size": 5000}, "batch_size", "batch_size"),
    ({"learning_rate": 0}, "learning_rate", "learning_rate"),
    ({"learning_rate": 1e7}, "learning_rate", "learning_rate"),
    ({"learning_rate": "fast"}, "learning_rate", "learning_rate"),
    ({"optimizer": "lbfgs"}, "optimizer", "adam"),
    ({"patience": 3}, "patience", "Training has no setting `patience`"),
])
def test_out_of_range_settings_are_refused_before_any_worker_starts(api, server, circle_model, settings, field,
                                                                    message):
    running_before = server.app.state.scheduler.executor.running()
    response = api.post(f"/api/v1/models/{circle_model['id']}/runs", json=settings)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["field"] == field and message in error["detail"]
    assert ok(api.get("/api/v1/runs")) == []
    assert server.app.state.scheduler.executor.running() <= running_before


def test_a_model_without_a_dataset_cannot_train(api):
    model = create_model(api, "dense")
    response = api.post(f"/api/v1/models/{model['id']}/runs", json={})
    assert response.status_code == 422
    assert response.json()["field"] == "dataset" and "Choose a dataset" in response.json()["detail"]
    assert ok(api.get("/api/v1/runs")) == []


def test_an_output_that_does_not_fit_the_data_is_refused_at_the_output_layer(api):
    iris = add_builtin(api, "iris")
    model = create_model(api, "regression")  # one linear unit; iris has three classes
    attach(api, model["id"], iris["id"])
    output = ok(api.get(f"/api/v1/models/{model['id']}"))["layers"][-1]
    response = api.post(f"/api/v1/models/{model['id']}/runs", json={})
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["layer_id"] == output["id"] and error["field"] == "units"
    assert "3 classes" in error["detail"] and "Set its units to 3" in error["detail"]
    assert [i["layer_id"] for i in error["issues"]] == [output["id"]]
    assert ok(api.get("/api/v1/runs")) == []


def test_another_workspaces_run_is_invisible(digits_run, api):
    _, started = digits_run
    run_id = started["id"]
    for method, path in (("get", f"/api/v1/runs/{run_id}"), ("get", f"/api/v1/runs/{run_id}/model"),
                         ("get", f"/api/v1/runs/{run_id}/events"), ("post", f"/api/v1/runs/{run_id}/stop"),
                         ("post", f"/api/v1/runs/{run_id}/resume")):
        response = getattr(api, method)(path)
        assert response.status_code == 404, (path, response.text)
        assert f"no run {run_id}" in response.json()["detail"]
    assert ok(api.get("/api/v1/runs")) == []


# --- the queue: the active-run limit, stopping, killing ------------------------------------------------------

LONG = 1000  # epochs: far more than any test waits for; such runs are stopped or killed


def test_runs_beyond_the_active_limit_get_429_and_stop_cancels_queued_and_running_runs(api, server, circle_model):
    limit = server.app.state.settings.max_active_runs_per_workspace
    first = start_run(api, circle_model["id"], epochs=LONG)
    queued = [start_run(api, circle_model["id"], epochs=2) for _ in range(limit - 1)]
    assert first["state"] in ACTIVE
    assert [r["state"] for r in queued] == ["queued"] * (limit - 1)  # one running run per workspace
    positions = [r["queue_position"] for r in queued]
    assert positions == list(range(positions[0], positions[0] + limit - 1)) and positions[0] >= 1

    refused = api.post(f"/api/v1/models/{circle_model['id']}/runs", json={"epochs": 2})
    assert refused.status_code == 429, refused.text
    assert f"already has {limit} runs queued or running" in refused.json()["detail"]
    assert len(ok(api.get("/api/v1/runs"))) == limit

    for run in queued:
        stopped = ok(api.post(f"/api/v1/runs/{run['id']}/stop"))
        assert stopped["state"] == "cancelled" and stopped["reason"] == "Stopped before it started."
        assert stopped["epochs_done"] == 0
    again = api.post(f"/api/v1/runs/{queued[0]['id']}/stop")
    assert again.status_code == 409 and "only queued or running runs can be stopped" in again.json()["detail"]

    training = wait_for_run(api, first["id"], lambda r: r["epochs_done"] >= 2 or r["state"] not in ACTIVE)
    assert training["state"] == "running", training["reason"]
    asked = time.monotonic()
    ok(api.post(f"/api/v1/runs/{first['id']}/stop"))
    run = wait_for_run(api, first["id"], timeout=10, interval=0.05)
    took = time.monotonic() - asked
    assert run["state"] == "cancelled", run["reason"]
    assert took < 3.0, f"the stop took {took:.1f} s"
    assert "Stopped on request" in run["reason"]
    assert run["epochs_done"] >= training["epochs_done"] >= 2
    assert trained_epochs(run) == list(range(1, run["epochs_done"] + 1))
    assert run["epochs_done"] < LONG and run["evaluation"] is None

    # Every epoch it kept can be resumed from, tested and downloaded, and says which epoch it is.
    done = run["epochs_done"]
    assert run["resumable"] and run["saved_epoch"] == done
    assert run["model_url"] == f"/api/v1/runs/{first['id']}/model"
    assert (run["model_epoch"], run["model_is_final"]) == (done, False)
    download = api.get(run["model_url"])
    assert download.status_code == 200 and download.content[:2] == b"PK"
    assert f"-run{first['id']}-epoch{done}.keras" in download.headers["content-disposition"]
    tested = ok(api.post(f"/api/v1/runs/{first['id']}/evaluate"))
    assert tested["available"] and tested["model_epoch"] == done and tested["accuracy"] is not None
    assert get_run(api, first["id"])["evaluation"]["model_epoch"] == done


def test_killed_worker_fails_its_run_and_the_next_queued_run_completes(api, server, circle_model):
    victim = start_run(api, circle_model["id"], epochs=LONG)
    after = start_run(api, circle_model["id"], epochs=2)
    assert after["state"] == "queued"  # one running run per workspace
    wait_for_run(api, victim["id"], lambda r: r["epochs_done"] >= 1 or r["state"] not in ACTIVE)
    pid = server.app.state.scheduler.executor.pid(victim["id"])
    assert pid is not None
    os.kill(pid, signal.SIGKILL)

    killed = wait_for_run(api, victim["id"], timeout=15)
    assert killed["state"] == "failed"
    assert "stopped unexpectedly" in killed["reason"] and "killed" in killed["reason"]
    assert killed["epochs_done"] >= 1 and trained_epochs(killed) == list(range(1, killed["epochs_done"] + 1))

    finished = wait_for_run(api, after["id"])
    assert finished["state"] == "completed", finished["reason"]
    assert finished["epochs_done"] == 2 and finished["evaluation"]["available"] is True
    assert finished["started_at"] >= killed["finished_at"]


def test_a_huge_learning_rate_ends_diverged_not_completed(api):
    model = model_on(api, "plane", "regression", n_samples=200)
    started = start_run(api, model["id"], optimizer="sgd", learning_rate=1e6, epochs=5)
    run = wait_for_run(api, started["id"])
    assert run["state"] == "diverged", (run["state"], run["reason"])
    assert "training diverged" in run["reason"] and "Lower the learning rate" in run["reason"]
    assert run["model_url"] is None and run["evaluation"] is None
    assert api.get(f"/api/v1/runs/{run['id']}/model").status_code == 404


# --- Server-Sent Events, on a small regression run ----------------------------------------------------------

PLANE_EPOCHS = 3


@pytest.fixture(scope="module")
def plane_run(server: TestClient) -> tuple[TestClient, dict]:
    client = workspace_client(server)
    model = model_on(client, "plane", "regression", n_samples=200)
    return client, start_run(client, model["id"], epochs=PLANE_EPOCHS)


def test_event_stream_is_ordered_and_resumes_after_last_event_id(plane_run):
    client, started = plane_run
    # Read until the first epoch, drop the connection, and reconnect from the last event seen.
    head = read_events(client, started["id"], stop=lambda e: e.type == "epoch")
    assert get_run(client, started["id"])["state"] == "running"
    tail = read_events(client, started["id"], last_event_id=head[-1].id)
    whole = read_events(client, started["id"])  # after the end: the full record
    assert [(e.id, e.type, e.data) for e in head + tail] == [(e.id, e.type, e.data) for e in whole]

    ids = [e.id for e in whole]
    assert ids == sorted(set(ids))
    types = [e.type for e in whole]
    assert types[0] == "state" and whole[0].data["state"] == "running"
    assert types[-2:] == ["finished", "state"] and whole[-1].data["state"] == "completed"
    assert types.index("started") < types.index("epoch")
    assert [e.data["epoch"] for e in whole if e.type == "epoch"] == list(range(1, PLANE_EPOCHS + 1))
    assert max(i for i, t in enumerate(types) if t == "epoch") < types.index("finished")
    assert whole[-2].data["state"] == "completed" and whole[-2].data["epochs_done"] == PLANE_EPOCHS

    # Resuming from a middle event gives exactly the events after it.
    middle = len(whole) // 2
    rest = read_events(client, started["id"], last_event_id=whole[middle].id)
    assert [e.id for e in rest] == ids[middle + 1:]
    # An id past any a database can hold (PostgreSQL's ids are 32-bit) means nothing is left, not an error.
    assert read_events(client, started["id"], last_event_id=2**40) == []


def test_regression_run_reports_residuals(plane_run):
    client, started = plane_run
    run = wait_for_run(client, started["id"])
    assert run["state"] == "completed" and run["epochs_done"] == PLANE_EPOCHS
    assert run["config"]["loss"] == "mean_squared_error"
    for epoch in run["metrics"]["epochs"]:
        assert set(epoch["logs"]) >= {"loss", "mae", "val_loss", "val_mae"}
    val_losses = [e["logs"]["val_loss"] for e in run["metrics"]["epochs"]]
    assert run["best_epoch"] == 1 + val_losses.index(min(val_losses))
    evaluation = run["evaluation"]
    assert evaluation["task"] == "regression" and "confusion_matrix" not in evaluation
    residuals = evaluation["residuals"]
    assert residuals["count"] == residuals["finite"] == evaluation["test_samples"] == 30
    assert residuals["r2"] is not None and residuals["mae"] >= 0 and residuals["rmse"] >= residuals["mae"]
    pairs = evaluation["predicted_vs_true"]
    assert len(pairs["true"]) == len(pairs["predicted"]) == evaluation["test_samples"]


def test_batch_events_count_steps_within_the_epoch(plane_run):
    # 140 training samples make 5 batches an epoch, fewer than one steps_per_execution chunk (8).
    client, started = plane_run
    wait_for_run(client, started["id"])
    batches = [e.data for e in read_events(client, started["id"]) if e.type == "batch"]
    assert batches
    for batch in batches:
        assert 1 <= batch["step"] <= batch["steps"], batch
        assert batch["global_step"] == (batch["epoch"] - 1) * batch["steps"] + batch["step"], batch


# --- a server restart mid-run ---------------------------------------------------------------------------------

RESTART_EPOCHS = 60  # a few seconds after the first checkpoint, at batch size 16


@pytest.fixture(scope="module")
def restart(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Start a long run, shut the server down mid-run, start a new server on the same data and resume.

    Returns what the API said along the way: the run after the restart, the resume answer, the run at the end.
    """
    data_dir = tmp_path_factory.mktemp("restart")
    with TestClient(app_without_warm_up(Settings(data_dir=data_dir))) as first_server:
        client = workspace_client(first_server)
        model = model_on(client, "circle", "dense", n_samples=200, noise=0.05)
        run_id = start_run(client, model["id"], epochs=RESTART_EPOCHS, batch_size=16)["id"]
        events_thread = next(t for t in threading.enumerate() if t.name == f"layerlab-run-{run_id}-events")
        # A resume needs a saved epoch: wait for the first checkpoint, then stop the server.
        seen = read_events(client, run_id, stop=lambda e: e.type == "checkpoint")
        assert seen[-1].type == "checkpoint"
        before = get_run(client, run_id)
        assert before["state"] == "running"
    # The lifespan's shutdown killed the worker; let the old server's event thread finish, as a
    # real restart would, before the new server opens the database.
    events_thread.join(timeout=15)
    assert not events_thread.is_alive()
    with TestClient(app_without_warm_up(Settings(data_dir=data_dir))) as second_server:
        second_server.headers["Authorization"] = client.headers["Authorization"]
        after = get_run(second_server, run_id)
        resumed = second_server.post(f"/api/v1/runs/{run_id}/resume")
        final = wait_for_run(second_server, run_id, timeout=120) if resumed.status_code == 200 else None
    return {"before": before, "after": after, "resumed": resumed, "final": final}


def test_a_run_cut_short_by_a_restart_is_interrupted(restart):
    after = restart["after"]
    assert after["state"] == "interrupted", (after["state"], after["reason"])
    assert "server stopped" in after["reason"]


def test_finished_epochs_survive_a_restart(restart):
    after = restart["after"]
    assert after["state"] not in ACTIVE
    assert 1 <= after["epochs_done"] < RESTART_EPOCHS
    assert trained_epochs(after) == list(range(1, after["epochs_done"] + 1))
    assert after["evaluation"] is None
    # Its last saved epoch can be tested and downloaded, and says which epoch it is.
    assert after["model_url"] and not after["model_is_final"] and after["model_epoch"] == after["saved_epoch"]


def test_a_restarted_run_resumes_to_its_last_epoch(restart):
    resumed = restart["resumed"]
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["state"] in ACTIVE
    final = restart["final"]
    assert final["state"] == "completed", final["reason"]
    assert final["epochs_done"] == RESTART_EPOCHS
    assert trained_epochs(final) == list(range(1, RESTART_EPOCHS + 1))
    assert final["evaluation"]["available"] is True and final["model_url"]


def test_a_training_process_serves_run_after_run_with_the_same_results(api, server):
    """Importing TensorFlow costs more than a small run: a finished run's process takes the next one,
    and a run trained by a reused process is the run a fresh process would have trained."""
    executor = server.app.state.scheduler.executor
    model = model_on(api, "circle", "dense", n_samples=200)
    pids, losses = [], []
    for _ in range(2):
        run = start_run(api, model["id"], epochs=2, seed=3, batch_size=16)
        wait_for_run(api, run["id"], lambda r: r["state"] != "queued")
        pids.append(executor.pid(run["id"]))
        finished = wait_for_run(api, run["id"])
        assert finished["state"] == "completed", finished["reason"]
        losses.append([e["logs"]["loss"] for e in finished["metrics"]["epochs"]])
    assert pids[0] is not None and pids[0] == pids[1]
    assert losses[0] == losses[1]
