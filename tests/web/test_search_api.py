"""Variant searches over the API: a real grid of 4 small dense variants on a generated 2-D set runs to the
end and ranks its trials by their metric; Optuna proposes within its budget; bad requests change nothing."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.core.search import parse_spec, trial_changes
from app.core.starters import STARTERS
from app.services.improving import apply_changes
from tests.web.live_server import app_without_warm_up, get_run, model_on, ok, read_events, workspace_client

pytestmark = pytest.mark.slow  # real training runs

SEARCH_TIMEOUT_S = 240


def wait_for_search(client: TestClient, search_id: int, timeout: float = SEARCH_TIMEOUT_S) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        search = ok(client.get(f"/api/v1/searches/{search_id}"))
        if search["state"] != "running":
            return search
        time.sleep(0.3)
    raise AssertionError(f"search {search_id} still running after {timeout} s: {search}")


@pytest.fixture(scope="module")
def grid_search(server: TestClient) -> tuple[TestClient, dict, dict]:
    client = workspace_client(server)
    model = model_on(client, "circle", "dense", n_samples=300, noise=0.05)
    body = {"axes": {"activation": ["relu", "tanh"], "learning_rate": [0.01, 0.0001]},
            "budget": {"runs": 4, "epochs": 3}, "strategy": "grid", "metric": "val_accuracy"}
    started = ok(client.post(f"/api/v1/models/{model['id']}/searches", json=body), 201)
    return client, model, started


def test_a_grid_search_trains_every_point_and_ranks_them(grid_search):
    client, _, started = grid_search
    assert started["state"] == "running" and started["budget"] == {"runs": 4, "epochs": 3}
    # One run slot is left for the learner: at most 4 of the workspace's 5 are the search's.
    assert 1 <= sum(t["run_id"] is not None for t in started["trials"]) <= 4
    search = wait_for_search(client, started["id"])
    assert search["state"] == "completed", search
    trials = search["trials"]
    assert [t["params"] for t in trials] == [
        {"activation": "relu", "learning_rate": 0.01}, {"activation": "relu", "learning_rate": 0.0001},
        {"activation": "tanh", "learning_rate": 0.01}, {"activation": "tanh", "learning_rate": 0.0001}]
    assert [t["state"] for t in trials] == ["completed"] * 4
    for trial in trials:
        run = get_run(client, trial["run_id"])
        assert run["config"]["epochs"] == 3 and run["config"]["learning_rate"] == trial["params"]["learning_rate"]
        assert f"dense: Dense 64, {trial['params']['activation']}" in run["architecture"]
        best = max(e["logs"]["val_accuracy"] for e in run["metrics"]["epochs"])
        assert trial["value"] == pytest.approx(best)
        assert run["name"].startswith(f"Net · search {search['id']} trial {trial['number']}: activation ")
    expected = sorted(trials, key=lambda t: (-t["value"], t["number"]))
    assert search["ranking"] == [t["number"] for t in expected]
    assert search["best"]["number"] == search["ranking"][0]


def test_a_finished_search_cannot_be_stopped_and_is_not_anyone_elses(grid_search, server):
    client, _, started = grid_search
    wait_for_search(client, started["id"])
    refused = client.post(f"/api/v1/searches/{started['id']}/stop")
    assert refused.status_code == 409 and "only a running search can be stopped" in refused.json()["detail"]
    stranger = workspace_client(server)
    assert stranger.get(f"/api/v1/searches/{started['id']}").status_code == 404
    assert stranger.get(f"/api/v1/searches/{2**63}").status_code == 404


def test_optuna_proposes_distinct_trials_within_the_budget_and_can_be_stopped(server):
    client = workspace_client(server)
    model = model_on(client, "circle", "dense", n_samples=200)
    body = {"axes": {"activation": ["relu", "tanh", "sigmoid"], "batch_size": [16, 32, 64]},
            "budget": {"runs": 3, "epochs": 1}, "strategy": "optuna", "metric": "val_loss"}
    search = wait_for_search(client, ok(client.post(f"/api/v1/models/{model['id']}/searches", json=body), 201)["id"])
    assert search["state"] == "completed" and len(search["trials"]) == 3
    assert len({tuple(sorted(t["params"].items())) for t in search["trials"]}) == 3
    values = [t["value"] for t in search["trials"]]
    assert search["ranking"] == sorted(range(1, 4), key=lambda n: (values[n - 1], n))  # val_loss: lowest first

    body["budget"] = {"runs": 6, "epochs": 20}
    running = ok(client.post(f"/api/v1/models/{model['id']}/searches", json=body), 201)
    stopped = ok(client.post(f"/api/v1/searches/{running['id']}/stop"))
    assert stopped["state"] == "cancelled"
    deadline = time.monotonic() + 60  # a running trial stops after its current batch
    final = ok(client.get(f"/api/v1/searches/{running['id']}"))
    while any(t["state"] in ("queued", "running") for t in final["trials"]) and time.monotonic() < deadline:
        time.sleep(0.2)
        final = ok(client.get(f"/api/v1/searches/{running['id']}"))
    assert all(t["state"] in ("cancelled", "completed") for t in final["trials"]), final["trials"]
    assert final["state"] == "cancelled"
    assert len(final["trials"]) <= 4  # nothing proposed after the stop


@pytest.mark.parametrize("body,field,message", [
    ({"axes": {}}, "axes", "Choose at least one axis"),
    ({"axes": {"colour": ["red"]}}, "axes", "There is no axis"),
    ({"axes": {"activation": ["relu", "swishy"]}}, "axes.activation", "one of"),
    ({"axes": {"learning_rate": [0, 0.1]}}, "axes.learning_rate", "learning_rate"),
    ({"axes": {"width": [0.1]}}, "axes.width", "a factor between 0.25 and 4"),
    ({"axes": {"depth": [-1, 2]}}, "axes.depth", "-1 (one fewer hidden layer), 0 or 1"),
    ({"axes": {"activation": ["relu"]}, "budget": {"runs": 25}}, "budget.runs", "between 1 and 24"),
    ({"axes": {"activation": ["relu", "tanh", "elu"], "optimizer": ["adam", "sgd"]}, "budget": {"runs": 4}},
     "budget.runs", "The full grid has 6 combinations but the search may make only 4 runs: allow 6 runs"),
])
def test_bad_search_requests_name_the_field_and_start_nothing(server, body, field, message):
    client = workspace_client(server)
    model = model_on(client, "circle", "dense", n_samples=200)
    refused = client.post(f"/api/v1/models/{model['id']}/searches", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == field and message in refused.json()["detail"]
    assert ok(client.get("/api/v1/searches")) == [] and ok(client.get("/api/v1/runs")) == []


def test_trial_changes_for_depth_width_and_dropout_build_the_expected_graph():
    graph = STARTERS["dense"].graph()
    spec = parse_spec({"axes": {"depth": [-1, 1], "width": [2], "dropout": [0.25]}, "budget": {"runs": 2},
                       "strategy": "grid"}, graph, 24)
    deeper, _ = apply_changes(graph, trial_changes(graph, {}, spec.grid()[1]))
    assert [(n.type, n.params.get("units"), n.params.get("rate")) for n in deeper.nodes] == [
        ("Input", None, None), ("Flatten", None, None), ("Dense", 128, None), ("Dense", 128, None),
        ("Dense", 128, None), ("Dropout", None, 0.25), ("Dense", 10, None)]
    shallower, _ = apply_changes(graph, trial_changes(graph, {}, spec.grid()[0]))
    assert [(n.type, n.params.get("units"), n.params.get("rate")) for n in shallower.nodes] == [
        ("Input", None, None), ("Flatten", None, None), ("Dense", 128, None), ("Dropout", None, 0.25),
        ("Dense", 10, None)]


def test_a_search_cut_short_by_a_restart_is_interrupted_and_resumes(tmp_path):
    data_dir = tmp_path / "data"
    body = {"axes": {"activation": ["relu", "tanh"]}, "budget": {"runs": 2, "epochs": 12}, "strategy": "grid"}
    with TestClient(app_without_warm_up(Settings(data_dir=data_dir))) as first_server:
        client = workspace_client(first_server)
        model = model_on(client, "circle", "dense", n_samples=300, noise=0.05)
        search = ok(client.post(f"/api/v1/models/{model['id']}/searches", json={**body, "settings": {"batch_size": 8}}),
                    201)
        first_run = search["trials"][0]["run_id"]
        events_thread = next(t for t in threading.enumerate() if t.name == f"layerlab-run-{first_run}-events")
        read_events(client, first_run, stop=lambda e: e.type == "checkpoint")  # a saved epoch to resume from
    events_thread.join(timeout=15)
    with TestClient(app_without_warm_up(Settings(data_dir=data_dir))) as second_server:
        second_server.headers["Authorization"] = client.headers["Authorization"]
        after = ok(second_server.get(f"/api/v1/searches/{search['id']}"))
        assert after["state"] == "interrupted" and "Resume the search" in after["reason"]
        assert after["trials"][0]["state"] == "interrupted"
        resumed = ok(second_server.post(f"/api/v1/searches/{search['id']}/resume"))
        assert resumed["state"] == "running"
        final = wait_for_search(second_server, search["id"])
    assert final["state"] == "completed" and [t["state"] for t in final["trials"]] == ["completed", "completed"]
    assert len(final["ranking"]) == 2


def test_a_diverged_trial_is_shown_as_such_and_the_others_go_on(server):
    client = workspace_client(server)
    model = model_on(client, "plane", "regression", n_samples=200)
    body = {"axes": {"learning_rate": [1e6, 0.01]}, "budget": {"runs": 2, "epochs": 2}, "strategy": "grid",
            "metric": "val_loss", "settings": {"optimizer": "sgd"}}
    search = wait_for_search(client, ok(client.post(f"/api/v1/models/{model['id']}/searches", json=body), 201)["id"])
    assert search["state"] == "completed"
    diverged, healthy = search["trials"]
    assert diverged["state"] == "diverged" and diverged["value"] is None and "diverged" in diverged["reason"]
    assert healthy["state"] == "completed" and healthy["value"] is not None
    assert search["ranking"] == [2] and search["best"]["number"] == 2
