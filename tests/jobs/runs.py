"""What the executor tests share: a run long enough to be stopped or lost mid-way, and Ray's leftovers."""

from __future__ import annotations

import gc
import warnings

from fastapi.testclient import TestClient

from tests.web.live_server import model_on, start_run, wait_for_run

FIRST_RUN_TIMEOUT = 180.0  # the first run waits for a worker to start and import TensorFlow


def long_run(client: TestClient) -> dict:
    """A run that trains far longer than a test waits, once it has saved an epoch."""
    run = start_run(client, model_on(client, "iris")["id"], epochs=1000, batch_size=1)
    return wait_for_run(client, run["id"], until=lambda r: r["saved_epoch"] is not None, timeout=FIRST_RUN_TIMEOUT)


def forget_ray_processes() -> None:
    """Ray's shutdown ends its processes but leaves their Popen objects to the garbage collector, which warns
    that they were still running when it made them: collect them now, without that warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
