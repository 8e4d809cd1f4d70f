"""Run history, comparison and restoring over the API, on real short runs of a small dense model."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.web.live_server import get_run, model_on, ok, start_run, wait_for_run, workspace_client

pytestmark = [pytest.mark.slow, pytest.mark.both_databases]  # slow: three real training runs

SETTINGS = {"epochs": 3, "batch_size": 32}
CIRCLE_CLASSES = ["outside", "inside"]


@pytest.fixture(scope="module")
def three_runs(server: TestClient) -> tuple[TestClient, dict, list[dict]]:
    """relu; then tanh in the first hidden layer; then the same with another optimizer."""
    client = workspace_client(server)
    model = model_on(client, "circle", "dense", n_samples=300, noise=0.05)
    first_hidden = next(layer for layer in model["layers"] if layer["type"] == "Dense")
    finished = [wait_for_run(client, start_run(client, model["id"], **SETTINGS)["id"])]
    ok(client.patch(f"/api/v1/models/{model['id']}/layers/{first_hidden['id']}",
                    json={"params": {"activation": "tanh"}}))
    finished.append(wait_for_run(client, start_run(client, model["id"], **SETTINGS)["id"]))
    finished.append(wait_for_run(client, start_run(client, model["id"], **SETTINGS, optimizer="rmsprop")["id"]))
    assert [run["state"] for run in finished] == ["completed"] * 3
    return client, model, finished


def test_history_names_each_run_by_what_changed_since_the_previous(three_runs):
    client, model, finished = three_runs
    rows = ok(client.get("/api/v1/runs", params={"model_id": model["id"], "sort": "created"}))
    assert [row["id"] for row in rows] == [run["id"] for run in finished]
    assert [row["name"] for row in rows] == ["Net · first run", "Net · tanh instead of relu in dense",
                                            "Net · optimizer adam → rmsprop"]
    assert rows[0]["changes_from_previous"] == [] and rows[0]["previous_run_id"] is None
    assert rows[1]["changes_from_previous"] == [{"path": "layers.dense.activation", "from": "relu", "to": "tanh",
                                                 "kind": "changed", "text": "tanh instead of relu in dense"}]
    assert rows[2]["previous_run_id"] == finished[1]["id"]
    for row in rows:
        assert "dense: Dense 64, tanh" in row["architecture"] or "dense: Dense 64, relu" in row["architecture"]
        assert row["params"] == 4_417  # 2*64+64 + 64*64+64 + 64*1+1 (one sigmoid unit for two classes)
        assert row["best"]["metric"] == "val_accuracy" and 1 <= row["best"]["epoch"] <= 3
        assert row["test"]["metric"] == "accuracy" and 0 <= row["test"]["value"] <= 1
        assert row["duration_s"] > 0


def test_history_filters_and_sorts(three_runs, server):
    client, _, finished = three_runs
    by_test = ok(client.get("/api/v1/runs", params={"sort": "-test"}))
    values = [row["test"]["value"] for row in by_test]
    assert values == sorted(values, reverse=True)
    assert ok(client.get("/api/v1/runs", params={"state": "failed"})) == []
    assert len(ok(client.get("/api/v1/runs", params={"dataset_id": finished[0]["dataset_id"]}))) == 3
    assert ok(client.get("/api/v1/runs", params={"model_id": 2**63})) == []
    refused = client.get("/api/v1/runs", params={"sort": "colour"})
    assert refused.status_code == 422 and "sort" in refused.json()["detail"]
    refused = client.get("/api/v1/runs", params={"state": "sleeping"})
    assert refused.status_code == 422 and "queued" in refused.json()["detail"]
    assert ok(workspace_client(server).get("/api/v1/runs")) == []  # another workspace sees none of them


def test_renaming_and_notes_are_kept_and_bounded(three_runs):
    client, _, finished = three_runs
    run_id = finished[0]["id"]
    renamed = ok(client.patch(f"/api/v1/runs/{run_id}", json={"name": "  baseline  relu ", "notes": "first try"}))
    assert (renamed["name"], renamed["named"], renamed["notes"]) == ("baseline relu", True, "first try")
    too_long = client.patch(f"/api/v1/runs/{run_id}", json={"name": "x" * 81})
    assert too_long.status_code == 422 and "at most 80 characters" in too_long.json()["detail"]
    assert client.patch(f"/api/v1/runs/{run_id}", json={"colour": "red"}).status_code == 422
    assert get_run(client, run_id)["name"] == "baseline relu"
    back = ok(client.patch(f"/api/v1/runs/{run_id}", json={"name": ""}))
    assert (back["name"], back["named"], back["notes"]) == ("Net · first run", False, "first try")


def test_compare_aligns_epochs_and_states_the_change_and_its_effect(three_runs):
    client, _, finished = three_runs
    ids = [run["id"] for run in finished]
    compared = ok(client.get("/api/v1/runs/compare", params={"ids": ",".join(map(str, ids))}))
    assert [run["id"] for run in compared["runs"]] == ids
    assert compared["epochs"] == 3 and {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(compared["metrics"])
    assert len({run["colour"] for run in compared["runs"]}) == 3
    first, tanh, rmsprop = compared["runs"]
    assert first["changes"] == [] and first["summary"] is None
    assert tanh["changes"] == [{"path": "layers.dense.activation", "from": "relu", "to": "tanh", "kind": "changed",
                                "text": "tanh instead of relu in dense"}]
    assert {c["path"] for c in rmsprop["changes"]} == {"layers.dense.activation", "settings.optimizer"}
    points = 100 * (tanh["test_metrics"]["accuracy"] - first["test_metrics"]["accuracy"])
    assert tanh["summary"]["text"].startswith(f"Tanh instead of relu in dense: test accuracy {points:+.1f} points")
    assert [len(run["metrics"]["epochs"]) for run in compared["runs"]] == [3, 3, 3]
    assert [row["name"] for row in compared["classes"]] == CIRCLE_CLASSES
    assert all(len(row["f1"]) == 3 for row in compared["classes"])


@pytest.mark.parametrize("ids,message", [
    ("1", "Choose 2 to 8 different runs"),
    ("1,1", "Choose 2 to 8 different runs"),
    (",".join(str(i) for i in range(1, 10)), "Choose 2 to 8 different runs"),
    ("1,two", "run ids separated by commas"),
])
def test_compare_refuses_bad_id_lists(three_runs, ids, message):
    client = three_runs[0]
    refused = client.get("/api/v1/runs/compare", params={"ids": ids})
    assert refused.status_code == 422 and message in refused.json()["detail"]
    assert refused.json()["field"] == "ids"


def test_compare_with_another_workspaces_run_reveals_nothing(three_runs, server):
    client, _, finished = three_runs
    stranger = workspace_client(server)
    ids = f"{finished[0]['id']},{finished[1]['id']}"
    refused = stranger.get("/api/v1/runs/compare", params={"ids": ids})
    assert refused.status_code == 404 and "no run" in refused.json()["detail"]
    assert client.get("/api/v1/runs/compare", params={"ids": f"{finished[0]['id']},{2**62}"}).status_code == 404


def test_restore_makes_a_model_from_the_run_graph_with_its_dataset(three_runs):
    client, model, finished = three_runs
    restored = ok(client.post(f"/api/v1/runs/{finished[0]['id']}/restore"), 201)
    assert restored["id"] != model["id"] and restored["name"] == f"Net (run {finished[0]['id']})"
    activations = [layer["params"]["activation"] for layer in restored["layers"] if layer["type"] == "Dense"]
    assert activations[0] == "relu"  # the graph the first run trained, not the model's tanh of today
    retrained = wait_for_run(client, start_run(client, restored["id"], epochs=1)["id"])  # its data came along
    assert (retrained["state"], retrained["dataset_id"]) == ("completed", finished[0]["dataset_id"])
    again = ok(client.post(f"/api/v1/runs/{finished[0]['id']}/restore"), 201)
    assert again["name"] == f"Net (run {finished[0]['id']}) 2"


# --- suggestions: a diverged run, its one suggestion, and applying it ------------------------------------------

def test_a_diverged_run_suggests_a_smaller_learning_rate_which_applies_as_a_variant(server):
    client = workspace_client(server)
    model = model_on(client, "plane", "regression", n_samples=200)
    diverged = wait_for_run(client, start_run(client, model["id"], optimizer="sgd", learning_rate=1e6, epochs=3)["id"])
    assert diverged["state"] == "diverged"
    found = ok(client.get(f"/api/v1/runs/{diverged['id']}/suggestions"))
    assert [s["key"] for s in found] == ["smaller-learning-rate"]
    assert found[0]["changes"] == [{"path": "settings.learning_rate", "from": 1e6, "to": 1e5}]
    assert "learning rate 1e+06" in found[0]["reason"]

    refused = client.post(f"/api/v1/runs/{diverged['id']}/suggestions/dropout/apply")
    assert refused.status_code == 404 and "its suggestions are: smaller-learning-rate" in refused.json()["detail"]
    stranger = workspace_client(server)
    assert stranger.post(f"/api/v1/runs/{diverged['id']}/suggestions/smaller-learning-rate/apply").status_code == 404
    assert len(ok(client.get("/api/v1/models"))) == 1  # nothing was made by the refused requests

    applied = ok(client.post(f"/api/v1/runs/{diverged['id']}/suggestions/smaller-learning-rate/apply"), 201)
    variant = ok(client.get(f"/api/v1/models/{applied['model_id']}"))
    assert variant["name"] == "Net - smaller-learning-rate"
    assert [layer["params"] for layer in variant["layers"]] == [n["params"] for n in diverged["graph"]["nodes"]]
    queued = get_run(client, applied["run_id"])
    assert queued["model_id"] == applied["model_id"] and queued["config"]["learning_rate"] == 1e5
    assert queued["config"]["optimizer"] == "sgd" and queued["config"]["epochs"] == 3  # the rest unchanged
    wait_for_run(client, applied["run_id"])
    row = next(r for r in ok(client.get("/api/v1/runs")) if r["id"] == applied["run_id"])
    assert row["previous_run_id"] == diverged["id"]  # a variant's first run is compared with its source
    assert row["name"] == "Net - smaller-learning-rate · learning rate 1e+06 → 100000"


def test_balanced_class_weights_train_and_are_refused_for_numbers(server):
    client = workspace_client(server)
    circle = model_on(client, "circle", "dense", n_samples=200)
    run = wait_for_run(client, start_run(client, circle["id"], epochs=2, class_weight="balanced")["id"])
    assert run["state"] == "completed" and run["config"]["class_weight"] == "balanced"
    plane = model_on(client, "plane", "regression", n_samples=200)
    refused = client.post(f"/api/v1/models/{plane['id']}/runs", json={"class_weight": "balanced"})
    assert refused.status_code == 422 and refused.json()["field"] == "class_weight"
    assert "regression task" in refused.json()["detail"]
