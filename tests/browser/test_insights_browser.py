"""Error analysis in a real browser: from a confusion-matrix cell to a sample, and inside the convnet."""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import STEP_TIMEOUT, create_model, save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The page's own session (cookie and CSRF token) calls the API, as htmx would.
CALL_API = """async ([method, url, body]) => {
  const token = document.querySelector('meta[name=csrf-token]').content;
  const answer = await fetch(url, {method, body: body ? JSON.stringify(body) : undefined,
                                   headers: {'Content-Type': 'application/json', 'X-CSRF-Token': token}});
  return [answer.status, await answer.text()];
}"""


def api(page: Page, method: str, url: str, body: dict | None = None) -> dict:
    status, text = page.evaluate(CALL_API, [method, url, body])
    assert status < 300, (status, text)
    return json.loads(text) if text else {}


def test_a_confusion_cell_leads_to_a_sample_and_its_feature_maps(page: Page, live_server: str):
    editor = create_model(page, live_server, "Looking inside", "convnet")
    model_id = int(re.search(r"/models/(\d+)", editor).group(1))
    digits = api(page, "POST", "/api/v1/datasets", {"key": "digits28"})
    api(page, "PUT", f"/api/v1/models/{model_id}/dataset", {"dataset_id": digits["id"]})
    run = api(page, "POST", f"/api/v1/models/{model_id}/runs", {"epochs": 1, "seed": 1})
    deadline = time.monotonic() + 180
    while api(page, "GET", f"/api/v1/runs/{run['id']}")["state"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.5)

    page.goto(f"{live_server}/runs/{run['id']}")
    cells = page.locator("#confusion-matrix a")
    expect(cells.first).to_be_visible(timeout=STEP_TIMEOUT)
    cells.first.click()
    expect(page.locator("h1")).to_contain_text("True")
    page.locator("main a[href*='/samples/']").first.click()
    expect(page.locator("h1")).to_contain_text("Test sample")
    expect(page.locator("#probabilities")).to_be_visible()
    images = page.locator(".inside-figure img")
    assert images.count() == 1 + 5 + 1  # saliency, 3 Conv2D and 2 pooling layers, the first Conv2D's filters
    for i in range(images.count()):
        images.nth(i).scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll('.inside-figure img')].every("
                           "img => img.complete && img.naturalWidth > 0)", timeout=120_000)
    save_screenshot(page, "sample-inside-1440.png")
    page.set_viewport_size({"width": 390, "height": 900})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    save_screenshot(page, "sample-inside-390.png")


def test_the_inside_of_a_2d_run_steps_through_its_epochs(page: Page, live_server: str):
    editor = create_model(page, live_server, "Inside the plane", "dense")
    model_id = int(re.search(r"/models/(\d+)", editor).group(1))
    xor = api(page, "POST", "/api/v1/datasets", {"key": "xor", "params": {"n_samples": 200}})
    api(page, "PUT", f"/api/v1/models/{model_id}/dataset", {"dataset_id": xor["id"]})
    api(page, "POST", f"/api/v1/models/{model_id}/dataset/fit-output")
    run = api(page, "POST", f"/api/v1/models/{model_id}/runs", {"epochs": 8, "learning_rate": 0.01})
    deadline = time.monotonic() + 180
    while api(page, "GET", f"/api/v1/runs/{run['id']}")["state"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.5)

    page.goto(f"{live_server}/runs/{run['id']}")
    cards = page.locator("#internals .layer-card")
    expect(cards).to_have_count(3, timeout=STEP_TIMEOUT)  # the section loads on its own
    assert page.locator("#internals .ridgeline").count() == 6
    epochs = json.loads(page.locator("#plane-player").get_attribute("data-epochs"))
    assert epochs[0] == 0 and epochs[-1] == 8
    boundary = page.locator("#plane-boundary")
    expect(page.locator("#plane-epoch-label")).to_have_text("8")
    page.locator("#plane-epoch").fill("0")  # the slider's first position: before training
    expect(page.locator("#plane-epoch-label")).to_have_text("0")
    assert boundary.get_attribute("src").endswith("decision-boundary.png?epoch=0")
    assert all(img.endswith("?epoch=0") for img in page.eval_on_selector_all(
        "#plane-player img.units", "imgs => imgs.map(i => i.getAttribute('src'))"))
    page.locator("#plane-play").click()
    expect(page.locator("#plane-play")).to_have_text("Play", timeout=STEP_TIMEOUT)  # played to the end
    expect(page.locator("#plane-epoch-label")).to_have_text("8")
    page.locator("#plane-player").scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll('#plane-player img')].every("
                           "img => img.complete && img.naturalWidth > 0)", timeout=60_000)
    save_screenshot(page, "inside-plane-1440.png")
    page.set_viewport_size({"width": 390, "height": 900})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    save_screenshot(page, "inside-plane-390.png")
