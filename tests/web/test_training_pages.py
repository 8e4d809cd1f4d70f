"""Data and training pages through real HTTP handling, a real data worker and real training."""

import html as html_text
import re
import socket
import time

import pytest

from app.config import Settings
from app.data.keras_cache import forget_mirror_failures
from app.main import create_app
from tests.browser_like import BrowserLikeClient

pytestmark = pytest.mark.slow

HTMX = {"HX-Request": "true"}


def new_model(client, starter):
    response = client.post("/models", data={"name": "Trainee", "starter": starter}, follow_redirects=False)
    return response.headers["location"]


def wait_for_state(client, run_id, states, deadline=120):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        run = client.get(f"/api/v1/runs/{run_id}").json()
        if run["state"] in states:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} is still {run['state']}")


def test_choose_data_train_and_read_the_results(browser_client):
    url = new_model(browser_client, "regression")
    chosen = browser_client.post(f"{url}/dataset", data={"dataset": "builtin:circle", "d.n_samples": "200"},
                                 headers=HTMX)
    assert chosen.status_code == 200
    assert "Using Circle" in chosen.text and "(None, 2)" in chosen.text
    # A one-unit linear output does not fit two classes: explained, with the fix offered.
    assert 'id="fit-output-button"' in chosen.text
    fixed = browser_client.post(f"{url}/dataset/fit-output", headers=HTMX).text
    assert "The output layer now fits the data." in fixed and 'id="fit-output-button"' not in fixed

    refused = browser_client.post(f"{url}/runs", data={"t.epochs": "0"}, headers=HTMX)
    assert refused.status_code == 422
    assert "Invalid value received for <code>epochs</code>" in refused.text and 'class="field-error"' in refused.text
    assert browser_client.get("/api/v1/runs").json() == []

    started = browser_client.post(f"{url}/runs", data={"t.epochs": "3", "t.learning_rate": "0.05"}, headers=HTMX)
    assert started.status_code == 204
    run_url = started.headers["HX-Redirect"]
    run_id = int(run_url.rsplit("/", 1)[1])
    wait_for_state(browser_client, run_id, {"completed"})
    page = browser_client.get(run_url).text
    assert "Test on held-out data" in page and 'id="confusion-matrix"' in page
    assert "Decision boundary" in page and "<svg" in page
    assert f"/api/v1/runs/{run_id}/model" in page
    again = browser_client.post(f"{run_url}/evaluate", headers=HTMX)
    assert again.status_code == 200 and 'id="evaluation"' in again.text
    home = browser_client.get("/").text
    assert "Recent runs" in home and f'href="/runs/{run_id}"' in home


def test_dataset_page_shows_the_preview(browser_client):
    url = new_model(browser_client, "regression")
    browser_client.post(f"{url}/dataset", data={"dataset": "builtin:iris"}, headers=HTMX)
    dataset_id = browser_client.get("/api/v1/datasets").json()[0]["id"]
    page = browser_client.get(f"/datasets/{dataset_id}").text
    for text in ["sepal length (cm)", "Class balance", "setosa", "First rows", "Columns"]:
        assert text in page
    assert "Prepare again" not in page  # built-ins are prepared by LayerLab


def test_other_workspaces_runs_and_datasets_are_not_found(browser_client, server):
    url = new_model(browser_client, "regression")
    browser_client.post(f"{url}/dataset", data={"dataset": "builtin:plane", "d.n_samples": "100"}, headers=HTMX)
    dataset_id = browser_client.get("/api/v1/datasets").json()[0]["id"]
    stranger = server.__class__(server.app)
    assert stranger.get(f"/datasets/{dataset_id}").status_code == 404
    assert stranger.get("/runs/999999").status_code == 404


def test_an_unknown_dataset_choice_is_explained(browser_client):
    url = new_model(browser_client, "dense")
    response = browser_client.post(f"{url}/dataset", data={"dataset": "builtin:imagenet"}, headers=HTMX)
    assert response.status_code == 422 and "Expected one of" in response.text


