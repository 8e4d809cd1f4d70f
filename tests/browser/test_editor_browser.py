"""The model editor in a real browser: HTMX swaps, forms, errors, undo, keyboard.

Every action waits for its visible result (a shape in the summary, a layer in
the list), never for a fixed time. The first Keras summary of the session can
take a while because TensorFlow starts in the inspector worker.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Response, expect

from tests.browser.helpers import (
    FIRST_SUMMARY_TIMEOUT,
    STEP_TIMEOUT,
    create_model,
    layer_items,
    save_screenshot,
    wait_for_htmx,
)

pytestmark = pytest.mark.browser


def selected_shape(page: Page):
    """The output shape the summary shows for the selected layer."""
    return page.locator("#summary table.summary-table tr.selected td.shape")


def add_layer(page: Page, type_name: str, *, expected_count: int, timeout: float = STEP_TIMEOUT) -> None:
    """Add a layer after the selected one and wait until it is in the list and selected."""
    wait_for_htmx(page)
    page.select_option("#add-layer-type", type_name)
    expect(page.locator("#add-layer-type")).to_have_value(type_name)
    page.click("#add-layer-button")
    expect(layer_items(page)).to_have_count(expected_count, timeout=timeout)
    expect(page.locator("#layer-form-title .muted")).to_have_text(type_name, timeout=timeout)
    wait_for_htmx(page)


def is_layer_post(response: Response) -> bool:
    return response.request.method == "POST" and "/layers/" in response.url


def set_field(page: Page, field_id: str, value: str) -> None:
    """Type a value into a layer-form field, submit it with Enter and wait for the swap.

    Waiting matters even when the visible result does not change: the answer
    re-renders every panel, the add-layer <select> included, so a choice made
    before it arrives would be reset.
    """
    field = page.locator(f"#{field_id}")
    field.fill(value)
    with page.expect_response(is_layer_post, timeout=STEP_TIMEOUT):
        field.press("Enter")
    wait_for_htmx(page)


def open_editor_until_summary(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#summary table.summary-table")).to_be_visible(timeout=FIRST_SUMMARY_TIMEOUT)


# --- tests -----------------------------------------------------------------

@pytest.mark.browser
def test_build_convnet_from_blank_by_clicking(page: Page, live_server: str) -> None:
    url = create_model(page, live_server, "Clicked convnet", "blank")
    expect(layer_items(page)).to_have_count(0)

    # Input, with its shape typed in and applied.
    add_layer(page, "Input", expected_count=1)
    set_field(page, "f-shape", "28,28,1")
    expect(page.locator("#f-shape")).to_have_value("28,28,1")
    expect(selected_shape(page)).to_have_text("(None, 28, 28, 1)", timeout=FIRST_SUMMARY_TIMEOUT)

    add_layer(page, "Conv2D", expected_count=2)
    expect(page.locator("#f-filters")).to_have_value("32")
    expect(page.locator("#f-kernel_size")).to_have_value("3,3")
    expect(page.locator("#f-activation")).to_have_value("relu")
    expect(selected_shape(page)).to_have_text("(None, 26, 26, 32)")

    add_layer(page, "MaxPooling2D", expected_count=3)
    expect(selected_shape(page)).to_have_text("(None, 13, 13, 32)")

    add_layer(page, "Conv2D", expected_count=4)
    expect(selected_shape(page)).to_have_text("(None, 11, 11, 32)")
    set_field(page, "f-filters", "64")
    expect(selected_shape(page)).to_have_text("(None, 11, 11, 64)")

    add_layer(page, "MaxPooling2D", expected_count=5)
    expect(selected_shape(page)).to_have_text("(None, 5, 5, 64)")

    add_layer(page, "Conv2D", expected_count=6)
    expect(selected_shape(page)).to_have_text("(None, 3, 3, 32)")
    set_field(page, "f-filters", "64")
    expect(selected_shape(page)).to_have_text("(None, 3, 3, 64)")

    add_layer(page, "Flatten", expected_count=7)
    expect(selected_shape(page)).to_have_text("(None, 576)")

    add_layer(page, "Dense", expected_count=8)
    set_field(page, "f-units", "64")
    expect(page.locator("#f-activation")).to_have_value("relu")
    expect(selected_shape(page)).to_have_text("(None, 64)")

    add_layer(page, "Dense", expected_count=9)
    set_field(page, "f-units", "10")
    expect(selected_shape(page)).to_have_text("(None, 10)")
    with page.expect_response(is_layer_post, timeout=STEP_TIMEOUT):
        page.select_option("#f-activation", "softmax")  # a select posts the form on change
    expect(layer_items(page).nth(8).locator(".layer-type")).to_have_text(re.compile(r"softmax"))
    expect(page.locator("#f-activation")).to_have_value("softmax")
    wait_for_htmx(page)

    shapes = page.locator("#summary table.summary-table tbody td.shape")
    expected_shapes = ["(None, 26, 26, 32)", "(None, 13, 13, 32)", "(None, 11, 11, 64)", "(None, 5, 5, 64)",
                       "(None, 3, 3, 64)", "(None, 576)", "(None, 64)", "(None, 10)"]
    shown = shapes.all_inner_texts()
    assert shown[-len(expected_shapes):] == expected_shapes, shown
    expect(page.locator("#total-params")).to_have_text("93,322")
    expect(page.locator("#diagram svg")).to_contain_text("(None, 3, 3, 64)")
    expect(page.locator("#messages .message.error")).to_have_count(0)

    # Everything was stored: a fresh load of the editor shows the same model.
    page.goto(url)
    expect(page.locator("#total-params")).to_have_text("93,322", timeout=FIRST_SUMMARY_TIMEOUT)
    expect(layer_items(page)).to_have_count(9)

    save_screenshot(page, "editor-convnet.png")


def select_dense_64(page: Page) -> str:
    """Select the first Dense layer with 64 units of the dense starter; returns its id."""
    layer = layer_items(page).filter(has_text=re.compile(r"Dense · 64\b")).first
    layer_id = layer.get_attribute("data-layer-id")
    assert layer_id
    layer.locator("a.layer-select").click()
    expect(page.locator(f"#layer-list li[data-layer-id='{layer_id}']")).to_have_class(re.compile(r"\bselected\b"))
    expect(page.locator("#f-units")).to_have_value("64")
    wait_for_htmx(page)
    return layer_id


def expect_units_error(page: Page) -> None:
    error = page.locator("#f-units-error.field-error")
    expect(error).to_be_visible(timeout=10_000)
    expect(error).to_contain_text("Expected an integer between 1 and")
    # Next to the field: in the same .field block as the input, which is marked invalid.
    expect(page.locator(".field", has=page.locator("#f-units")).locator(".field-error")).to_be_visible()
    expect(page.locator("#f-units")).to_have_attribute("aria-invalid", "true")


def expect_units_stored(page: Page, url: str, layer_id: str, units: str) -> None:
    page.goto(f"{url}?layer={layer_id}")
    expect(page.locator("#f-units")).to_have_value(units)
    expect(page.locator(".field-error")).to_have_count(0)


@pytest.mark.browser
def test_bad_value_is_explained_and_not_stored(page: Page, live_server: str) -> None:
    url = create_model(page, live_server, "Bad units", "dense")
    expect(layer_items(page)).to_have_count(5)
    layer_id = select_dense_64(page)

    page.fill("#f-units", "0")
    with page.expect_response(is_layer_post, timeout=STEP_TIMEOUT) as answer:
        page.press("#f-units", "Enter")
    assert answer.value.status == 422
    wait_for_htmx(page)
    expect_units_error(page)
    expect(page.locator("#f-units")).to_have_value("0")  # the typed value is kept for correction
    expect(page.locator("#messages .message.error")).to_contain_text("Not applied.")
    expect_units_stored(page, url, layer_id, "64")


@pytest.mark.browser
def test_layer_name_with_html_is_refused(page: Page, live_server: str) -> None:
    url = create_model(page, live_server, "Html name", "dense")
    expect(layer_items(page)).to_have_count(5)
    selected = page.locator("#layer-list li.layer-item.selected")
    layer_id = selected.get_attribute("data-layer-id")
    old_name = page.locator("#f-name").input_value()
    assert old_name

    set_field(page, "f-name", "<b>x</b>")
    error = page.locator("#f-name-error.field-error")
    expect(error).to_be_visible(timeout=STEP_TIMEOUT)
    expect(error).to_contain_text("<b>x</b>")  # shown as text, not as markup
    expect(page.locator("#messages .message.error")).to_contain_text("Not applied.")
    assert page.locator("b").filter(has_text=re.compile(r"^x$")).count() == 0
    assert page.evaluate("() => [...document.querySelectorAll('b')].some(b => b.textContent === 'x')") is False

    page.goto(f"{url}?layer={layer_id}")
    expect(page.locator("#f-name")).to_have_value(old_name)
    expect(page.locator(f"#layer-list li[data-layer-id='{layer_id}'] .layer-name")).to_have_text(old_name)
    assert page.locator("b").filter(has_text=re.compile(r"^x$")).count() == 0


@pytest.mark.browser
def test_undo_and_keyboard(page: Page, live_server: str) -> None:
    create_model(page, live_server, "Undo and keys", "dense")
    expect(layer_items(page)).to_have_count(5)
    expect(page.locator("#undo-button")).to_be_disabled()

    add_layer(page, "Dropout", expected_count=6)
    expect(page.locator("#layer-list .layer-type", has_text="Dropout")).to_have_count(1)
    expect(page.locator("#undo-button")).to_be_enabled()

    page.click("#undo-button")
    expect(layer_items(page)).to_have_count(5, timeout=STEP_TIMEOUT)
    expect(page.locator("#layer-list .layer-type", has_text="Dropout")).to_have_count(0)
    expect(page.locator("#messages .flash")).to_contain_text("Undone")
    wait_for_htmx(page)

    # The Add button is reachable and usable from the keyboard alone.
    page.focus("#add-layer-type")
    chosen = page.locator("#add-layer-type").input_value()
    page.keyboard.press("Tab")
    expect(page.locator("#add-layer-button")).to_be_focused()
    page.keyboard.press("Enter")
    expect(layer_items(page)).to_have_count(6, timeout=STEP_TIMEOUT)
    expect(page.locator("#layer-form-title .muted")).to_have_text(chosen)
