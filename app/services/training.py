"""Starting runs and describing them, shared by the run pages and the API."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from app.config import Settings
from app.core.errors import Conflict, LimitReached, UserError
from app.core.graph import Graph
from app.core.runs import CHECKPOINT, CHECKPOINT_STATE, FINAL_MODEL, RunState
from app.core.training import TrainConfig, check_training
from app.core.validation import Report, validate
from app.data.prepared import DatasetMeta
from app.jobs.scheduler import Scheduler
from app.jobs.warm_worker import WarmWorker
from app.services import datasets, importing, storage, workshops
from app.store import repository, runs
from app.store.db import release_connection
from app.store.tables import DatasetRecord, ModelRecord, RunRecord

QUEUE_FULL_RETRY_S = 90  # what a full queue tells clients to wait, in seconds
# Settings that depend on the data and the output layer; the rest carry over from run to run.
DATA_DEPENDENT_SETTINGS = ("loss", "metrics", "early_stopping_monitor")


def start_run(session: Session, settings: Settings, scheduler: Scheduler, workspace_id: str,
              model: ModelRecord, overrides: dict[str, Any]) -> RunRecord:
    """Check everything a worker would trip on, record the run as queued, and let the scheduler start it."""
    dataset = datasets.attached_dataset(session, model)
    if dataset is None:
        raise UserError("Choose a dataset for this model before training it.", field="dataset")
    meta = datasets.meta_of(dataset)
    graph = repository.load_graph(model)
    report = validate(graph, settings.limits)
    if not report.ok:
        raise report.errors[0].as_error("Fix the model first: ")
    config = TrainConfig.from_values({**datasets.suggested_config(meta, graph, report), **overrides})
    errors = [i for i in check_training(graph, meta, config, report) if i.severity == "error"]
    if errors:
        raise errors[0].as_error(others=errors)
    return queue_runs(session, settings, scheduler, workspace_id, model_id=model.id, model_name=model.name,
                      graph_json=model.graph_json, dataset=dataset, configs=[config.get_config()],
                      params=report.total_params, initial_weights=importing.imported_weights(settings, model))[0]


def repeat_with_seeds(session: Session, settings: Settings, scheduler: Scheduler, run: RunRecord,
                      seeds: Sequence[int]) -> list[RunRecord]:
    """Queue the run's exact graph, data and settings again with other seeds: how much of a difference
    between runs is luck shows in how much these differ from each other."""
    dataset = datasets.ready_dataset(session, run.dataset_id)
    if dataset is None:
        raise Conflict("This run's dataset was deleted, so the run cannot be repeated.")
    config = json.loads(run.config_json)
    return queue_runs(session, settings, scheduler, run.workspace_id, model_id=run.model_id,
                      model_name=run.model_name, graph_json=run.graph_json, dataset=dataset,
                      configs=[{**config, "seed": seed} for seed in seeds], params=run.params)


def queue_runs(session: Session, settings: Settings, scheduler: Scheduler, workspace_id: str, *,
               model_id: int | None, model_name: str, graph_json: str, dataset: DatasetRecord,
               configs: Sequence[dict[str, Any]], params: int | None,
               parent_run_id: int | None = None,
               initial_weights: importing.ImportedWeights | None = None) -> list[RunRecord]:
    """Record runs as queued once every limit allows all of them, and let the scheduler start them.
    Every path that creates runs comes through here, so no limit can be walked around."""
    more = "this run" if len(configs) == 1 else f"{len(configs)} more runs"
    workshops.check_run_allowed(session, workspace_id, epochs=max(int(c.get("epochs", 1)) for c in configs),
                                params=params, adding=len(configs))
    kept = runs.count_runs(session, workspace_id)
    if kept + len(configs) > settings.max_runs_per_workspace:
        raise Conflict(f"This workspace keeps {kept} runs, and may keep {settings.max_runs_per_workspace} "
                       f"(LAYERLAB_MAX_RUNS_PER_WORKSPACE): there is no room for {more}. Delete runs you no "
                       "longer need (on the Runs page), then try again.")
    storage.check_quota(session, settings, workspace_id)
    active = runs.active_runs(session, workspace_id)
    if active + len(configs) > settings.max_active_runs_per_workspace:
        raise LimitReached(f"This workspace already has {active} runs queued or running, and may have "
                           f"{settings.max_active_runs_per_workspace} at once: there is no room for {more}. "
                           "Wait for one to finish or stop one.")
    _check_queue_room(session, settings)
    queued = [RunRecord(workspace_id=workspace_id, model_id=model_id, model_name=model_name, graph_json=graph_json,
                        dataset_id=dataset.id, dataset_name=dataset.name, dataset_folder=dataset.folder,
                        config_json=json.dumps(config), state=RunState.QUEUED, params=params,
                        parent_run_id=parent_run_id)
              for config in configs]
    session.add_all(queued)
    session.commit()
    if initial_weights is not None:  # an imported model's trained weights: each run starts from its own copy
        for run in queued:
            importing.copy_to_run(initial_weights, scheduler.run_folder(run.id))
    scheduler.dispatch()
    for run in queued:
        session.refresh(run)
    return queued


def delete_run(session: Session, scheduler: Scheduler, run: RunRecord) -> None:
    """Delete an ended run with its files (its dataset's files too, when nothing else uses them)."""
    if RunState(run.state).active:
        raise Conflict(f"Run {run.id} is {run.state}; stop it before deleting it.")
    folder, dataset_folder = scheduler.run_folder(run.id), run.dataset_folder
    runs.delete_run(session, run)
    shutil.rmtree(folder, ignore_errors=True)
    storage.release_folder(session, scheduler.data_dir, dataset_folder)


def resume_run(session: Session, settings: Settings, scheduler: Scheduler, run: RunRecord) -> None:
    """Queue a stopped, failed or interrupted run again, to continue after its last saved epoch."""
    _check_queue_room(session, settings)
    scheduler.resume(run.id)


def _check_queue_room(session: Session, settings: Settings) -> None:
    """The server's queue has a cap, so that a room cannot pile up more work than it can ever run."""
    waiting = runs.queued_runs(session)
    if waiting >= settings.max_queued_runs:
        raise LimitReached(f"The server's queue is full: {waiting} runs are waiting for a training slot "
                           "(LAYERLAB_MAX_QUEUED_RUNS). Try again in a minute or two, when some have started.",
                           retry_after_s=QUEUE_FULL_RETRY_S)


def next_run_settings(session: Session, model: ModelRecord, meta: DatasetMeta, graph: Graph,
                      report: Report, last: RunRecord | None = None) -> tuple[dict[str, Any], int | None]:
    """The settings a new run of this model starts from, and the run they come from (None: suggested).

    A learner improves a model run after run, so the last run's settings carry over; the
    settings that depend on the data are replaced by the suggested ones when they no longer fit.
    """
    suggested = datasets.suggested_config(meta, graph, report)
    last = last or runs.latest_run_of_model(session, model.id)
    if last is None:
        return suggested, None
    previous = {**suggested, **json.loads(last.config_json)}
    refitted = {**previous, **{name: suggested[name] for name in DATA_DEPENDENT_SETTINGS}}
    for values in (previous, refitted):
        try:
            config = TrainConfig.from_values(values)
        except UserError:
            continue  # a setting whose bounds changed since that run
        if not [i for i in check_training(graph, meta, config, report) if i.severity == "error"]:
            return config.get_config(), last.id
    return suggested, None


def saved_model(scheduler: Scheduler, run: RunRecord) -> tuple[str, int | None] | None:
    """The model file a run can be tested with or downloaded as, and the epoch it holds.

    A completed run has its final model; a run that ended early (stopped, interrupted,
    failed) has the checkpoint of its last saved epoch. A run in progress offers neither,
    since its checkpoint changes under the reader.
    """
    folder = scheduler.run_folder(run.id)
    if (folder / FINAL_MODEL).exists():
        return FINAL_MODEL, run.epochs_done
    if RunState(run.state).active or not (folder / CHECKPOINT).exists():
        return None
    return CHECKPOINT, checkpoint_epoch(scheduler, run)


def checkpoint_epoch(scheduler: Scheduler, run: RunRecord) -> int | None:
    """The last epoch saved in the run's checkpoint: a resume continues after it."""
    try:
        state = json.loads((scheduler.run_folder(run.id) / CHECKPOINT_STATE).read_text())
    except (OSError, ValueError):
        return None
    return int(state["epoch"]) if isinstance(state, dict) and "epoch" in state else None


def evaluate_run(session: Session, settings: Settings, scheduler: Scheduler, worker: WarmWorker,
                 run: RunRecord) -> dict[str, Any]:
    """Test the run's saved model (final, or its last saved epoch) on its test split again."""
    model = saved_model(scheduler, run)
    if model is None:
        raise Conflict("This run has no saved model to test yet: it is still training, or it ended "
                       "before finishing an epoch.")
    release_connection(session)  # testing takes seconds: wait without holding a database connection
    evaluation = worker.call("evaluate_run", {
        "run_dir": str(scheduler.run_folder(run.id)), "model": model[0], "config": json.loads(run.config_json),
        "dataset_dir": str(settings.data_dir / run.dataset_folder)})
    evaluation["model_epoch"] = model[1]
    run.set_evaluation(evaluation)
    session.commit()
    return evaluation
