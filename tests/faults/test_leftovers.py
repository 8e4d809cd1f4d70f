"""Every file under the data directory belongs to a record: deletes remove files, and start-up sweeps a crash's."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.server_process import start_server, stop_server
from tests.web.live_server import app_without_warm_up, create_model, ok, start_run, wait_for_run, workspace_client

pytestmark = pytest.mark.slow


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def dataset_folders(root: Path) -> set[str]:
    found = {str(p.relative_to(root)) for p in (root / "builtin").glob("*")}
    return found | {str(p.relative_to(root)) for p in root.glob("workspaces/*/datasets/*")}


def csv_bytes(rows: int, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    lines = ["a,b,c,target"] + [f"{rng.random():.4f},{rng.random():.4f},{rng.random():.4f},{rng.randint(0, 2)}"
                                for _ in range(rows)]
    return "\n".join(lines).encode()


def upload(client, content: bytes, name: str = "table.csv") -> dict:
    return ok(client.post("/api/v1/datasets/upload", data={"kind": "csv", "target": "target"},
                          files={"file": (name, content, "text/csv")}), 201)


def test_deleting_and_preparing_again_leave_no_files_behind(tmp_path):
    with TestClient(app_without_warm_up(Settings(data_dir=tmp_path))) as server:
        client = workspace_client(server)
        # Preparing an upload again replaces its folder; the old one goes.
        dataset = upload(client, csv_bytes(200))
        first_folders = dataset_folders(tmp_path)
        ok(client.post(f"/api/v1/datasets/{dataset['id']}/prepare", json={"options": {"target": "c"}}))
        assert len(dataset_folders(tmp_path)) == 1 and dataset_folders(tmp_path) != first_folders

        # A run keeps the folder it trained on; it goes with the run.
        model = create_model(client, "blank")
        ok(client.post(f"/api/v1/models/{model['id']}/layers", json={"type": "Input", "params": {"shape": [3]}}), 201)
        ok(client.put(f"/api/v1/models/{model['id']}/dataset", json={"dataset_id": dataset["id"]}))
        ok(client.post(f"/api/v1/models/{model['id']}/dataset/fit-output"))
        run = wait_for_run(client, start_run(client, model["id"], epochs=1)["id"])
        assert run["state"] == "completed"
        used_by_run = dataset_folders(tmp_path)
        ok(client.post(f"/api/v1/datasets/{dataset['id']}/prepare", json={"options": {"target": "target"}}))
        assert dataset_folders(tmp_path) > used_by_run  # the run's folder stays beside the new one
        assert client.delete(f"/api/v1/runs/{run['id']}").status_code == 204
        assert not (tmp_path / "runs" / str(run["id"])).exists()
        assert len(dataset_folders(tmp_path)) == 1

        # A built-in variant goes with the last dataset that uses it; an upload with its dataset.
        builtin = ok(client.post("/api/v1/datasets", json={"key": "circle", "params": {"n_samples": 100}}), 201)
        assert len(dataset_folders(tmp_path)) == 2
        for record in (builtin, dataset):
            assert client.delete(f"/api/v1/datasets/{record['id']}").status_code == 204
        assert dataset_folders(tmp_path) == set()
        assert not list(tmp_path.glob("workspaces/*/uploads/*"))


def test_a_running_run_cannot_be_deleted(tmp_path):
    with TestClient(app_without_warm_up(Settings(data_dir=tmp_path))) as server:
        client = workspace_client(server)
        model = create_model(client, "dense")
        dataset = ok(client.post("/api/v1/datasets", json={"key": "circle", "params": {"n_samples": 100}}), 201)
        ok(client.put(f"/api/v1/models/{model['id']}/dataset", json={"dataset_id": dataset["id"]}))
        ok(client.post(f"/api/v1/models/{model['id']}/dataset/fit-output"))
        run = start_run(client, model["id"], epochs=1000)
        refused = client.delete(f"/api/v1/runs/{run['id']}")
        assert refused.status_code == 409 and "stop it before deleting it" in refused.json()["detail"]
        ok(client.post(f"/api/v1/runs/{run['id']}/stop"))
        wait_for_run(client, run["id"])
        assert client.delete(f"/api/v1/runs/{run['id']}").status_code == 204
        assert client.get(f"/api/v1/runs/{run['id']}").status_code == 404


def test_a_server_killed_mid_preparation_leaves_nothing_after_restart(tmp_path):
    big = csv_bytes(150_000, seed=1)  # a few seconds of preparation in the data worker
    server, url = start_server(tmp_path)
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            client.headers["Authorization"] = "Bearer " + client.post("/api/v1/workspaces").json()["token"]
            upload(client, csv_bytes(100), "small.csv")  # start the data worker, and keep one real dataset
            before = files_under(tmp_path)
            threading.Thread(target=lambda: _quietly(client.post, "/api/v1/datasets/upload",
                                                     data={"kind": "csv", "target": "target"},
                                                     files={"file": ("big.csv", big, "text/csv")}),
                             daemon=True).start()
            deadline = time.monotonic() + 30
            while not list(tmp_path.glob("workspaces/*/uploads/*")):
                assert time.monotonic() < deadline, "the upload never arrived"
                time.sleep(0.02)
            time.sleep(0.3)  # the data worker is preparing it now
        workers = psutil.Process(server.pid).children(recursive=True)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        psutil.wait_procs(workers, timeout=10)  # the workers stop once their server is gone
        assert files_under(tmp_path) - before - {"server.log"}  # the crash left files behind
    finally:
        stop_server(server)

    server, url = start_server(tmp_path)
    try:
        leftover = files_under(tmp_path) - before - {"server.log", "layerlab.db-shm", "layerlab.db-wal"}
        assert leftover == set(), leftover
        with httpx.Client(base_url=url, timeout=120, headers=client.headers) as again:
            names = [d["name"] for d in again.get("/api/v1/datasets").json()]
            assert names == ["small"]  # no half-made dataset row
            upload(again, csv_bytes(300), "retried.csv")  # and the upload can be tried again
    finally:
        stop_server(server)


def _quietly(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except httpx.HTTPError:
        pass  # the server is killed while it answers
