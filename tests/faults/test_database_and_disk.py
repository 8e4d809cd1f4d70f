"""A locked database and a full disk: clear answers, nothing half-written, earlier work intact."""

from __future__ import annotations

import sqlite3
import subprocess
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.web.live_server import (
    app_without_warm_up,
    create_model,
    model_on,
    ok,
    start_run,
    wait_for_run,
    workspace_client,
)

pytestmark = pytest.mark.slow


def test_a_locked_database_answers_503_and_nothing_is_half_written(tmp_path):
    with TestClient(app_without_warm_up(Settings(data_dir=tmp_path, database_timeout=0.5))) as server:
        client = workspace_client(server)
        create_model(client, "dense", "Before")
        blocker = sqlite3.connect(tmp_path / "layerlab.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another program holds the database
        try:
            refused = client.post("/api/v1/models", json={"name": "During", "starter": "dense"})
            assert refused.status_code == 503
            assert "database is busy or unavailable" in refused.json()["detail"]
            assert "nothing was changed" in refused.json()["detail"]
        finally:
            blocker.rollback()
            blocker.close()
        names = [m["name"] for m in ok(client.get("/api/v1/models"))]
        assert names == ["Before"]
        create_model(client, "dense", "After")  # it recovers at once


@pytest.fixture
def small_disk(tmp_path):
    """A 48 MB file system of its own (tmpfs): it can be filled without touching the machine's disks."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here ({mounted.stderr.strip()})")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path, leave_bytes: int) -> Path:
    """Fill the file system, then free `leave_bytes`: enough for the database, not for a checkpoint."""
    filler = disk / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 2**20)
        except OSError:
            pass
    with open(filler, "r+b") as handle:
        handle.truncate(max(0, filler.stat().st_size - leave_bytes))
    return filler


def test_a_full_disk_fails_the_run_with_the_reason_and_keeps_its_saved_epochs(small_disk):
    with TestClient(app_without_warm_up(Settings(data_dir=small_disk))) as server:
        client = workspace_client(server)
        model = model_on(client, "digits28")  # the dense starter: a 0.7 MB checkpoint
        run = start_run(client, model["id"], epochs=1000)
        saved = wait_for_run(client, run["id"], lambda r: (r["saved_epoch"] or 0) >= 1 or r["state"] != "running",
                             timeout=90)
        run_dir = small_disk / "runs" / str(run["id"])
        assert (run_dir / "checkpoint.json").exists(), saved
        filler = fill(small_disk, leave_bytes=300_000)

        failed = wait_for_run(client, run["id"], timeout=60)
        assert failed["state"] == "failed", failed["reason"]
        assert "Could not save the checkpoint of epoch" in failed["reason"]
        assert "the server's disk is full" in failed["reason"] and failed["resumable"]
        with zipfile.ZipFile(run_dir / "checkpoint.keras") as checkpoint:  # the earlier checkpoint is whole
            assert checkpoint.testzip() is None
        assert not list(run_dir.glob(".tmp-*"))  # and no partial file takes the space

        # The server keeps answering; an upload is refused, not half stored.
        assert ok(client.get(f"/api/v1/runs/{run['id']}"))["state"] == "failed"
        refused = client.post("/api/v1/datasets/upload", data={"kind": "csv"},
                              files={"file": ("t.csv", b"a,b\n" + b"1,2\n" * 200_000, "text/csv")})
        assert refused.status_code == 503 and "nothing was kept" in refused.json()["detail"]
        assert not list(small_disk.glob("workspaces/*/uploads/*"))

        filler.unlink()  # space again: the run continues after its last saved epoch
        resumed = ok(client.post(f"/api/v1/runs/{run['id']}/resume"))
        assert resumed["state"] in ("queued", "running")
        ok(client.post(f"/api/v1/runs/{run['id']}/stop"))
        wait_for_run(client, run["id"])
