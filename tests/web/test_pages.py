"""The editor page and its HTMX fragments, as a browser without JavaScript would see them."""

import html as html_text
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import Settings
from app.main import create_app
from tests.browser_like import BrowserLikeClient

pytestmark = pytest.mark.slow

HTMX = {"HX-Request": "true"}


def new_model(client, starter="convnet"):
    response = client.post("/models", data={"name": "Page model", "starter": starter}, follow_redirects=False)
    assert response.status_code == 303
    return response.headers["location"]


def test_the_first_model_starts_the_session_with_an_httponly_cookie(browser_client):
    assert "set-cookie" not in browser_client.get("/").headers  # looking around stores nothing
    response = browser_client.post("/models", data={"starter": "dense"}, follow_redirects=False)
    cookie = response.headers["set-cookie"]
    assert "layerlab_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "set-cookie" not in browser_client.get("/").headers  # the same session afterwards


def test_a_forged_cookie_finds_nothing(browser_client, server):
    url = new_model(browser_client)
    for name in ("layerlab_session", "layerlab_workspace"):
        forged = server.__class__(server.app, cookies={name: "someone-else"})
        assert forged.get(url).status_code == 404


def test_editor_shows_summary_diagram_and_activation_help(browser_client):
    page = browser_client.get(new_model(browser_client)).text
    assert "93,322" in page
    for shape in ["(None, 26, 26, 32)", "(None, 13, 13, 32)", "(None, 11, 11, 64)", "(None, 5, 5, 64)",
                  "(None, 3, 3, 64)"]:
        assert shape in page
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page and 'class="diagram"' in page
    assert "Turns a row of scores into probabilities" in page  # softmax note on the selected output layer
    assert "/static/vendor/htmx.org/htmx.min.js" in page


def test_an_edit_returns_only_the_changed_fragments(browser_client):
    url = new_model(browser_client)
    response = browser_client.post(f"{url}/layers/n8", data={"name": "hidden", "p.units": "32",
                                                             "p.activation": "tanh"}, headers=HTMX)
    assert response.status_code == 200
    html = response.text
    assert "<html" not in html
    ids = re.findall(r'id="([\w-]+)"[^>]*hx-swap-oob="true"', html)
    assert set(ids) >= {"layers", "layer-form", "summary", "diagram", "messages"}
    assert "18,464" in html  # 576*32+32 in the hidden layer
    assert "Squashes any input into -1 to 1" in html  # the tanh note now shows


def test_a_bad_value_is_shown_at_the_field_and_not_stored(browser_client):
    url = new_model(browser_client, "dense")
    response = browser_client.post(f"{url}/layers/n3", data={"p.units": "0"}, headers=HTMX)
    assert response.status_code == 422
    assert 'class="field-error"' in response.text and "Expected an integer between 1 and 1000000" in response.text
    assert 'value="0"' in response.text  # what the user typed stays in the field to fix
    assert "Dense · 64" in browser_client.get(url).text


def test_hostile_names_are_escaped_in_messages(browser_client):
    url = new_model(browser_client, "dense")
    response = browser_client.post(f"{url}/layers/n3", data={"name": "<script>alert(1)</script>"}, headers=HTMX)
    assert response.status_code == 422
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;" in response.text


def test_add_move_undo_from_the_page(browser_client):
    url = new_model(browser_client, "dense")
    added = browser_client.post(f"{url}/layers", data={"type": "Dropout", "after": "n3"}, headers=HTMX).text
    assert "dropout" in added
    browser_client.post(f"{url}/layers/n6/move", data={"direction": "up"}, headers=HTMX)
    page = browser_client.get(url).text
    assert page.index(">dropout<") < page.index(">dense<")
    undone = browser_client.post(f"{url}/undo", data={}, headers=HTMX).text
    assert "Undone: move n6." in undone
    assert browser_client.post(f"{url}/layers/n6/move", data={"position": "1"}, headers=HTMX).status_code == 200


def test_another_workspaces_page_is_not_found(browser_client, server):
    url = new_model(browser_client)
    stranger = server.__class__(server.app)
    assert stranger.get(url).status_code == 404  # a browser without a session
    stranger = BrowserLikeClient(server.app)
    new_model(stranger)
    response = stranger.get(url)
    assert response.status_code == 404 and "There is no model" in response.text


