"""Data and training in a real browser: upload and preview, attach, train, watch, stop, explain.

Every step waits for its visible result (a flash, a shape, a badge, an element),
never for a fixed time. The first dataset preparation and the first training of
the session can take a while because TensorFlow starts in the workers.
"""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, Response, expect

from tests.browser.helpers import STEP_TIMEOUT, create_model, layer_items, save_screenshot, wait_for_htmx

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DATA_TIMEOUT = 90_000           # ms: preparing a dataset (the data worker may start first)
RUN_START_TIMEOUT = 60_000      # ms: a queued run becomes running (the training worker starts)
RUN_FINISH_TIMEOUT = 90_000     # ms: a short run trains, is tested and is shown
STOP_TIMEOUT = 15_000           # ms: a stopped run reads cancelled


# --- helpers ---------------------------------------------------------------


def input_layer(page: Page):
    return layer_items(page).filter(has=page.locator(".layer-type", has_text=re.compile(r"^Input\b")))


def output_layer(page: Page):
    return layer_items(page).last


def is_post_to(suffix: str):
    def matches(response: Response) -> bool:
        return response.request.method == "POST" and response.url.split("?")[0].endswith(suffix)
    return matches


def use_builtin_dataset(page: Page, key: str, title: str) -> None:
    """Choose a built-in dataset in the training panel, press Use and wait until it is attached."""
    wait_for_htmx(page)
    page.select_option("#dataset-select", f"builtin:{key}")
    expect(page.locator("#dataset-select")).to_have_value(f"builtin:{key}")
    with page.expect_response(is_post_to("/dataset"), timeout=DATA_TIMEOUT) as answer:
        page.click("#use-dataset-button")
    assert answer.value.status == 200, answer.value.text()[:2000]
    expect(page.locator("#train-panel .current-dataset a")).to_contain_text(title)
    expect(page.locator("#messages .flash")).to_contain_text("the Input layer now takes its shape")
    wait_for_htmx(page)


def write_houses_csv(path: Path, rows: int = 60) -> Path:
    """3 numeric features, 1 text feature with 3 values, and a numeric target `price` in the middle."""
    rng = random.Random(7)
    colours = ["red", "green", "blue"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["area", "rooms", "price", "colour", "age"])
        for i in range(rows):
            area = round(rng.uniform(40, 200), 1)
            rooms = rng.randint(1, 6)
            age = rng.randint(0, 80)
            colour = colours[i % 3]
            price = round(1000 * area + 5000 * rooms - 300 * age + 7000 * colours.index(colour)
                          + rng.uniform(-2000, 2000), 2)
            writer.writerow([area, rooms, price, colour, age])
    return path


def start_training(page: Page, epochs: int) -> int:
    """Set the epochs, press Train and land on the run page; returns the run's id."""
    wait_for_htmx(page)
    page.fill("#t-epochs", str(epochs))
    page.click("#train-button")
    page.wait_for_url(re.compile(r"/runs/\d+$"), timeout=STEP_TIMEOUT)
    page.wait_for_load_state("load")
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def expect_canvas_drawn(page: Page, box_selector: str, timeout: float) -> None:
    canvas = page.locator(f"{box_selector} canvas").first
    expect(canvas).to_be_visible(timeout=timeout)
    size = canvas.bounding_box()
    assert size and size["width"] > 0 and size["height"] > 0, size


def epochs_done(page: Page) -> int:
    return int(page.evaluate("() => document.getElementById('run-progress').value"))


