"""What a Ray actor runs for LayerLab's Ray executor (`app.jobs.ray_executor`): it imports TensorFlow once, then
trains the runs it is given one at a time, in a scratch folder of its own. It lives with the worker code because
it is worker code: the Ray bridge process imports this module only to hand the class to Ray, and it imports TensorFlow
only inside the actor."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from app.core.runs import CHECKPOINT, CHECKPOINT_STATE, RunState

SKIPPED_FILES = (".tmp",)    # half-written files are never copied back
CHECKPOINT_FILES = (CHECKPOINT, CHECKPOINT_STATE)  # what a checkpoint event carries to the server
FILES = "_files"             # the key of those files in the event, removed before it is recorded


def run_files(folder: Path) -> dict[str, bytes]:
    """The files directly in `folder` (a run's files are not nested), by name."""
    if not folder.is_dir():
        return {}
    return {path.name: path.read_bytes() for path in folder.iterdir()
            if path.is_file() and not path.name.endswith(SKIPPED_FILES)}


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        tmp = folder / (name + ".tmp")
        tmp.write_bytes(content)
        os.replace(tmp, folder / name)


CONTROL = "control"  # the actor's concurrency group for `stop`: a thread of its own, free while `train` runs
CONCURRENCY_GROUPS = {CONTROL: 1}


class Trainer:
    """The body of a Ray actor: imports TensorFlow once, then trains the runs it is given one at a time. Created
    with CONCURRENCY_GROUPS, and `stop` called in the CONTROL group, a stop reaches a run as it trains."""

    def __init__(self, device: str) -> None:
        import ray

        from app.worker.environment import keep_imports_out_of_collections, quiet_tensorflow
        from app.worker.runner import TRAINING_NICENESS

        os.nice(TRAINING_NICENESS)  # as a local training process: pages on the same machine answer first
        quiet_tensorflow(device)
        import keras  # noqa: F401  (the import is the warm-up)

        from app.worker.devices import training_device
        from app.worker.train import run_training  # noqa: F401  (loaded before the freeze below)

        keep_imports_out_of_collections()
        # Ray gives the actor the GPUs its resource request reserved (CUDA_VISIBLE_DEVICES): name the node's index
        granted = ray.get_runtime_context().get_accelerator_ids().get("GPU", [])
        self.trains_on, self.unavailable = training_device(device, ",".join(granted) or None)
        self.stops_asked: set[int] = set()  # runs asked to stop; a run's own stop may come before it starts

    def stop(self, run_id: int) -> None:
        self.stops_asked.add(run_id)

    def train(self, run_id: int, request: dict[str, Any], dataset: dict[str, bytes], starting_files: dict[str, bytes],
              events: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
        import keras

        from app.worker.train import run_training

        if self.unavailable:
            return {"state": RunState.FAILED, "message": self.unavailable}, {}
        with tempfile.TemporaryDirectory(prefix=f"layerlab-run-{run_id}-") as scratch:
            dataset_dir, run_dir = Path(scratch) / "dataset", Path(scratch) / "run"
            write_files(dataset_dir, dataset)
            write_files(run_dir, starting_files)

            def should_stop() -> bool:
                return run_id in self.stops_asked

            def emit(event: dict[str, Any]) -> None:
                if event.get("type") == "checkpoint":  # the server keeps each saved epoch, as for a local run
                    event = {**event, FILES: {name: (run_dir / name).read_bytes() for name in CHECKPOINT_FILES
                                              if (run_dir / name).is_file()}}
                events.put((run_id, event))

            local = {**request, "dataset_dir": str(dataset_dir), "run_dir": str(run_dir), "device": self.trains_on}
            try:
                result = run_training(local, emit, should_stop)
            except Exception as exc:  # a run that fails says why, instead of vanishing
                result = {"state": RunState.FAILED, "message": f"Training failed: {type(exc).__name__}: {exc}"[:600]}
            finally:
                self.stops_asked.discard(run_id)
                keras.backend.clear_session(free_memory=True)
            result.pop("history", None)  # every epoch was sent as it finished
            return result, run_files(run_dir)
