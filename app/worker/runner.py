"""Entry point of a training worker process: train (and test), report, exit.

The web process imports this module only to name `run_job` as a process target;
Keras is imported inside it.
"""

from __future__ import annotations

import os
from multiprocessing.connection import Connection
from typing import Any

from app.core.runs import RunState


def run_job(conn: Connection, stop: Any) -> None:
    """Import TensorFlow, then wait for one run's request on `conn` (a spare waits here)."""
    from app.worker.environment import quiet_tensorflow

    quiet_tensorflow()
    from app.worker.train import run_training

    try:
        request = conn.recv()
    except (EOFError, OSError):
        return  # the server went away, or shut down, before giving this spare a run
    parent = os.getppid()

    def should_stop() -> bool:
        # A server killed outright cannot ask us to stop: stop when it is gone, so that the
        # restarted server's `interrupted` run is not still being trained by an orphan.
        return stop.is_set() or os.getppid() != parent

    def emit(event: dict[str, Any]) -> None:
        conn.send(event)

    try:
        result = run_training(request, emit, should_stop)
    except Exception as exc:  # a run that fails says why, instead of vanishing
        result = {"state": RunState.FAILED, "message": f"Training failed: {type(exc).__name__}: {str(exc)[:500]}"}
    result.pop("history", None)  # every epoch was sent as it finished
    conn.send({"type": "finished", **result})
    conn.close()
    # Everything is saved and reported: skip the interpreter's slow teardown of TensorFlow
    # (seconds of a core that the next run could use).
    os._exit(0)


def evaluate_saved_run(payload: dict[str, Any]) -> dict[str, Any]:
    """Evaluate a finished run's saved model on its test split again (on demand)."""
    from pathlib import Path

    import keras

    from app.core.training import TrainConfig
    from app.data.prepared import read_arrays, read_meta
    from app.worker.evaluate import evaluate_model

    run_dir, dataset_dir = Path(payload["run_dir"]), Path(payload["dataset_dir"])
    model = keras.models.load_model(run_dir / payload.get("model", "model.keras"))
    config = TrainConfig.model_validate(payload["config"])
    return evaluate_model(model, read_arrays(dataset_dir), read_meta(dataset_dir), config, run_dir=run_dir)
