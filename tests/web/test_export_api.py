"""Exports over HTTP: a model's script, notebook and Keras JSON; the code pages; a dataset's arrays."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from tests.web.live_server import add_builtin, attach, create_model, ok, workspace_client


def test_a_models_script_and_notebook_download_with_their_names(api):
    model = ok(api.post("/api/v1/models", json={"name": "My convnet", "starter": "convnet"}), 201)
    script = api.get(f"/api/v1/models/{model['id']}/export.py")
    assert script.status_code == 200
    assert script.headers["content-disposition"] == 'attachment; filename="my_convnet.py"'
    compile(script.text, "my_convnet.py", "exec")
    assert "def build_model():" in script.text and "keras.Sequential([" in script.text
    notebook = api.get(f"/api/v1/models/{model['id']}/export.ipynb")
    assert notebook.headers["content-disposition"].endswith('my_convnet.ipynb"')
    assert json.loads(notebook.text)["cells"]
    assert api.get("/api/v1/models/999999/export.py").status_code == 404


def test_the_code_page_shows_the_script_with_copy_and_downloads(browser_client):
    made = browser_client.post("/models", data={"name": "Paged", "starter": "dense"}, follow_redirects=False)
    editor = made.headers["location"]
    assert 'id="model-code-link"' in browser_client.get(editor).text
    page = browser_client.get(f"{editor}/code")
    assert page.status_code == 200
    assert 'class="language-python"' in page.text and "def build_model():" in page.text
    assert 'id="copy-code"' in page.text and "/export.ipynb" in page.text and "/config.json" in page.text
    assert "prism-core.min.js" in page.text


@pytest.mark.slow
def test_keras_json_and_prepared_arrays(server):
    client = workspace_client(server)
    dataset = add_builtin(client, "iris")
    model = create_model(client, "dense", "Flowers")
    attach(client, model["id"], dataset["id"], fit_output=True)
    config = client.get(f"/api/v1/models/{model['id']}/config.json")
    assert config.status_code == 200
    body = json.loads(config.text)
    assert body["class_name"] == "Functional"
    assert [layer["class_name"] for layer in body["config"]["layers"]][-1] == "Dense"
    arrays = client.get(f"/api/v1/datasets/{dataset['id']}/arrays.npz")
    assert arrays.status_code == 200 and arrays.headers["content-disposition"].endswith('iris_flowers.npz"')
    with np.load(io.BytesIO(arrays.content)) as loaded:
        assert sorted(loaded.files) == ["x_test", "x_train", "x_val", "y_test", "y_train", "y_val"]
        assert len(loaded["y_train"]) == dataset["split_sizes"]["train"]