def test_every_setting_is_documented_in_the_readme():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"LAYERLAB_{name.upper()}" in readme, name


def test_a_kernel_larger_than_its_input_is_refused_at_its_field_and_nothing_changes(browser_client):
    url = new_model(browser_client)  # convnet on 28x28x1: conv2d is n2
    before = browser_client.get(url).text
    response = browser_client.post(f"{url}/layers/n2", data={"p.kernel_size": "30"}, headers=HTMX)
    assert response.status_code == 422
    html = response.text
    error = re.search(r'<p class="field-error" id="f-kernel_size-error" role="alert">([^<]*)</p>', html)
    assert error and "kernel_size (30) is larger than the input's height (28)" in html_text.unescape(error.group(1))
    assert 'id="f-kernel_size" name="p.kernel_size" value="30"' in html and 'aria-invalid="true"' in html
    # Nothing was stored: the summary and every shape are still there.
    assert "93,322" in html and "(None, 26, 26, 32)" in html
    assert "3,3" in browser_client.get(f"{url}?layer=n2").text and before.count("(None, ") > 10


def test_a_stored_fault_keeps_the_shapes_before_it_and_the_last_summary_marked_out_of_date(browser_client):
    url = new_model(browser_client)
    # A wider first pooling is fine for its own layer, but leaves conv2d_2 (n6) a 1x1 input.
    html = browser_client.post(f"{url}/layers/n3", data={"p.pool_size": "5"}, headers=HTMX).text
    assert "conv2d_2" in html and "kernel_size (3) is larger than the input" in html_text.unescape(html)
    assert 'id="stale-summary-note"' in html and "Out of date" in html and "93,322" in html
    layers = html[html.index('id="layers"'):html.index('id="layer-form"')]
    for shape in ["(None, 28, 28, 1)", "(None, 26, 26, 32)", "(None, 5, 5, 32)", "(None, 3, 3, 64)",
                  "(None, 1, 1, 64)"]:
        assert shape in layers  # inferred up to the fault, as Keras would show them
    assert 'id="total-params"' not in html  # the current model has no total: it does not build


def test_new_models_get_telling_distinct_names(browser_client):
    for expected in ("Convnet", "Convnet 2", "Convnet 3"):
        response = browser_client.post("/models", data={"name": "", "starter": "convnet"})
        assert f'value="{expected}"' in response.text
    response = browser_client.post("/models", data={"starter": "blank"})
    assert 'value="Network"' in response.text


def test_duplicating_respects_the_model_limit(server, tmp_path):
    app = create_app(Settings(data_dir=tmp_path, max_models_per_workspace=2))
    with BrowserLikeClient(app) as client:
        url = new_model(client, "dense")
        copy = client.post(f"{url}/duplicate", follow_redirects=False)
        assert copy.status_code == 303
        assert 'value="Page model (copy)"' in client.get(copy.headers["location"]).text
        refused = client.post(f"{url}/duplicate", headers=HTMX)
        assert refused.status_code == 409 and "already holds 2 models" in refused.text
        assert client.post("/models", data={"starter": "dense"}).status_code == 409
        assert len(client.get("/api/v1/models").json()) == 2


def test_every_link_and_form_action_comes_from_the_route_table():
    """Templates name routes (url('editor', ...)); none writes an app path by hand."""
    templates = Path(__file__).resolve().parents[2] / "templates"
    hand_written = re.compile(r'(?:href|action|src|hx-get|hx-post)="/(?!static/)')
    for template in templates.rglob("*.html"):
        assert not hand_written.search(template.read_text()), template.name


def test_route_names_are_unique(app):
    from app.web import api, pages, training_pages

    names = [route.name for router in (pages.router, training_pages.router, api.models.router,
                                       api.runs.router, api.datasets.router, api.catalog.router,
                                       api.workspaces.router) for route in router.routes]
    assert len(names) == len(set(names))


def test_importing_the_app_has_no_side_effects(tmp_path):
    code = "import app.main, os; print(sorted(os.listdir('.')))"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"  # no data folder, no database, no secret key
