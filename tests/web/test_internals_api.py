"""Inside a trained convnet over the API: feature maps, filters and saliency PNGs of a real tiny run on
digits28, and the clear refusals of bad layers, samples, datasets and runs."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.web.live_server import model_on, ok, start_run, wait_for_run, workspace_client

pytestmark = pytest.mark.slow  # trains a small convnet


@pytest.fixture(scope="module")
def convnet(server: TestClient) -> tuple[TestClient, dict, dict[str, str]]:
    client = workspace_client(server)
    model = model_on(client, "digits28", starter="convnet")
    run = wait_for_run(client, start_run(client, model["id"], epochs=1)["id"], timeout=120)
    assert run["state"] == "completed", run["reason"]
    layers = {layer["id"]: layer["type"] for layer in ok(client.get(f"/api/v1/models/{model['id']}"))["layers"]}
    return client, run, layers


def picture(response) -> tuple[int, int]:
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(response.content)) as image:
        return image.size


def ids(layers: dict[str, str], *types: str) -> list[str]:
    return [layer_id for layer_id, kind in layers.items() if kind in types]


def test_feature_maps_filters_and_saliency_of_a_trained_convnet(convnet):
    client, run, layers = convnet
    mapped = ids(layers, "Conv2D", "MaxPooling2D", "AveragePooling2D")
    assert len(mapped) == 5
    base = f"/api/v1/runs/{run['id']}"
    for layer_id in mapped:
        response = client.get(f"{base}/samples/3/feature-maps/{layer_id}.png")
        width, height = picture(response)
        shown, total = int(response.headers["x-channels-shown"]), int(response.headers["x-channels-total"])
        assert total in (32, 64) and shown == 32 and len(response.headers["x-channels"].split(",")) == 32
        assert width > 8 * 40 and height > 4 * 40  # 8 by 4 tiles of about 56 pixels
    again = client.get(f"{base}/samples/3/feature-maps/{mapped[0]}.png")  # from the cached file
    assert again.content == client.get(f"{base}/samples/3/feature-maps/{mapped[0]}.png").content
    first_conv = ids(layers, "Conv2D")[0]
    filters = client.get(f"{base}/filters/{first_conv}.png")
    assert picture(filters) == (8 * 57 + 9 * 2, 4 * 57 + 5 * 2)  # 32 kernels of 3x3, scaled by 19
    assert filters.headers["x-channels-shown"] == filters.headers["x-channels-total"] == "32"
    saliency = client.get(f"{base}/samples/3/saliency.png")
    assert picture(saliency) == (224, 224)
    assert saliency.headers["x-saliency-method"] == "grad-cam" and 0 <= int(saliency.headers["x-class"]) < 10


def test_bad_layers_samples_and_runs_are_refused_clearly(convnet, server):
    client, run, layers = convnet
    base = f"/api/v1/runs/{run['id']}"
    missing = client.get(f"{base}/samples/0/feature-maps/n99.png")
    assert missing.status_code == 404
    assert "n99" in missing.json()["detail"] and ids(layers, "Conv2D")[0] in missing.json()["detail"]
    dense = ids(layers, "Dense")[0]
    flat = client.get(f"{base}/samples/0/feature-maps/{ids(layers, 'Flatten')[0]}.png")
    assert flat.status_code == 422 and "Conv2D" in flat.json()["detail"]
    no_filters = client.get(f"{base}/filters/{ids(layers, 'MaxPooling2D')[0]}.png")
    assert no_filters.status_code == 422 and "filters" in no_filters.json()["detail"]
    assert client.get(f"{base}/filters/{dense}.png").status_code == 422
    test_size = run["evaluation"]["test_samples"]
    conv = ids(layers, "Conv2D")[0]
    for route in (f"samples/{test_size}/feature-maps/{conv}.png", f"samples/{test_size}/saliency.png"):
        out_of_range = client.get(f"{base}/{route}")
        assert out_of_range.status_code == 422 and f"0 to {test_size - 1}" in out_of_range.json()["detail"]
    assert client.get(f"{base}/samples/-1/saliency.png").status_code == 422
    stranger = workspace_client(server)
    assert stranger.get(f"{base}/samples/0/saliency.png").status_code == 404
    assert stranger.get(f"{base}/filters/{ids(layers, 'Conv2D')[0]}.png").status_code == 404


def test_a_table_run_and_a_run_in_progress_are_refused(server):
    client = workspace_client(server)
    iris = model_on(client, "iris")
    run = wait_for_run(client, start_run(client, iris["id"], epochs=1)["id"])
    assert run["state"] == "completed", run["reason"]
    table = client.get(f"/api/v1/runs/{run['id']}/samples/0/saliency.png")
    assert table.status_code == 422 and "image" in table.json()["detail"]
    training = start_run(client, iris["id"], epochs=1000)
    busy = client.get(f"/api/v1/runs/{training['id']}/samples/0/saliency.png")
    assert busy.status_code == 409 and "still training" in busy.json()["detail"]
    ok(client.post(f"/api/v1/runs/{training['id']}/stop"))
    wait_for_run(client, training["id"])
