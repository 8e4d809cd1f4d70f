"""A workshop in a real browser: the instructor opens it, participants join and train, the dashboard follows live.

Screenshots at projector size (1280x720) go to test-artifacts/: the projector view, the dashboard
while two participants train, and the join page on a phone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.helpers import STEP_TIMEOUT, save_screenshot
from tests.server_process import start_server, stop_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "projector and chalk"
PROJECTOR = {"width": 1280, "height": 720}
TRAINING_TIMEOUT = 120_000  # ms: a fresh worker's TensorFlow start-up, then a few epochs


@pytest.fixture(scope="module")
def workshop_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, base_url = start_server(tmp_path_factory.mktemp("workshop-browser"), env={
        "LAYERLAB_MODE": "workshop", "LAYERLAB_INSTRUCTOR_PASSWORD": PASSWORD, "LAYERLAB_MAX_RUNNING_RUNS": "1",
        "LAYERLAB_WARM_TRAINING_WORKERS": "0"})
    try:
        yield base_url
    finally:
        stop_server(process)


def participant_trains(base_url: str, code: str, name: str, epochs: int) -> tuple[httpx.Client, int]:
    """A participant who joins over the API, builds a small dense network on Digits and starts training."""
    joined = httpx.post(f"{base_url}/api/v1/workshops/join", json={"code": code, "display_name": name})
    assert joined.status_code == 201, joined.text
    client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {joined.json()['token']}"},
                          timeout=60)
    dataset = client.post("/api/v1/datasets", json={"key": "digits"})
    assert dataset.status_code == 201, dataset.text
    dataset = dataset.json()
    model = client.post("/api/v1/models", json={"name": f"{name} net", "starter": "dense"}).json()
    assert client.put(f"/api/v1/models/{model['id']}/dataset", json={"dataset_id": dataset["id"]}).status_code == 200
    assert client.post(f"/api/v1/models/{model['id']}/dataset/fit-output").status_code == 200
    run = client.post(f"/api/v1/models/{model['id']}/runs", json={"epochs": epochs})
    assert run.status_code == 201, run.text
    return client, run.json()["id"]


def test_the_dashboard_follows_the_room_live(browser: Browser, workshop_server: str):
    base_url = workshop_server
    context = browser.new_context(viewport=PROJECTOR)
    context.set_default_timeout(STEP_TIMEOUT)
    page = context.new_page()

    # Nothing without signing in: the door is the join page.
    page.goto(base_url + "/")
    expect(page).to_have_url(re.compile(r"/join$"))
    page.get_by_role("link", name="Sign in as the instructor").click()
    page.fill("#password", "not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#sign-in-error")).to_contain_text("not the instructor password")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/workshops$"))

    page.fill("#w-name", "Friday <b>neural nets</b>")
    page.get_by_role("button", name="Open the workshop").click()
    expect(page).to_have_url(re.compile(r"/workshops/\d+$"))
    expect(page.locator("#workshop-title")).to_contain_text("Friday <b>neural nets</b>")  # shown as text
    code = page.locator("#join-code").inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", code)
    expect(page.locator("img.qr")).to_be_visible()
    page.wait_for_function("() => document.querySelector('img.qr').complete")
    assert page.evaluate("() => document.querySelector('img.qr').naturalWidth") > 0  # the QR code is drawn

    page.get_by_role("link", name="Show on the projector").click()
    expect(page.locator(".projector-code")).to_have_text(code)
    save_screenshot(page, "workshop-projector-1280.png")
    page.go_back()

    # A participant joins in another browser; their PIN is shown once.
    phone = browser.new_context(viewport={"width": 390, "height": 800})
    joining = phone.new_page()
    joining.goto(f"{base_url}/join?code={code.replace('-', '')}")
    expect(joining.locator("#join-code")).to_have_value(code)
    save_screenshot(joining, "workshop-join-390.png")
    joining.fill("#join-name", "Grace")
    joining.get_by_role("button", name="Join").click()
    expect(joining.locator("#pin")).to_have_text(re.compile(r"^\d{6}$"))
    save_screenshot(joining, "workshop-welcome-390.png")

    # The dashboard hears of it, and of two participants training, without a reload.
    expect(page.locator("#participants")).to_contain_text("Grace", timeout=STEP_TIMEOUT)
    ada, ada_run = participant_trains(base_url, code, "Ada", epochs=8)
    bob, bob_run = participant_trains(base_url, code, "Bob", epochs=8)
    ada_row = page.locator("#participants tr[data-participant='Ada']")
    expect(ada_row.locator(".badge")).to_have_text("training", timeout=TRAINING_TIMEOUT)
    expect(page.locator("#participants tr[data-participant='Bob'] .badge")).to_have_text("queued")
    expect(page.locator("#queue")).to_contain_text("Bob")
    expect(ada_row).to_contain_text(re.compile(r"epoch \d+ of 8"), timeout=TRAINING_TIMEOUT)
    save_screenshot(page, "workshop-dashboard-1280.png")

    # One click stops Ada's run; Bob's then starts.
    ada_row.get_by_role("button", name=re.compile("Stop Ada")).click()
    expect(page.locator("#participants tr[data-participant='Bob'] .badge")).to_have_text(
        "training", timeout=TRAINING_TIMEOUT)
    assert ada.get(f"/api/v1/runs/{ada_run}").json()["state"] == "cancelled"
    # The instructor opens a participant's model, read-only.
    page.locator("#participants").get_by_role("link", name="Ada").click()
    expect(page.locator("#p-title")).to_have_text("Ada")
    expect(page.locator(".layer-table")).to_contain_text("Dense")
    save_screenshot(page, "workshop-participant-1280.png")
    bob.post(f"/api/v1/runs/{bob_run}/stop")
    ada.close()
    bob.close()
    phone.close()
    context.close()
