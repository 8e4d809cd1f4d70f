"""What was recorded inside a run, over the API and on its page: the records of a real run on a 2-D set, the
epochs filled in from the kept weights, the decision boundary and the units at an epoch, and the refusals."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.browser_like import BrowserLikeClient
from tests.web.live_server import add_builtin, attach, model_on, ok, start_run, wait_for_run, workspace_client

pytestmark = pytest.mark.slow  # trains small models


@pytest.fixture(scope="module")
def plane_run(server: TestClient) -> tuple[TestClient, dict]:
    client = workspace_client(server)
    model = model_on(client, "circle", "dense", n_samples=200)
    run = wait_for_run(client, start_run(client, model["id"], epochs=12, learning_rate=0.01)["id"])
    assert run["state"] == "completed", run["reason"]
    return client, run


def png(response) -> tuple[int, int]:
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(response.content)) as image:
        return image.size


def test_the_records_cover_the_run_with_epochs_filled_in_from_the_kept_weights(plane_run):
    client, run = plane_run
    inside = ok(client.get(f"/api/v1/runs/{run['id']}/internals"))
    assert inside["run_id"] == run["id"] and inside["plane"] is True
    kept = inside["snapshot_epochs"]  # a small model keeps the weights of the epochs its time budget allows
    assert kept[0] == 0 and kept[-1] == 12 and len(kept) >= 6
    epochs = [record["epoch"] for record in inside["records"]]
    assert epochs == kept  # what training had no time to record, the data worker filled in
    assert [layer["type"] for layer in inside["layers"]] == ["Dense", "Dense", "Dense"]
    first_hidden = inside["layers"][0]["id"]
    assert {"weights", "activations", "dead", "gradient_norm"} <= set(inside["records"][0]["layers"][first_hidden])
    assert "gradient_norm" not in inside["records"][-1]["layers"][first_hidden]  # only the first epochs
    assert isinstance(inside["findings"], list)
    again = ok(client.get(f"/api/v1/runs/{run['id']}/internals"))
    assert again["records"] == inside["records"]  # now from the cache


def test_the_boundary_and_the_units_at_an_epoch(plane_run):
    client, run = plane_run
    base = f"/api/v1/runs/{run['id']}"
    start, end = client.get(f"{base}/decision-boundary.png?epoch=0"), client.get(f"{base}/decision-boundary.png")
    assert png(start) == png(end) == (300, 300)
    assert start.headers["x-epoch"] == "0" and end.headers["x-epoch"] == "12" and start.content != end.content
    assert start.headers["cache-control"] == "private, no-cache"
    inside = ok(client.get(f"{base}/internals"))
    dense = inside["layers"][0]
    middle = inside["snapshot_epochs"][len(inside["snapshot_epochs"]) // 2]
    units = client.get(f"{base}/units/{dense['id']}.png?epoch={middle}")
    png(units)
    assert units.headers["x-epoch"] == str(middle)
    assert units.headers["x-channels-total"] == str(dense["output_shape"][-1])
    assert int(units.headers["x-channels-shown"]) == min(32, dense["output_shape"][-1])


def test_bad_epochs_layers_datasets_and_runs_are_refused_clearly(plane_run, server):
    client, run = plane_run
    base = f"/api/v1/runs/{run['id']}"
    missing = client.get(f"{base}/decision-boundary.png?epoch=40")
    assert missing.status_code == 422 and "no weights of epoch 40" in missing.json()["detail"]
    assert missing.json()["field"] == "epoch" and missing.json()["allowed"][-1] == 12
    negative = client.get(f"{base}/units/n2.png?epoch=-1")
    assert negative.status_code == 422 and "Invalid value for `epoch`" in negative.json()["detail"]
    inputs = client.get(f"{base}/units/n1.png")
    assert inputs.status_code == 422 and "only Dense layers do" in inputs.json()["detail"]
    unknown = client.get(f"{base}/units/n99.png")
    assert unknown.status_code == 404 and "has no layer 'n99'" in unknown.json()["detail"]
    stranger = workspace_client(server)
    assert stranger.get(f"{base}/internals").status_code == 404
    assert stranger.get(f"{base}/decision-boundary.png").status_code == 404

    table = model_on(stranger, "iris", "dense")
    quiet = wait_for_run(stranger, start_run(stranger, table["id"], epochs=2, record_internals=False)["id"])
    refused = stranger.get(f"/api/v1/runs/{quiet['id']}/internals")
    assert refused.status_code == 404 and "record_internals off" in refused.json()["detail"]
    flat = stranger.get(f"/api/v1/runs/{quiet['id']}/decision-boundary.png")
    assert flat.status_code == 422 and "two features" in flat.json()["detail"]
    assert "a table of numbers" in flat.json()["detail"]
    bad_setting = stranger.post(f"/api/v1/models/{table['id']}/runs", json={"record_internals": "sometimes"})
    assert bad_setting.status_code == 422 and "record_internals" in bad_setting.json()["detail"]


def test_the_run_page_shows_the_layers_the_gradient_profile_and_the_player(server):
    client = BrowserLikeClient(server.app)
    client.portal = server.portal
    made = client.post("/models", data={"name": "Net", "starter": "dense"}, follow_redirects=False)
    model_id = int(made.headers["location"].rstrip("/").rsplit("/", 1)[1])
    dataset = add_builtin(client, "xor", n_samples=200)
    attach(client, model_id, dataset["id"], fit_output=True)
    run = wait_for_run(client, start_run(client, model_id, epochs=4)["id"])
    page = client.get(f"/runs/{run['id']}").text
    assert 'id="internals"' in page and f'hx-get="/runs/{run["id"]}/internals"' in page  # loads on its own
    section = client.get(f"/runs/{run['id']}/internals", headers={"HX-Request": "true"})
    assert section.status_code == 200
    html = section.text
    assert html.count('class="layer-card"') == 3 and html.count('class="ridgeline"') == 6
    assert 'class="chart gradient-profile"' in html and 'id="plane-player"' in html
    assert 'data-epochs="[0, ' in html and ', 4]"' in html and 'id="units-' in html
    assert "every 4s" not in html  # an ended run is not polled
