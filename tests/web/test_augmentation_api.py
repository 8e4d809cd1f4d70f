"""The augmentation preview: what a model's augmentation layers do to its training images, over the API and in
the editor, and its refusals."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.browser_like import BrowserLikeClient
from tests.web.live_server import add_builtin, attach, create_model, ok, workspace_client

pytestmark = pytest.mark.slow  # the data worker builds the model


def augmented_model(client: TestClient) -> dict:
    model = create_model(client, "dense")
    digits = add_builtin(client, "digits28")
    attach(client, model["id"], digits["id"])
    ok(client.post(f"/api/v1/models/{model['id']}/layers",
                   json={"type": "RandomRotation", "params": {"factor": 0.2}, "after": model["layers"][0]["id"]}), 201)
    return model


def test_the_preview_shows_each_image_as_it_is_and_augmented_five_times(server: TestClient):
    client = workspace_client(server)
    model = augmented_model(client)
    first = client.get(f"/api/v1/models/{model['id']}/augmentation.png?seed=1")
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(first.content)) as image:
        assert image.size == (6 * 56 + 7 * 2, 4 * 56 + 5 * 2)  # 4 rows of 28x28 tiles scaled by 2
    again = client.get(f"/api/v1/models/{model['id']}/augmentation.png?seed=1")
    other = client.get(f"/api/v1/models/{model['id']}/augmentation.png?seed=2")
    assert again.content == first.content and other.content != first.content


def test_the_preview_refuses_what_it_cannot_show(server: TestClient):
    client = workspace_client(server)
    plain = create_model(client, "dense")
    refused = client.get(f"/api/v1/models/{plain['id']}/augmentation.png")
    assert refused.status_code == 422 and "no augmentation layer" in refused.json()["detail"]
    ok(client.post(f"/api/v1/models/{plain['id']}/layers", json={"type": "RandomFlip",
                                                                   "after": plain["layers"][0]["id"]}), 201)
    no_data = client.get(f"/api/v1/models/{plain['id']}/augmentation.png")
    assert no_data.status_code == 422 and "Attach an image dataset" in no_data.json()["detail"]
    negative = client.get(f"/api/v1/models/{plain['id']}/augmentation.png?seed=-1")
    assert negative.status_code == 422
    stranger = workspace_client(server)
    assert stranger.get(f"/api/v1/models/{plain['id']}/augmentation.png").status_code == 404


def test_the_editor_shows_the_preview_at_an_augmentation_layer(server: TestClient):
    client = BrowserLikeClient(server.app)
    client.portal = server.portal
    client.post("/models", data={"name": "First", "starter": "blank"})  # the browser's session begins
    model = augmented_model(client)
    rotation = next(layer for layer in ok(client.get(f"/api/v1/models/{model['id']}"))["layers"]
                    if layer["type"] == "RandomRotation")
    page = client.get(f"/models/{model['id']}?layer={rotation['id']}").text
    assert 'id="augmentation-preview"' in page and "augmentation.png?seed=0" in page
    again = client.get(f"/models/{model['id']}/augmentation?seed=3", headers={"HX-Request": "true"}).text
    assert "augmentation.png?seed=3" in again and "augmentation?seed=4" in again
