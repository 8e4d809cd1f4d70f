"""The editor page and its HTMX fragments, as a browser without JavaScript would see them."""

import re
from pathlib import Path

import pytest

from app.config import Settings

pytestmark = pytest.mark.slow

HTMX = {"HX-Request": "true"}


def new_model(client, starter="convnet"):
    response = client.post("/models", data={"name": "Page model", "starter": starter}, follow_redirects=False)
    assert response.status_code == 303
    return response.headers["location"]


def test_first_visit_gets_a_signed_httponly_workspace_cookie(browser_client):
    response = browser_client.get("/")
    cookie = response.headers["set-cookie"]
    assert "layerlab_workspace=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "set-cookie" not in browser_client.get("/").headers  # the same workspace afterwards


def test_a_forged_cookie_gets_a_new_workspace(browser_client, server):
    url = new_model(browser_client)
    forged = server.__class__(server.app, cookies={"layerlab_workspace": "someone-else"})
    assert forged.get(url).status_code == 404


def test_editor_shows_summary_diagram_and_activation_help(browser_client):
    page = browser_client.get(new_model(browser_client)).text
    assert "93,322" in page
    for shape in ["(None, 26, 26, 32)", "(None, 13, 13, 32)", "(None, 11, 11, 64)", "(None, 5, 5, 64)", "(None, 3, 3, 64)"]:
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
    response = stranger.get(url)
    assert response.status_code == 404 and "There is no model" in response.text


def test_every_setting_is_documented_in_the_readme():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"LAYERLAB_{name.upper()}" in readme, name
