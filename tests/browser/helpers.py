"""Helpers shared by the browser tests: waiting on HTMX, creating a model from the home page."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FIRST_SUMMARY_TIMEOUT = 90_000  # ms: TensorFlow's start-up in the inspector worker
STEP_TIMEOUT = 30_000


def wait_for_htmx(page: Page) -> None:
    """No HTMX request in flight (htmx puts .htmx-request on the requesting element)."""
    page.wait_for_function("() => window.htmx && !document.querySelector('.htmx-request')",
                           timeout=STEP_TIMEOUT)


def create_model(page: Page, base_url: str, name: str, starter: str, wait_for_summary: bool = False) -> str:
    """Create a model from the home page; returns the editor's URL."""
    page.goto(base_url + "/")
    page.fill("#model-name", name)
    page.check(f"input[name=starter][value={starter}]")
    page.get_by_role("button", name="Create model").click()
    page.wait_for_url(re.compile(r"/models/[^/?]+$"))
    expect(page.locator("#model-name-input")).to_have_value(name)
    if wait_for_summary:
        expect(page.locator("#summary table.summary-table")).to_be_visible(timeout=FIRST_SUMMARY_TIMEOUT)
    page.wait_for_load_state("load")
    if wait_for_summary:
        wait_for_htmx(page)
    return page.url


def layer_items(page: Page):
    return page.locator("#layer-list > li.layer-item")


def save_screenshot(page: Page, name: str) -> None:
    """A full-page screenshot in test-artifacts/ (git-ignored), to look at after a run."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
