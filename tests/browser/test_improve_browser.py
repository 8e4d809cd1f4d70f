"""Improving a model in a real browser: train, change one activation, train again, compare the runs."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import STEP_TIMEOUT, create_model, save_screenshot, wait_for_htmx
from tests.browser.test_editor_browser import select_dense_64
from tests.browser.test_training_browser import (
    RUN_FINISH_TIMEOUT,
    RUN_START_TIMEOUT,
    start_training,
    use_builtin_dataset,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def train_to_the_end(page: Page, epochs: int) -> int:
    run_id = start_training(page, epochs)
    expect(page.locator("#run-state")).to_have_text("completed", timeout=RUN_START_TIMEOUT + RUN_FINISH_TIMEOUT)
    return run_id


def test_two_runs_differing_in_one_activation_are_compared(page: Page, live_server: str) -> None:
    editor = create_model(page, live_server, "Circle net", "dense", wait_for_summary=True)
    use_builtin_dataset(page, "circle", "Circle")
    page.click("#fit-output-button")
    expect(page.locator("#messages .flash")).to_contain_text("The output layer now fits the data")
    wait_for_htmx(page)
    page.fill("#t-batch_size", "16")
    first = train_to_the_end(page, epochs=4)
    expect(page.locator("#suggestions")).to_be_visible()  # what to try next, or why there is nothing

    page.goto(editor)
    # The form starts from the last run's settings, not from the defaults.
    expect(page.locator("#t-epochs")).to_have_value("4")
    expect(page.locator("#t-batch_size")).to_have_value("16")
    expect(page.locator(".settings-source")).to_contain_text(f"run {first}")
    select_dense_64(page)
    page.select_option("#f-activation", "tanh")
    wait_for_htmx(page)
    expect(page.locator("#layer-list")).to_contain_text("tanh")
    second = train_to_the_end(page, epochs=4)
    expect(page.locator("#run-name")).to_have_text("Circle net · tanh instead of relu in dense")

    page.goto(f"{live_server}/runs")
    expect(page.locator(f"#run-row-{second} .changes")).to_contain_text("tanh instead of relu in dense")
    page.check(f"#pick-{first}")
    page.click("#compare-button")  # one run: said beside the button, the tick kept
    expect(page.locator("#compare-hint")).to_have_text("Tick at least 2 runs to compare (1 ticked now).")
    expect(page.locator(f"#pick-{first}")).to_be_checked()
    assert page.url.endswith("/runs")
    page.check(f"#pick-{second}")
    page.click("#compare-button")
    page.wait_for_url(re.compile(r"/runs/compare\?"), timeout=STEP_TIMEOUT)

    # Both runs' curves: a training and a validation line each, in each run's colour.
    lines = page.locator("#compare-chart svg polyline")
    expect(lines).to_have_count(4)
    colours = {lines.nth(i).get_attribute("stroke") for i in range(4)}
    assert len(colours) == 2, colours
    diff = page.locator("#diff-table")
    expect(diff.locator("th.diff-path")).to_have_text(["layers.dense.activation"])
    row = diff.locator("tr", has=page.locator("th.diff-path"))
    expect(row.locator("td")).to_have_text(["relu", "tanh"])
    expect(page.locator(f"#sentence-{second}")).to_contain_text(
        re.compile(r"^Tanh instead of relu in dense: test accuracy [+-]\d+\.\d points"))

    page.select_option("#metric-select", "accuracy")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#compare-chart svg")).to_have_attribute("aria-label", "accuracy by epoch")
    expect(page.locator("#compare-chart svg polyline")).to_have_count(4)
    save_screenshot(page, "compare-runs.png")

    # Continue from the first run: its settings in the form, and its graph as a new model.
    page.goto(f"{live_server}/runs/{first}")
    page.click("#train-again-button")
    page.wait_for_url(re.compile(rf"/models/\d+\?from_run={first}"), timeout=STEP_TIMEOUT)
    expect(page.locator(".settings-source")).to_contain_text(f"run {first}")
    page.goto(f"{live_server}/runs/{first}")
    page.click("#restore-button")
    page.wait_for_url(re.compile(r"/models/\d+$"), timeout=STEP_TIMEOUT)
    expect(page.locator("#model-name-input")).to_have_value(f"Circle net (run {first})")
    expect(page.locator("#layer-list")).not_to_contain_text("tanh")
    expect(page.locator("#train-panel .current-dataset a")).to_contain_text("Circle")

    # A run deleted in another tab: a button on this tab's page says why nothing happened.
    page.goto(f"{live_server}/runs/{second}")
    other = page.context.new_page()
    other.on("dialog", lambda dialog: dialog.accept())
    other.goto(f"{live_server}/runs/{second}")
    other.click("#delete-run-button")
    other.wait_for_url(re.compile(r"/runs$"), timeout=STEP_TIMEOUT)
    page.click("#evaluate-button")
    expect(page.locator("#refusal")).to_have_text(re.compile(rf"^Not done\. .*\b{second}\b"))
    expect(page.locator("#run-header")).to_be_visible()  # the page stays as it was
