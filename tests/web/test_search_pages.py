"""The search pages through real HTTP handling: the form, its refusals at the field, and the live page."""

from __future__ import annotations

import re

import pytest

from tests.web.test_training_pages import HTMX, new_model

pytestmark = pytest.mark.slow  # the search trains


def test_search_form_refuses_at_the_field_then_starts_and_shows_the_trials(browser_client):
    editor = new_model(browser_client, "dense")
    browser_client.post(f"{editor}/dataset", data={"dataset": "builtin:circle", "d.n_samples": "200"}, headers=HTMX)
    browser_client.post(f"{editor}/dataset/fit-output", headers=HTMX)
    assert "Search variants" in browser_client.get(editor).text
    form = browser_client.get(f"{editor}/search")
    assert form.status_code == 200 and 'id="search-form"' in form.text

    refused = browser_client.post(f"{editor}/searches", data={"vary.width": "on", "values.width": "0.5, wide",
                                                              "runs": "4", "epochs": "1"})
    assert refused.status_code == 422
    assert "Invalid value received for <code>axes.width</code>" in refused.text
    assert "numbers separated by commas" in refused.text
    assert 'value="0.5, wide"' in refused.text  # what was typed is kept for correcting
    assert "axis-row has-error" in refused.text

    started = browser_client.post(f"{editor}/searches", follow_redirects=False,
                                  data={"vary.activation": "on", "values.activation": "relu, tanh",
                                        "runs": "2", "epochs": "30", "strategy": "grid", "metric": "val_loss"})
    assert started.status_code == 303
    page = browser_client.get(started.headers["location"])
    assert page.status_code == 200
    assert re.search(r'id="search-state">(running|completed)<', page.text)
    assert 'id="trial-1"' in page.text and 'id="trial-2"' in page.text
    assert browser_client.get("/searches/999999").status_code == 404

    stopped = browser_client.post(f"{started.headers['location']}/stop", follow_redirects=False)
    assert stopped.status_code == 303
    assert 'id="search-state">cancelled<' in browser_client.get(started.headers["location"]).text
    again = browser_client.post(f"{started.headers['location']}/stop")
    assert again.status_code == 409 and "only a running search can be stopped" in again.text
