"""Runs spread over a machine's GPUs, one per GPU while one is free: which GPUs there are, which one a run gets,
and the local executor giving two runs at once a GPU each (on any machine: a process told to see a GPU that is
not there trains on the CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.config import Settings
from app.jobs.gpu_placement import least_busy, local_gpus
from tests.web.live_server import app_without_warm_up, model_on, ok, start_run, wait_for_run, workspace_client


def driver_listing(tmp_path: Path, count: int) -> Path:
    """A folder shaped like /proc/driver/nvidia/gpus: one entry per GPU, named by its PCI address."""
    for index in range(count):
        (tmp_path / f"0000:{index:02x}:00.0").mkdir()
    return tmp_path


def test_auto_places_runs_on_every_gpu_the_driver_lists(tmp_path):
    assert local_gpus("auto", "auto", {}, driver_listing(tmp_path, 4)) == ["0", "1", "2", "3"]
    assert local_gpus("auto", "gpu", {}, tmp_path / "no-driver") == []


def test_auto_keeps_to_the_gpus_the_server_was_given(tmp_path):
    gpus = driver_listing(tmp_path, 4)
    assert local_gpus("auto", "auto", {"CUDA_VISIBLE_DEVICES": "2,3"}, gpus) == ["2", "3"]
    assert local_gpus("auto", "auto", {"CUDA_VISIBLE_DEVICES": ""}, gpus) == []


def test_a_listed_setting_wins_and_cpu_or_none_places_nothing(tmp_path):
    gpus = driver_listing(tmp_path, 4)
    assert local_gpus("1,3", "auto", {}, gpus) == ["1", "3"]
    assert local_gpus("none", "auto", {}, gpus) == []
    assert local_gpus("0,1", "cpu", {}, gpus) == []


def test_a_run_goes_to_the_gpu_running_the_fewest():
    assert least_busy(["0", "1"], []) == "0"
    assert least_busy(["0", "1"], ["0"]) == "1"
    assert least_busy(["0", "1"], ["0", "1", "1"]) == "0"
    assert least_busy([], [None]) is None


@pytest.mark.parametrize("setting", ["all", "0,,1", "-1", "gpu0"])
def test_a_malformed_gpu_list_is_refused_at_start(setting):
    with pytest.raises(ValidationError, match="not a GPU list: use auto, none, or GPU indices"):
        Settings(gpus=setting)


@pytest.mark.slow
def test_two_runs_at_once_get_a_gpu_each_and_train(tmp_path):
    settings = Settings(data_dir=tmp_path, gpus="0,1", device="auto", max_running_runs=2,
                        max_running_runs_per_workspace=2, workspaces_per_hour=1_000_000)
    with TestClient(app_without_warm_up(settings)) as server:
        client = workspace_client(server)
        model = model_on(client, "iris")
        runs = [start_run(client, model["id"], epochs=1000, batch_size=1) for _ in range(2)]
        for run in runs:
            wait_for_run(client, run["id"], until=lambda r: r["saved_epoch"] is not None, timeout=180)
        executor = server.app.state.scheduler.executor
        assert sorted(executor.gpu(run["id"]) for run in runs) == ["0", "1"]
        for run in runs:
            ok(client.post(f"/api/v1/runs/{run['id']}/stop"))
        for run in runs:
            stopped = wait_for_run(client, run["id"], timeout=15)
            assert stopped["state"] == "cancelled" and stopped["device"] == "CPU"  # no GPU on this machine