# --- tests -----------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.slow
def test_csv_upload_preview_and_attach(page: Page, live_server: str, tmp_path: Path) -> None:
    create_model(page, live_server, "Houses", "regression", wait_for_summary=True)
    expect(input_layer(page).locator(".layer-shape")).to_have_text("(None, 8)")
    csv_path = write_houses_csv(tmp_path / "houses.csv")

    page.locator("#train-panel details.upload > summary").click()
    expect(page.locator("#upload-kind")).to_be_visible()
    page.select_option("#upload-kind", "csv")
    page.set_input_files("#upload-file", str(csv_path))
    page.fill("#upload-target", "price")
    with page.expect_response(is_post_to("/dataset/upload"), timeout=DATA_TIMEOUT) as answer:
        page.click("#upload-button")
    assert answer.value.status == 200, answer.value.text()[:2000]
    wait_for_htmx(page)

    expect(page.locator("#messages .flash")).to_contain_text("Uploaded houses")
    expect(page.locator("#train-panel .message.error")).to_have_count(0)
    # 3 numeric columns + 3 one-hot columns for the colour: 6 features per sample.
    expect(input_layer(page).locator(".layer-shape")).to_have_text("(None, 6)", timeout=STEP_TIMEOUT)
    shapes = page.locator("#summary table.summary-table tbody td.shape").all_inner_texts()
    assert shapes and shapes[0] == "(None, 6)", shapes  # the summary's first row is the Input
    dataset_link = page.locator("#train-panel .current-dataset a")
    expect(dataset_link).to_have_text("houses")
    expect(page.locator("#train-panel .current-dataset")).to_contain_text("regression")
    expect(page.locator("#train-button")).to_be_visible()

    dataset_link.click()
    page.wait_for_url(re.compile(r"/datasets/\d+$"))
    expect(page.locator("h1")).to_have_text("houses")

    # The first rows, as they were in the file.
    rows_table = page.locator("table.data-rows").filter(has=page.locator("th", has_text=re.compile(r"^price$")))
    expect(rows_table).to_have_count(1)
    expect(rows_table.locator("thead th")).to_have_text(["area", "rooms", "price", "colour", "age"])
    assert rows_table.locator("tbody tr").count() >= 3
    with open(csv_path, newline="") as handle:
        first_row = list(csv.reader(handle))[1]
    expect(rows_table.locator("tbody tr").first.locator("td")).to_have_text(first_row)

    # The column statistics say how each column is used.
    columns = page.locator("table.data-rows").filter(has=page.locator("th", has_text="Treated as"))
    expect(columns).to_have_count(1)
    colour_row = columns.locator("tbody tr").filter(has=page.locator("td", has_text=re.compile(r"^colour$")))
    expect(colour_row.locator("td").nth(1)).to_have_text(re.compile(r"categorical|one-hot"))
    price_row = columns.locator("tbody tr").filter(has=page.locator("td", has_text=re.compile(r"^price$")))
    expect(price_row.locator("td").nth(1)).to_have_text("target")
    area_row = columns.locator("tbody tr").filter(has=page.locator("td", has_text=re.compile(r"^area$")))
    expect(area_row.locator("td").nth(1)).to_have_text("numeric")

    # The split sizes add up to the rows of the file.
    splits = page.locator("table.splits tbody tr")
    expect(splits).to_have_count(3)
    sizes = {}
    for i in range(3):
        cells = splits.nth(i).locator("td").all_inner_texts()
        sizes[cells[0]] = int(cells[1].replace(",", ""))
        assert cells[2] in ("(6)", "(6,)"), cells
    assert set(sizes) == {"train", "val", "test"}, sizes
    assert sum(sizes.values()) == 60 and all(v > 0 for v in sizes.values()), sizes

    save_screenshot(page, "dataset-csv-preview.png")