def test_after_a_first_run_the_next_one_starts_in_a_warm_process(browser_client):
    executor = browser_client.app.state.scheduler.executor
    url = new_model(browser_client, "regression")
    browser_client.post(f"{url}/dataset", data={"dataset": "builtin:plane", "d.n_samples": "100"}, headers=HTMX)
    first = browser_client.post(f"{url}/runs", data={"t.epochs": "1"}, headers=HTMX).headers["HX-Redirect"]
    wait_for_state(browser_client, int(first.rsplit("/", 1)[1]), {"completed"})
    end = time.monotonic() + 60
    while not executor.spare_pids() and time.monotonic() < end:
        time.sleep(0.2)
    (spare,) = executor.spare_pids()
    second = browser_client.post(f"{url}/runs", data={"t.epochs": "300"}, headers=HTMX).headers["HX-Redirect"]
    run_id = int(second.rsplit("/", 1)[1])
    assert executor.pid(run_id) == spare
    browser_client.post(f"/api/v1/runs/{run_id}/stop")
    wait_for_state(browser_client, run_id, {"cancelled", "completed"})  # raises if it never ends


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once closed: connections are refused


def test_mnist_that_cannot_be_downloaded_is_explained_at_the_field_within_seconds(tmp_path):
    forget_mirror_failures()
    settings = Settings(data_dir=tmp_path, dataset_mirror=f"http://127.0.0.1:{closed_port()}/")
    with BrowserLikeClient(create_app(settings)) as client:
        url = new_model(client, "convnet")
        editor = client.get(url).text
        assert re.search(r'value="builtin:mnist"[^>]*>MNIST \(downloaded when chosen\)', editor)
        # The data worker is busy with someone else's upload: the answer must not wait for it.
        busy = client.app.state.data_worker._lock
        busy.acquire()
        try:
            for key, title in (("mnist", "MNIST"), ("fashion_mnist", "Fashion-MNIST")):
                started = time.monotonic()
                response = client.post(f"{url}/dataset", data={"dataset": f"builtin:{key}"}, headers=HTMX)
                assert time.monotonic() - started < 3.5
                assert response.status_code == 503
                error = re.search(r'<p class="field-error" id="dataset-error" role="alert">(.*?)</p>', response.text)
                assert error and f"{title} is not cached on this server and cannot be downloaded" in error.group(1)
                assert "Upload" in error.group(1)  # and what to do instead
        finally:
            busy.release()
        assert client.get("/api/v1/datasets").json() == []  # nothing stored
        assert re.search(r'>MNIST \(not available: no internet', client.get(url).text)


def test_the_dataset_list_preselects_one_that_fits_the_models_input(browser_client):
    html = browser_client.get(new_model(browser_client, "convnet")).text
    selected = re.search(r'<option value="builtin:(\w+)"[^>]*selected', html)
    assert selected and selected.group(1) == "digits28"  # 28x28x1, and ready offline
    assert re.search(r'value="builtin:digits"[^>]*>Digits \(8x8\) \(shape 8x8x1, not this model\'s input\)',
                     html_text.unescape(html))
    regression = browser_client.get(new_model(browser_client, "regression")).text
    assert re.search(r'<option value="builtin:(\w+)"[^>]*selected', regression).group(1) == "diabetes"


def test_fitting_the_output_to_image_data_adds_flatten_and_the_model_trains(browser_client):
    url = new_model(browser_client, "regression")  # Dense layers only, made for 8 numbers
    chosen = browser_client.post(f"{url}/dataset", data={"dataset": "builtin:digits"}, headers=HTMX).text
    assert "(None, 8, 8, 1)" in chosen and 'id="fit-output-button"' in chosen
    fixed = browser_client.post(f"{url}/dataset/fit-output", headers=HTMX).text
    assert "The output layer now fits the data." in fixed
    model_id = int(url.rsplit("/", 1)[1])
    layers = browser_client.get(f"/api/v1/models/{model_id}").json()["layers"]
    assert [layer["type"] for layer in layers] == ["Input", "Flatten", "Dense", "Dense", "Dense"]
    assert layers[-1]["params"]["units"] == 10 and layers[-1]["params"]["activation"] == "softmax"
    started = browser_client.post(f"{url}/runs", data={"t.epochs": "1"}, headers=HTMX)
    assert started.status_code == 204, started.text
    run = wait_for_state(browser_client, int(started.headers["HX-Redirect"].rsplit("/", 1)[1]),
                         {"completed", "failed"})
    assert run["state"] == "completed", run["reason"]


