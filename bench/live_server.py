"""Start and stop the app as a real server process for the benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown stops its workers too
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_server(data_dir: str, port: int,
                 extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, float]:
    """Launch the server with the `layerlab` command, as the README does (its log goes to
    server.log in the data folder); returns the process and the seconds until GET / answered."""
    env = {**os.environ, "LAYERLAB_DATA_DIR": data_dir, **(extra_env or {})}
    started = time.perf_counter()
    with open(Path(data_dir) / "server.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return proc, time.perf_counter() - started
        except httpx.TransportError:
            pass
        if time.perf_counter() - started > 60:
            raise RuntimeError("the server did not serve GET / within 60 s")
        time.sleep(0.01)