@pytest.mark.browser
@pytest.mark.slow
def test_train_and_watch_the_curve(page: Page, live_server: str) -> None:
    create_model(page, live_server, "Digits dense", "dense", wait_for_summary=True)
    use_builtin_dataset(page, "digits28", "Digits")
    expect(input_layer(page).locator(".layer-shape")).to_have_text("(None, 28, 28, 1)")
    expect(page.locator("#train-button")).to_be_visible()

    start_training(page, epochs=6)
    expect(page.locator("#run-state")).to_be_visible()
    # The loss chart is drawn at once; the metric chart once the first epoch has arrived.
    expect_canvas_drawn(page, "#loss-chart", STEP_TIMEOUT)
    expect_canvas_drawn(page, "#metric-chart", RUN_START_TIMEOUT + RUN_FINISH_TIMEOUT)

    expect(page.locator("#confusion-matrix")).to_be_visible(timeout=RUN_FINISH_TIMEOUT)
    expect(page.locator("#run-state")).to_have_text("completed")
    expect(page.locator("#run-progress-text")).to_contain_text("Epoch 6 of 6")
    expect(page.locator("#stop-button")).to_have_count(0)
    expect_canvas_drawn(page, "#loss-chart", STEP_TIMEOUT)

    accuracy_text = page.locator("#test-accuracy").inner_text().strip()
    accuracy = float(accuracy_text)
    assert accuracy >= 0.85, f"test accuracy {accuracy_text}"
    expect(page.locator("#confusion-matrix tbody tr")).to_have_count(10)

    samples = page.locator("#evaluation img.samples")
    expect(samples).to_be_visible()
    samples.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=samples.element_handle(),
                           timeout=STEP_TIMEOUT)

    download = page.locator("#run-header a[download]")
    expect(download).to_have_text(re.compile(r"Download model"))
    href = download.get_attribute("href")
    assert href
    answer = page.request.get(live_server + href if href.startswith("/") else href)
    assert answer.status == 200, answer.status
    assert answer.body()[:2] == b"PK"

    save_screenshot(page, "run-completed.png")


@pytest.mark.browser
@pytest.mark.slow
def test_stop_a_run(page: Page, live_server: str) -> None:
    create_model(page, live_server, "Digits stopped", "dense", wait_for_summary=True)
    use_builtin_dataset(page, "digits28", "Digits")
    start_training(page, epochs=200)

    expect(page.locator("#run-state")).to_have_text("running", timeout=RUN_START_TIMEOUT)
    # Let one epoch finish, so that the run can be resumed from it.
    page.wait_for_function("() => document.getElementById('run-progress').value >= 1",
                           timeout=RUN_START_TIMEOUT)
    expect(page.locator("#run-state")).to_have_text("running")

    with page.expect_response(is_post_to("/stop"), timeout=STEP_TIMEOUT) as answer:
        page.click("#stop-button")
    assert answer.value.status == 204  # the live stream, not this answer, brings the new state
    expect(page.locator("#run-state")).to_have_text("cancelled", timeout=STOP_TIMEOUT)
    expect(page.locator("#stop-button")).to_have_count(0, timeout=STOP_TIMEOUT)
    wait_for_htmx(page)

    done = epochs_done(page)
    assert 1 <= done < 200, done
    # Every epoch it reports is kept: resume continues after it, and that model can be tested and downloaded.
    expect(page.locator("#resume-button")).to_have_text(f"Resume after epoch {done}", timeout=STOP_TIMEOUT)
    expect(page.locator("#download-model")).to_have_text(f"Download epoch {done} (.keras)")
    expect(page.locator("#evaluate-button")).to_have_text(f"Test epoch {done}")
    save_screenshot(page, "run-cancelled.png")

    # A second tab on the same run, then Resume in the first: both follow the run live, no reload.
    other = page.context.new_page()
    other.goto(page.url)
    expect(other.locator("#run-state")).to_have_text("cancelled")
    page.click("#resume-button")
    for tab in (page, other):
        tab.wait_for_function(f"() => document.getElementById('run-progress').value > {done}",
                              timeout=RUN_START_TIMEOUT)
        expect(tab.locator("#run-state")).to_have_text("running")
        expect(tab.locator("#stop-button")).to_be_visible()
    page.click("#stop-button")
    for tab in (page, other):
        expect(tab.locator("#run-state")).to_have_text("cancelled", timeout=STOP_TIMEOUT)
    other.close()


