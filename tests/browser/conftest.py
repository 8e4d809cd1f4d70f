"""Fixtures for the real-browser tests: a live uvicorn server and Debian's chromium.

The server runs in its own process, exactly as `uvicorn app.main:app` would in
production, with its data directory in a pytest temporary folder. Chromium is
the system one (/usr/bin/chromium); Playwright's own browser downloads are
never used.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start the app under uvicorn on a free port; yields its base URL."""
    data_dir = tmp_path_factory.mktemp("layerlab-data")
    log_path = data_dir / "server.log"
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LAYERLAB_DATA_DIR": str(data_dir)}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT
            while not _answers(base_url + "/"):
                if process.poll() is not None:
                    pytest.fail(f"The server exited with code {process.returncode} before answering; "
                                f"its log:\n{log_path.read_text(errors='replace')}")
                if time.monotonic() > deadline:
                    pytest.fail(f"The server did not answer GET / within {SERVER_START_TIMEOUT:.0f} s; "
                                f"its log:\n{log_path.read_text(errors='replace')}")
                time.sleep(0.2)
            yield base_url
        finally:
            _stop(process)


@pytest.fixture(scope="session")
def browser() -> Iterator["Browser"]:
    """Debian's chromium, driven by Playwright's sync API."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests"
        if os.environ.get("LAYERLAB_REQUIRE_BROWSER"):  # CI: a missing browser is a failure
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: "Browser") -> Iterator["Page"]:
    """A fresh context (so a fresh workspace cookie) and page for every test."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()