def test_an_output_per_pixel_is_refused_before_training_with_the_fix(browser_client):
    url = new_model(browser_client, "regression")
    browser_client.post(f"{url}/dataset", data={"dataset": "builtin:digits"}, headers=HTMX)
    model_id = int(url.rsplit("/", 1)[1])
    browser_client.patch(f"/api/v1/models/{model_id}/layers/n4",
                         json={"params": {"units": 10, "activation": "softmax"}})
    refused = browser_client.post(f"{url}/runs", data={"t.epochs": "1"}, headers=HTMX)
    assert refused.status_code == 422
    text = html_text.unescape(refused.text)
    assert "dense_2 gives (None, 8, 8, 10)" in text and "Add a Flatten layer before dense" in text
    assert browser_client.get("/api/v1/runs").json() == []


def test_the_settings_form_starts_from_the_last_run_and_resets_in_one_click(browser_client):
    url = new_model(browser_client, "regression")
    browser_client.post(f"{url}/dataset", data={"dataset": "builtin:plane", "d.n_samples": "100"}, headers=HTMX)
    started = browser_client.post(f"{url}/runs", data={"t.epochs": "2", "t.learning_rate": "0.05",
                                                         "t.optimizer": "rmsprop"}, headers=HTMX)
    run_id = int(started.headers["HX-Redirect"].rsplit("/", 1)[1])
    wait_for_state(browser_client, run_id, {"completed"})
    editor = browser_client.get(url).text
    assert f'Starting from the settings of\n        <a href="/runs/{run_id}">run {run_id}</a>' in editor
    assert 'id="t-epochs" name="t.epochs" value="2"' in editor
    assert 'id="t-learning_rate" name="t.learning_rate" value="0.05"' in editor
    assert "<option selected>rmsprop</option>" in editor
    reset = browser_client.get(f"{url}?settings=suggested", headers=HTMX).text
    assert 'id="t-epochs" name="t.epochs" value="10"' in reset and "<option selected>adam</option>" in reset
    # Settings typed but not yet sent survive an edit of the model (the page sends them along).
    edited = browser_client.post(f"{url}/layers/n2", data={"p.units": "16", "t.epochs": "7"}, headers=HTMX).text
    assert 'id="t-epochs" name="t.epochs" value="7"' in edited


def test_the_run_page_names_activations_and_initializers(browser_client):
    url = new_model(browser_client, "regression")
    browser_client.post(f"{url}/layers/n2", data={"p.activation": "tanh", "p.kernel_initializer": "he_normal"},
                        headers=HTMX)
    browser_client.post(f"{url}/dataset", data={"dataset": "builtin:plane", "d.n_samples": "100"}, headers=HTMX)
    started = browser_client.post(f"{url}/runs", data={"t.epochs": "1"}, headers=HTMX)
    page = browser_client.get(started.headers["HX-Redirect"]).text
    line = re.search(r'<p class="architecture" id="run-architecture">(.*?)</p>', page, re.S).group(1)
    assert "dense: Dense 32, tanh, he_normal" in line and "dense_1: Dense 16, relu, glorot_uniform" in line


def test_an_edit_that_leaves_the_training_panel_as_it_was_does_not_redraw_it(browser_client):
    url = new_model(browser_client, "dense")
    browser_client.post(f"{url}/dataset", data={"dataset": "builtin:circle", "d.n_samples": "200"}, headers=HTMX)
    page = browser_client.post(f"{url}/dataset/fit-output", headers=HTMX).text
    key = re.search(r'data-panel-key="([0-9a-f]+)"', page).group(1)
    layers = list(dict.fromkeys(re.findall(r'data-layer-id="(n\d+)"', page)))  # Input, Flatten, 2 hidden, output
    hidden, output = layers[2], layers[4]

    kept = browser_client.post(f"{url}/layers/{hidden}", data={"p.units": "32", "panel_key": key}, headers=HTMX)
    assert kept.status_code == 200 and 'id="layer-list"' in kept.text
    assert 'id="train-panel"' not in kept.text  # a hidden layer's width changes nothing the panel shows
    stale = browser_client.post(f"{url}/layers/{hidden}", data={"p.units": "16", "panel_key": "0" * 16}, headers=HTMX)
    assert f'data-panel-key="{key}"' in stale.text  # a page with another panel gets it redrawn
    changed = browser_client.post(f"{url}/layers/{output}", data={"p.units": "3", "panel_key": key}, headers=HTMX)
    assert 'id="train-panel"' in changed.text and f'data-panel-key="{key}"' not in changed.text
    assert "does not fit" in changed.text or "classes" in changed.text  # the panel says why it no longer fits