@pytest.mark.browser
@pytest.mark.slow
def test_output_that_does_not_fit_is_explained(page: Page, live_server: str) -> None:
    create_model(page, live_server, "Iris regression", "regression", wait_for_summary=True)
    expect(output_layer(page).locator(".layer-type")).to_have_text("Dense · 1 · linear")

    use_builtin_dataset(page, "iris", "Iris")
    expect(input_layer(page).locator(".layer-shape")).to_have_text("(None, 4)", timeout=STEP_TIMEOUT)
    issue = output_layer(page).locator(".layer-issue.error")
    expect(issue).to_be_visible()
    expect(issue).to_contain_text("1 unit")
    expect(issue).to_contain_text("3 classes")
    expect(output_layer(page)).to_have_class(re.compile(r"\bhas-error\b"))
    expect(page.locator("#train-panel")).to_contain_text("3 units with softmax")

    save_screenshot(page, "editor-output-mismatch.png")

    with page.expect_response(is_post_to("/dataset/fit-output"), timeout=STEP_TIMEOUT) as answer:
        page.click("#fit-output-button")
    assert answer.value.status == 200, answer.value.text()[:2000]
    wait_for_htmx(page)
    expect(page.locator("#messages .flash")).to_contain_text("The output layer now fits the data")
    expect(output_layer(page).locator(".layer-type")).to_have_text("Dense · 3 · softmax")
    expect(output_layer(page).locator(".layer-shape")).to_have_text("(None, 3)")
    expect(page.locator("#layer-list .layer-issue.error")).to_have_count(0)
    expect(output_layer(page)).not_to_have_class(re.compile(r"\bhas-error\b"))
    expect(page.locator("#fit-output-button")).to_have_count(0)


@pytest.mark.browser
@pytest.mark.slow
def test_bad_training_setting_is_explained(page: Page, live_server: str) -> None:
    url = create_model(page, live_server, "Zero epochs", "dense", wait_for_summary=True)
    use_builtin_dataset(page, "digits28", "Digits")
    expect(page.locator("#train-panel .model-runs")).to_contain_text("No runs yet.")

    page.fill("#t-epochs", "0")
    with page.expect_response(is_post_to("/runs"), timeout=STEP_TIMEOUT) as answer:
        page.click("#train-button")
    assert answer.value.status == 422, answer.value.status
    wait_for_htmx(page)

    assert page.url == url
    error = page.locator(".field", has=page.locator("#t-epochs")).locator(".field-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("epochs")
    expect(page.locator("#t-epochs")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#t-epochs")).to_have_value("0")  # kept for correction
    expect(page.locator("#train-panel .model-runs")).to_contain_text("No runs yet.")
    save_screenshot(page, "editor-bad-epochs.png")

    # Nothing was stored: a fresh load still shows no run, and the default epochs.
    page.goto(url)
    expect(page.locator("#train-panel .model-runs")).to_contain_text("No runs yet.")
    expect(page.locator(".field-error")).to_have_count(0)
    assert page.locator("#t-epochs").input_value() != "0"


@pytest.mark.browser
@pytest.mark.slow
def test_an_autoencoder_trains_on_its_input_and_shows_reconstructions(page: Page, live_server: str) -> None:
    create_model(page, live_server, "Digits autoencoder", "autoencoder", wait_for_summary=True)
    use_builtin_dataset(page, "digits28", "Digits")
    # Its output is shaped like the images, so the suggested target is the input itself
    expect(page.locator("#t-target")).to_have_value("input")
    expect(page.locator("#t-loss")).to_have_value("mean_squared_error")
    expect(page.locator("#fit-output-button")).to_have_count(0)

    start_training(page, epochs=2)
    pictures = page.locator("#evaluation img#reconstructions")
    expect(pictures).to_be_visible(timeout=RUN_START_TIMEOUT + RUN_FINISH_TIMEOUT)
    expect(page.locator("#run-state")).to_have_text("completed")
    expect(page.locator("#confusion-matrix")).to_have_count(0)
    expect(page.locator("#reconstruction-errors")).to_contain_text("Mean squared error per test sample")
    pictures.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=pictures.element_handle(),
                           timeout=STEP_TIMEOUT)
    save_screenshot(page, "autoencoder-run.png")
