"""The core loop for everyone: without JavaScript, by keyboard alone, on a phone, and offline."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.helpers import STEP_TIMEOUT, create_model, layer_items, save_screenshot, wait_for_htmx

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN_TIMEOUT = 120  # s: a short run is trained and tested (the first one starts a training process)


def train_small_run(page: Page, base_url: str) -> int:
    """Through the page's own cookie and the API: the model gets the circle set and one trained epoch."""
    model_id = int(page.url.rsplit("/", 1)[1].split("?")[0])
    token = page.get_attribute('meta[name="csrf-token"]', "content")
    headers = {"Origin": base_url, "X-CSRF-Token": token or ""}  # as the page's own scripts would send
    api: Any = page.context.request
    answer = api.post(f"{base_url}/api/v1/datasets", data={"key": "circle", "params": {"n_samples": 100}},
                      headers=headers)
    assert answer.status == 201, answer.text()
    dataset = answer.json()
    api.put(f"{base_url}/api/v1/models/{model_id}/dataset", data={"dataset_id": dataset["id"]}, headers=headers)
    api.post(f"{base_url}/api/v1/models/{model_id}/dataset/fit-output", headers=headers)
    answer = api.post(f"{base_url}/api/v1/models/{model_id}/runs", data={"epochs": 1}, headers=headers)
    assert answer.status == 201, answer.text()
    run = answer.json()
    deadline = time.monotonic() + RUN_TIMEOUT
    while api.get(f"{base_url}/api/v1/runs/{run['id']}").json()["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the run did not end"
        time.sleep(0.3)
    return int(run["id"])


def page_width(page: Page) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


def test_editor_and_runs_fit_a_phone(page: Page, live_server: str) -> None:
    create_model(page, live_server, "Phone", "dense", wait_for_summary=True)
    train_small_run(page, live_server)
    editor = page.url
    page.set_viewport_size({"width": 390, "height": 844})
    for url, name in ((editor, "editor-390.png"), (f"{live_server}/runs", "runs-390.png")):
        page.goto(url)
        page.wait_for_load_state("networkidle")
        assert page_width(page) <= 390, f"{url} is {page_width(page)} px wide at 390"
        save_screenshot(page, name)


def test_keyboard_reaches_the_data_panel_quickly_and_selects_diagram_boxes(page: Page, live_server: str) -> None:
    create_model(page, live_server, "Keys", "convnet", wait_for_summary=True)
    page.goto(page.url)  # a fresh load: focus starts at the top of the page
    presses = 0
    while page.evaluate("document.activeElement.textContent.trim()") != "Data and training":
        page.keyboard.press("Tab")
        presses += 1
        assert presses < 20, "the jump link to the data panel is too far"
    page.keyboard.press("Enter")
    while page.evaluate("document.activeElement.id") != "dataset-select":
        page.keyboard.press("Tab")
        presses += 1
        assert presses < 25, "the dataset list is too far from the top of the page"

    # A diagram box takes the focus and Enter selects its layer.
    box = page.locator(".diagram a.layer-link").nth(1)  # conv2d
    box.focus()
    expect(box).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#layer-form-title")).to_contain_text("conv2d", timeout=STEP_TIMEOUT)
    expect(page.locator("#layer-list li.selected .layer-name")).to_have_text("conv2d")
    wait_for_htmx(page)
    expect(page.locator(".diagram a.layer-link").nth(1)).to_be_focused()


def test_the_core_loop_works_without_javascript(browser: Browser, live_server: str) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(STEP_TIMEOUT)
    page = context.new_page()
    try:
        page.goto(live_server + "/")
        page.check("input[name=starter][value=dense]")
        page.click("text=Create model")
        page.wait_for_url(re.compile(r"/models/\d+$"))
        expect(page.locator("#model-name-input")).to_have_value(re.compile(r"^Dense classifier"))
        expect(layer_items(page)).to_have_count(5)

        # Add a layer after the selected (last) one, change a parameter, remove it, undo.
        page.select_option("#add-layer-type", "Dropout")
        page.click("#add-layer-button")
        expect(layer_items(page)).to_have_count(6)
        expect(page.locator("#layer-form-title")).to_contain_text("dropout")
        page.fill("#f-rate", "0.3")
        page.click("#layer-params button[type=submit]")
        expect(page.locator("#f-rate")).to_have_value("0.3")
        page.click("#layer-list li.selected button[aria-label^='Remove']")
        expect(layer_items(page)).to_have_count(5)
        page.click("#undo-button")
        expect(layer_items(page)).to_have_count(6)
        page.click("#layer-list .layer-name >> text=dropout")

        # A refused value comes back at its field, with the page.
        page.fill("#f-rate", "2")
        page.click("#layer-params button[type=submit]")
        expect(page.locator("#f-rate-error")).to_contain_text("Expected a number from 0 below 1")
        page.goto(re.sub(r"/models/(\d+).*", r"/models/\1", page.url))  # the page was the refused post's

        # Choose data, train, and read the result (the run page reloads itself while it trains).
        page.select_option("#dataset-select", "builtin:digits28")
        page.click("#use-dataset-button")
        expect(page.locator("#train-panel .current-dataset a")).to_contain_text("Digits")
        page.fill("#t-epochs", "2")
        page.click("#train-button")
        page.wait_for_url(re.compile(r"/runs/\d+$"))
        expect(page.locator("#run-state")).to_have_text("completed", timeout=RUN_TIMEOUT * 1000)
        expect(page.locator("#test-accuracy")).to_be_visible()
        expect(page.locator("#confusion-matrix")).to_be_visible()
        expect(page.locator(".epoch-table tbody tr")).to_have_count(2)  # the curves as numbers
        save_screenshot(page, "run-without-javascript.png")
    finally:
        context.close()


def test_a_dataset_that_cannot_be_downloaded_is_explained_at_the_field(page: Page, live_server: str) -> None:
    create_model(page, live_server, "Offline", "convnet", wait_for_summary=True)
    expect(page.locator("#dataset-select option[value='builtin:mnist']")).to_contain_text("downloaded when chosen")
    page.select_option("#dataset-select", "builtin:mnist")
    started = time.monotonic()
    page.click("#use-dataset-button")
    error = page.locator("#dataset-error")
    expect(error).to_contain_text("MNIST is not cached on this server and cannot be downloaded", timeout=5_000)
    assert time.monotonic() - started < 4
    expect(error).to_contain_text("Upload")
    expect(page.locator("#dataset-select")).to_be_focused()
    expect(page.locator("#dataset-select")).to_have_value("builtin:mnist")  # the choice stays, to change it
    expect(page.locator("#dataset-select option[value='builtin:mnist']")).to_contain_text("no internet")
    save_screenshot(page, "mnist-offline.png")
