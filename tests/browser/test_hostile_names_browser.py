"""Hostile names everywhere a user can give one: every page shows them as text, and no script runs.

The names come in through the free-text paths: CSV column names, category and class
values, image folders in a zip, and the upload's file name. Every page is also checked
against the content security policy: no violation, no script error.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.browser.helpers import STEP_TIMEOUT, create_model, save_screenshot, wait_for_htmx

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOSTILE = ['<script>window.pwned=1</script>', '<img src=x onerror="window.pwned=2">', '{{7*7}}', '"q\'uote']
RUN_TIMEOUT = 120_000


def hostile_csv(path: Path) -> Path:
    """Columns, categories and classes named with markup, template syntax and quotes."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["size", HOSTILE[0], HOSTILE[2], "label"])
        for i in range(90):
            writer.writerow([i % 7, (i * 3) % 5, HOSTILE[1] if i % 2 else HOSTILE[3], HOSTILE[i % 3]])
    return path


def hostile_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for folder in (HOSTILE[1], HOSTILE[2]):
            for i in range(6):
                image = io.BytesIO()
                Image.new("L", (8, 8), color=40 * i).save(image, "PNG")
                archive.writestr(f"{folder}/{i}.png", image.getvalue())
    return path


def watch(page: Page) -> list[str]:
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    return problems


def assert_harmless(page: Page, problems: list[str]) -> None:
    assert page.evaluate("() => window.pwned === undefined"), "a hostile name ran as a script"
    assert not problems, problems
    shown = re.sub(r"\d\d:\d\d", "", page.locator("main").inner_text().replace("1,049", ""))  # not the clock
    assert "49" not in shown  # {{7*7}} was not evaluated
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} is {width} px wide"  # long names wrap or scroll


def upload(page: Page, kind: str, path: Path, target: str = "") -> None:
    wait_for_htmx(page)
    page.click("summary:has-text('Upload your own data')")
    page.select_option("#upload-kind", kind)
    page.set_input_files("#upload-file", str(path))
    if target:
        page.fill("#upload-target", target)
    page.click("#upload-button")
    expect(page.locator("#messages .flash")).to_contain_text("Uploaded", timeout=60_000)
    wait_for_htmx(page)


def test_hostile_names_are_shown_as_text_on_every_page(page: Page, live_server: str, tmp_path: Path) -> None:
    problems = watch(page)
    editor = create_model(page, live_server, "Hostile", "dense", wait_for_summary=True)
    upload(page, "csv", hostile_csv(tmp_path / f"{HOSTILE[1]}.csv"), target="label")  # the file name too
    assert_harmless(page, problems)
    # The class names reach the editor's data panel and the output layer's advice.
    expect(page.locator("#train-panel")).to_contain_text("3 classes")

    page.click("#fit-output-button")
    wait_for_htmx(page)
    page.fill("#t-epochs", "2")
    page.click("#train-button")
    page.wait_for_url(re.compile(r"/runs/\d+$"), timeout=STEP_TIMEOUT)
    expect(page.locator("#run-state")).to_have_text("completed", timeout=RUN_TIMEOUT)
    table = page.locator("#confusion-matrix")
    for name in (HOSTILE[0], HOSTILE[2]):
        expect(table).to_contain_text(name)  # shown as text, exactly as given
    assert_harmless(page, problems)
    save_screenshot(page, "hostile-run.png")

    dataset_url = page.locator("#run-header a[href^='/datasets/']").get_attribute("href")
    for url in (live_server + str(dataset_url), live_server + "/runs", live_server + "/", editor):
        page.goto(url)
        page.wait_for_load_state("networkidle")
        assert_harmless(page, problems)
    page.goto(live_server + str(dataset_url))
    expect(page.locator("main")).to_contain_text(HOSTILE[0])  # a column name, in the preview
    save_screenshot(page, "hostile-dataset.png")

    page.goto(editor)
    upload(page, "images", hostile_zip(tmp_path / "folders.zip"))
    expect(page.locator("#train-panel")).to_contain_text("2 classes")
    page.goto(live_server + "/docs")
    expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/models", timeout=STEP_TIMEOUT)
    assert_harmless(page, problems)
