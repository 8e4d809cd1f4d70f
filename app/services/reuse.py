"""Reusing a run's trained network: a new model with its layers and weights, for fine-tuning.

Each run of the new model starts from these weights in every layer whose name and weight shapes are
unchanged, and the rest start fresh: change the output layer for a dataset with other classes, freeze
the first layers (their `trainable` switch) and train on. It works offline, from the run's own file.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.config import Settings
from app.core.errors import Conflict
from app.jobs.scheduler import Scheduler
from app.jobs.warm_worker import WarmWorker
from app.services import datasets
from app.services.importing import ImportResult, import_model
from app.services.training import saved_model
from app.store.tables import RunRecord


def reuse_run(session: Session, settings: Settings, scheduler: Scheduler, worker: WarmWorker, run: RunRecord,
              workspace_id: str, name: str | None = None) -> ImportResult:
    """A new model in `workspace_id` (the caller's: an instructor may reuse a participant's run), with the run's
    dataset attached when it is the caller's and still there. The run's saved
    model (its last saved epoch for a run that ended early) goes through the same checked import as an uploaded
    file, so the new model and its kept weights are made the same way."""
    saved = saved_model(scheduler, run)
    if saved is None:
        raise Conflict(f"Run {run.id} has no saved model to reuse yet: it is still training, or it ended before "
                       "finishing an epoch.")
    result = import_model(session, settings, worker, workspace_id, scheduler.run_folder(run.id) / saved[0],
                          f"run {run.id}", name or f"Run {run.id} reused", is_upload=False)
    dataset = datasets.ready_dataset(session, run.dataset_id)
    if dataset is not None and dataset.workspace_id == workspace_id:
        datasets.attach(session, settings, result.record, dataset)  # the same data, until the learner changes it
    return result
