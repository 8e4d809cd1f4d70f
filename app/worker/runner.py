"""Entry point of a training worker process: wait for a run, train (and test) it, report, repeat.

A process serves one run at a time, and several runs one after another: importing
TensorFlow costs seconds of a core, more than a small run's whole training, so a process
that finished a run is given the next one. The executor decides when a process has served
enough runs (or holds too much memory) and tells it to exit.

The web process imports this module only to name `run_job` as a process target;
Keras is imported inside it.
"""

from __future__ import annotations

import os
from multiprocessing.connection import Connection
from typing import Any

from app.core.runs import RunState

# Training yields the CPU to what people wait on (edits and their summaries, pages): with every
# core busy training, an edit still answers at once, and the runs take only slightly longer.
TRAINING_NICENESS = 19


def run_job(conn: Connection, stop: Any, device: str = "cpu", gpu: str | None = None) -> None:
    """Import TensorFlow, then train each run whose request arrives on `conn`, until told to exit. `device` is
    the setting LAYERLAB_DEVICE (auto, cpu or gpu); `gpu`, the one GPU (a CUDA index) this process may see."""
    from app.worker.environment import keep_imports_out_of_collections, quiet_tensorflow

    os.nice(TRAINING_NICENESS)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # before TensorFlow loads CUDA, which reads it once
    quiet_tensorflow(device)
    import keras

    from app.worker.devices import training_device
    from app.worker.train import run_training

    keep_imports_out_of_collections()

    trains_on, unavailable = training_device(device, gpu)

    parent = os.getppid()

    def should_stop() -> bool:
        # A server killed outright cannot ask us to stop: stop when it is gone, so that the
        # restarted server's `interrupted` run is not still being trained by an orphan.
        return stop.is_set() or os.getppid() != parent

    def emit(event: dict[str, Any]) -> None:
        conn.send(event)

    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            break  # the server went away, or shut down
        if request is None:
            break  # the executor has no more runs for this process
        try:
            if unavailable:
                result = {"state": RunState.FAILED, "message": unavailable}
            else:
                result = run_training({**request, "device": trains_on}, emit, should_stop)
        except Exception as exc:  # a run that fails says why, instead of vanishing
            result = {"state": RunState.FAILED,
                      "message": f"Training failed: {type(exc).__name__}: {str(exc)[:500]}"}
        result.pop("history", None)  # every epoch was sent as it finished
        try:
            conn.send({"type": "finished", **result})
        except (BrokenPipeError, OSError):
            break
        keras.backend.clear_session(free_memory=True)  # the next run starts from a clean Keras
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


def score_on_hidden_split(payload: dict[str, Any]) -> dict[str, float]:
    """A challenge entry's test scores on the hidden split. Only the scores leave this process: no
    predictions, no samples, and nothing is written to the run's folder."""
    from pathlib import Path

    import keras

    from app.core.runs import test_metrics
    from app.core.training import TrainConfig
    from app.data.prepared import read_arrays, read_meta
    from app.worker.evaluate import evaluate_model

    dataset_dir = Path(payload["dataset_dir"])
    model = keras.models.load_model(Path(payload["run_dir"]) / payload.get("model", "model.keras"))
    config = TrainConfig.model_validate(payload["config"])
    return test_metrics(evaluate_model(model, read_arrays(dataset_dir), read_meta(dataset_dir), config))
