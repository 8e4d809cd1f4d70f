"""The variant-search form in a browser: a refused search is explained on the form page, drawn once."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import create_model, wait_for_htmx
from tests.browser.test_training_browser import use_builtin_dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_grid_larger_than_its_budget_is_refused_on_the_form_page_drawn_once(page: Page, live_server: str) -> None:
    editor = create_model(page, live_server, "Searched", "dense", wait_for_summary=True)
    use_builtin_dataset(page, "digits", "Digits")
    page.goto(editor.rstrip("/") + "/search")
    page.check("#vary-activation")
    page.fill("#values-activation", "relu, tanh")
    page.fill("#budget-runs", "1")
    page.locator("#search-form button[type=submit]").click()
    wait_for_htmx(page)
    expect(page.locator("#search-error")).to_have_text(re.compile(
        r"^The full grid has 2 combinations but the search may make only 1 run: allow 2 runs"))
    expect(page.locator("header.topbar")).to_have_count(1)  # the page redrawn, not a page inside the form
    expect(page.locator("#search-form")).to_have_count(1)
    expect(page.locator("#values-activation")).to_have_value("relu, tanh")  # what was typed is kept
