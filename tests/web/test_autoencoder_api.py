"""An autoencoder over the API and on its run page: the suggested settings train it with target input, the test
reports reconstruction errors with a picture of originals and reconstructions, and the label views refuse it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.browser_like import BrowserLikeClient
from tests.web.live_server import add_builtin, attach, create_model, ok, start_run, wait_for_run, workspace_client

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def autoencoder_run(server: TestClient) -> tuple[TestClient, dict]:
    client = BrowserLikeClient(server.app)  # a browser's session, so that the run page can be read too
    client.portal = server.portal
    made = client.post("/models", data={"name": "Autoencoder", "starter": "autoencoder"}, follow_redirects=False)
    model_id = int(made.headers["location"].rstrip("/").rsplit("/", 1)[1])
    attached = attach(client, model_id, add_builtin(client, "digits28")["id"])
    assert attached["suggested_config"]["target"] == "input"
    run = wait_for_run(client, start_run(client, model_id, epochs=2, seed=3)["id"])
    assert run["state"] == "completed", run["reason"]
    return client, run | {"model_id": model_id}


def test_the_suggested_settings_reconstruct_and_the_test_shows_it(autoencoder_run):
    client, run = autoencoder_run
    assert run["config"]["target"] == "input" and run["config"]["loss"] == "mean_squared_error"
    evaluation = run["evaluation"]
    assert evaluation["task"] == "reconstruction" and evaluation["reconstruction"]["image"] == "reconstructions.png"
    picture = client.get(f"/api/v1/runs/{run['id']}/reconstructions.png")
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    page = client.get(f"/runs/{run['id']}").text
    assert 'id="reconstructions"' in page and "Mean squared error per test sample" in page
    assert '<span id="run-device">on CPU</span>' in page  # what the worker trained on


def test_label_views_of_a_reconstruction_run_are_refused_with_the_reason(autoencoder_run):
    client, run = autoencoder_run
    for path in ("confusion/0/1", "samples/0", "errors"):
        answer = client.get(f"/api/v1/runs/{run['id']}/{path}")
        assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text)
        assert "input" in answer.json()["detail"], (path, answer.json())


def test_a_run_with_labels_has_no_reconstructions_image(server):
    client = workspace_client(server)
    model = create_model(client, "dense")
    attach(client, model["id"], add_builtin(client, "digits28")["id"], fit_output=True)
    run = wait_for_run(client, start_run(client, model["id"], epochs=1)["id"])
    answer = client.get(f"/api/v1/runs/{run['id']}/reconstructions.png")
    assert answer.status_code == 404 and "target input" in ok(answer, 404)["detail"]


def test_a_search_cannot_rank_reconstructions_by_accuracy(autoencoder_run):
    client, run = autoencoder_run
    searches = ok(client.get("/api/v1/searches"))
    refused = client.post(f"/api/v1/models/{run['model_id']}/searches",
                          json={"axes": {"learning_rate": [0.001, 0.01]}, "metric": "val_accuracy"})
    assert refused.status_code == 422 and refused.json()["field"] == "metric"
    assert "Choose the metric val_loss or loss" in refused.json()["detail"]
    assert ok(client.get("/api/v1/searches")) == searches
