"""The app as a real server process, started as the README starts it (the `layerlab` command)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVER_START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def closed_port_url() -> str:
    """An address where nothing listens (connections are refused at once): a mirror that is down."""
    return f"http://127.0.0.1:{free_port()}/"


def start_server(data_dir: Path, port: int | None = None,
                 env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server on `data_dir` and wait until it serves its home page.

    Downloads of MNIST-style datasets go to a mirror that is down unless `env` says otherwise,
    so that tests behave the same with and without internet.
    """
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = data_dir / "server.log"
    env = {**os.environ, "LAYERLAB_DATA_DIR": str(data_dir), "LAYERLAB_DATASET_MIRROR": closed_port_url(),
           **(env or {})}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not answers(base_url + "/"):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(process)
            pytest.fail(f"The server did not start (exit code {process.returncode}); its log:\n"
                        f"{log_path.read_text(errors='replace')}")
        time.sleep(0.2)
    return process, base_url


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
