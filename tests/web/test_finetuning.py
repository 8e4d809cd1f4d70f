"""Reusing a trained network over the API: a new model with a run's layers and weights, one layer frozen and
another changed, trains on from the kept weights where names and shapes allow, and the frozen layer does not
move; a model with every layer frozen is refused before it trains."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.web.live_server import model_on, ok, start_run, wait_for_run, workspace_client

pytestmark = pytest.mark.slow

keras = pytest.importorskip("keras")


def weights_of(client: TestClient, run_id: int, layer: str) -> list[np.ndarray]:
    """The layer's weights in the run's downloaded model, loaded by plain Keras."""
    with tempfile.NamedTemporaryFile(suffix=".keras") as file:
        file.write(client.get(f"/api/v1/runs/{run_id}/model").content)
        file.flush()
        model = keras.models.load_model(file.name, compile=False)
    return [np.asarray(w) for w in model.get_layer(layer).get_weights()]


@pytest.fixture(scope="module")
def trained(server: TestClient) -> tuple[TestClient, dict]:
    client = workspace_client(server)
    model = model_on(client, "digits28", "dense")
    run = wait_for_run(client, start_run(client, model["id"], epochs=2, seed=1)["id"])
    assert run["state"] == "completed", run["reason"]
    return client, run


def test_a_reused_run_trains_on_from_its_weights_with_a_frozen_layer(trained):
    client, source = trained
    reused = ok(client.post(f"/api/v1/runs/{source['id']}/reuse", json={"name": "Digits again"}), 201)
    assert reused["name"] == "Digits again" and reused["weights"]["layers"] == ["dense", "dense_1", "dense_2"]
    layers = {layer["name"]: layer["id"] for layer in reused["layers"]}
    ok(client.patch(f"/api/v1/models/{reused['id']}/layers/{layers['dense']}", json={"params": {"trainable": False}}))
    ok(client.patch(f"/api/v1/models/{reused['id']}/layers/{layers['dense_1']}", json={"params": {"units": 32}}))
    summary = ok(client.get(f"/api/v1/models/{reused['id']}/summary"))
    assert summary["non_trainable_params"] == 784 * 64 + 64  # the frozen layer, as Keras counts it

    run = wait_for_run(client, start_run(client, reused["id"], epochs=1, seed=2)["id"])
    assert run["state"] == "completed", run["reason"]
    assert run["dataset_id"] == source["dataset_id"]  # the reused model came with the run's data attached
    # dense_1 changed shape, so it and the output layer after it start fresh
    assert run["started_from"] == {"loaded": ["dense"], "fresh": ["dense_1", "dense_2"]}
    before, after = weights_of(client, source["id"], "dense"), weights_of(client, run["id"], "dense")
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))  # frozen: not one value moved
    assert not np.array_equal(weights_of(client, run["id"], "dense_2")[0][:32],
                              weights_of(client, source["id"], "dense_2")[0][:32])


def test_reuse_refusals_and_a_model_with_every_layer_frozen(trained, server):
    client, source = trained
    stranger = workspace_client(server)
    assert stranger.post(f"/api/v1/runs/{source['id']}/reuse").status_code == 404
    bad_name = client.post(f"/api/v1/runs/{source['id']}/reuse", json={"name": "x" * 80})
    assert bad_name.status_code == 422 and "name" in bad_name.json()["detail"]

    reused = ok(client.post(f"/api/v1/runs/{source['id']}/reuse"), 201)
    assert reused["name"] == f"Run {source['id']} reused"
    for layer in reused["layers"]:
        if layer["type"] == "Dense":
            ok(client.patch(f"/api/v1/models/{reused['id']}/layers/{layer['id']}",
                            json={"params": {"trainable": False}}))
    refused = client.post(f"/api/v1/models/{reused['id']}/runs", json={"epochs": 1})
    assert refused.status_code == 422 and "Every layer with weights is frozen" in refused.json()["detail"]
    assert refused.json()["layer_id"] == reused["layers"][-1]["id"]
