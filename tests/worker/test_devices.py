"""Where training runs (LAYERLAB_DEVICE): GPUs are hidden from a worker only when the setting says cpu, and a
setting of gpu on a machine whose TensorFlow sees none fails the run with the reason, through the real server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.web.live_server import app_without_warm_up, model_on, start_run, wait_for_run, workspace_client

pytestmark = pytest.mark.slow

WORKER_ENVIRONMENT = """
import os, sys
from app.worker.environment import quiet_tensorflow
quiet_tensorflow(sys.argv[1])
print(repr(os.environ.get("CUDA_VISIBLE_DEVICES")), repr(os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH")))
"""


@pytest.mark.parametrize("device,seen", [("cpu", "'' None"), ("auto", "None 'true'"), ("gpu", "None 'true'")])
def test_only_the_cpu_setting_hides_gpus_from_a_worker(device, seen):
    unset = ("CUDA_VISIBLE_DEVICES", "TF_FORCE_GPU_ALLOW_GROWTH")
    environment = {k: v for k, v in os.environ.items() if k not in unset}
    shown = subprocess.run([sys.executable, "-c", WORKER_ENVIRONMENT, device], env=environment, check=True,
                           capture_output=True, text=True).stdout.strip()
    assert shown == seen  # with a GPU, its memory is taken as needed so that workers can share it


def test_the_device_a_worker_sees_here_is_the_cpu_and_gpu_is_refused_with_the_reason():
    from app.worker.devices import training_device

    assert training_device("auto") == ("CPU", None) and training_device("cpu") == ("CPU", None)
    device, reason = training_device("gpu")
    assert device == "CPU" and reason and "TensorFlow sees no GPU" in reason and "LAYERLAB_DEVICE=auto" in reason


def test_a_run_on_a_gpu_server_without_a_gpu_fails_saying_why(tmp_path):
    app = app_without_warm_up(Settings(data_dir=tmp_path, device="gpu", workspaces_per_hour=1_000))
    with TestClient(app) as server:
        client = workspace_client(server)
        run = wait_for_run(client, start_run(client, model_on(client, "iris")["id"], epochs=1)["id"])
    assert run["state"] == "failed" and "LAYERLAB_DEVICE is gpu, but TensorFlow sees no GPU" in run["reason"]
