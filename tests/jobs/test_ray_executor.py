"""What only the Ray executor meets: a cluster that cannot be reached at start, and a cluster lost mid-run.
(tests/jobs/test_executors.py runs the suite every executor shares on a real local Ray instance.)"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.jobs.runs import FIRST_RUN_TIMEOUT, forget_ray_processes, long_run
from tests.web.live_server import app_without_warm_up, model_on, ok, start_run, wait_for_run, workspace_client

# Ray leaves files and processes to the garbage collector on its own (its start-up, its shutdown): not ours
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]

if os.environ.get("LAYERLAB_REQUIRE_RAY") != "1":
    pytest.importorskip("ray", reason="Ray is the optional extra layerlab[ray]")

RAY = Path(sys.executable).with_name("ray")


def test_an_unreachable_ray_cluster_stops_the_server_from_starting_at_once(tmp_path):
    from app.jobs.ray_executor import RayUnavailable
    from app.main import create_app

    settings = Settings(data_dir=tmp_path, executor="ray", ray_address="127.0.0.1:9")
    with pytest.raises(RayUnavailable, match=r"cannot reach the Ray cluster at 127\.0\.0\.1:9 .*LAYERLAB_RAY_ADDRESS"):
        create_app(settings)


def test_the_layerlab_command_refuses_an_unreachable_cluster_in_one_sentence(tmp_path):
    env = {**os.environ, "LAYERLAB_DATA_DIR": str(tmp_path), "LAYERLAB_EXECUTOR": "ray",
           "LAYERLAB_RAY_ADDRESS": "127.0.0.1:9"}
    command = subprocess.run([str(Path(sys.executable).with_name("layerlab"))], env=env, capture_output=True,
                             text=True, timeout=120)
    assert command.returncode == 1
    assert command.stderr.startswith("layerlab: cannot reach the Ray cluster at 127.0.0.1:9 (")
    assert "LAYERLAB_RAY_ADDRESS" in command.stderr and "Traceback" not in command.stderr
    assert command.stdout == ""  # it never claimed to serve


class RayHead:
    """A Ray cluster's head of the test's own (`ray start --head`), which it can lose and bring back."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.temp_dir = tempfile.mkdtemp(prefix="rayhead", dir="/tmp")  # short: Ray's socket paths have a limit

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        subprocess.run([str(RAY), "start", "--head", f"--port={self.port}", "--num-cpus=2",
                        f"--temp-dir={self.temp_dir}", "--include-dashboard=false", "--disable-usage-stats"],
                       check=True, capture_output=True, timeout=120)

    def lose(self) -> None:
        """Every process of this cluster killed at once, as when its machine goes down."""
        for process in psutil.process_iter(["cmdline"]):
            if any(self.temp_dir in part for part in process.info["cmdline"] or []):
                process.kill()


@pytest.fixture
def ray_head() -> Iterator[RayHead]:
    head = RayHead()
    head.start()
    yield head
    head.lose()


def test_a_lost_cluster_fails_its_runs_and_the_server_carries_on_when_it_is_back(ray_head, tmp_path):
    settings = Settings(data_dir=tmp_path, executor="ray", ray_address=ray_head.address, workspaces_per_hour=10**6)
    with TestClient(app_without_warm_up(settings)) as server:
        client = workspace_client(server)
        run = long_run(client)
        ray_head.lose()
        lost = wait_for_run(client, run["id"], timeout=90)
        assert lost["state"] == "failed" and "Ray" in lost["reason"], lost["reason"]
        assert lost["saved_epoch"] >= 1 and lost["resumable"]
        assert ok(client.get("/api/v1/models"))  # the server keeps answering

        refused = wait_for_run(client, start_run(client, run["model_id"], epochs=1)["id"], timeout=30)
        assert refused["state"] == "failed"
        assert f"cannot reach the Ray cluster at {ray_head.address}" in refused["reason"]

        ray_head.start()  # the cluster is back: the next run reaches it
        back = wait_for_run(client, start_run(client, model_on(client, "iris")["id"], epochs=1)["id"],
                            timeout=FIRST_RUN_TIMEOUT)
        assert back["state"] == "completed", back["reason"]
    forget_ray_processes()
