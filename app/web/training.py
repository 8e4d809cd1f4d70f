"""Starting runs and describing them, shared by the run pages and the API."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from app.config import Settings
from app.core.catalog import ParamError
from app.core.training import TrainConfig, check_training
from app.core.validation import validate
from app.errors import Conflict, InvalidInput, PublicError
from app.jobs.scheduler import Scheduler
from app.jobs.warm_worker import WarmWorker, WorkerRefused
from app.store import repository, runs
from app.store.tables import ModelRecord, RunRecord
from app.web import datasets


def start_run(session: Session, settings: Settings, scheduler: Scheduler, workspace_id: str,
              model: ModelRecord, overrides: dict[str, Any]) -> RunRecord:
    """Check everything a worker would trip on, record the run as queued, and let the scheduler start it."""
    dataset = datasets.attached_dataset(session, model)
    if dataset is None:
        raise InvalidInput("Choose a dataset for this model before training it.", field="dataset")
    meta = datasets.meta_of(dataset)
    graph = repository.load_graph(model)
    report = validate(graph, settings.limits)
    if not report.ok:
        first = report.errors[0]
        raise InvalidInput(f"Fix the model first: {first.message}", layer_id=first.node_id, field=first.field)
    try:
        config = TrainConfig.from_values({**datasets.suggested_config(meta, graph, report), **overrides})
    except ParamError as exc:
        raise InvalidInput(exc.message, field=exc.param) from None
    errors = [i for i in check_training(graph, meta, config, report) if i.severity == "error"]
    if errors:
        raise InvalidInput(errors[0].message, layer_id=errors[0].node_id, field=errors[0].field,
                           extra={"issues": [i.as_dict() for i in errors]})
    if runs.active_runs(session, workspace_id) >= settings.max_active_runs_per_workspace:
        raise PublicError(f"This workspace already has {settings.max_active_runs_per_workspace} runs queued or "
                          "running, the most allowed. Wait for one to finish or stop one.", status=429)
    run = RunRecord(workspace_id=workspace_id, model_id=model.id, model_name=model.name, graph_json=model.graph_json,
                    dataset_id=dataset.id, dataset_name=dataset.name, dataset_folder=dataset.folder,
                    config_json=json.dumps(config.get_config()), state="queued")
    session.add(run)
    session.commit()
    scheduler.dispatch()
    session.refresh(run)
    return run


def run_out(session: Session, scheduler: Scheduler, run: RunRecord, detail: bool = True) -> dict[str, Any]:
    """A run as the API and pages show it; lists leave out the metrics history and the graph."""
    history = runs.history(session, run.id, with_batches=detail)
    config = json.loads(run.config_json)
    progress = runs.latest_progress(session, run.id)
    out = {
        "id": run.id, "state": run.state, "reason": run.reason,
        "model_id": run.model_id, "model_name": run.model_name,
        "dataset_id": run.dataset_id, "dataset_name": run.dataset_name,
        "config": config, "epochs_done": run.epochs_done, "epochs": config.get("epochs"),
        "queue_position": scheduler.queue_position(session, run),
        "created_at": run.created_at, "started_at": run.started_at, "finished_at": run.finished_at,
        "progress": progress, "best_epoch": best_epoch(history["epochs"]),
        "evaluation": json.loads(run.evaluation_json) if run.evaluation_json else None,
        "model_url": f"/api/v1/runs/{run.id}/model" if (scheduler.run_folder(run.id) / "model.keras").exists() else None,
    }
    if detail:
        out.update(metrics=history, graph=json.loads(run.graph_json))
    return out


def best_epoch(epochs: list[dict[str, Any]]) -> int | None:
    """The epoch with the lowest validation loss (training loss when there is no validation)."""
    def loss_of(record: dict[str, Any]) -> float | None:
        logs = record.get("logs", {})
        value = logs.get("val_loss", logs.get("loss"))
        return value if isinstance(value, (int, float)) else None

    scored = [(loss_of(e), e.get("epoch")) for e in epochs if loss_of(e) is not None]
    return min(scored)[1] if scored else None


def evaluate_run(session: Session, settings: Settings, scheduler: Scheduler, worker: WarmWorker,
                 run: RunRecord) -> dict[str, Any]:
    """Test the run's saved model on its test split again, in the data worker."""
    folder = scheduler.run_folder(run.id)
    if not (folder / "model.keras").exists():
        raise Conflict("This run has no trained model to evaluate yet.")
    try:
        evaluation = worker.call("evaluate_run", {"run_dir": str(folder), "config": json.loads(run.config_json),
                                                  "dataset_dir": str(settings.data_dir / run.dataset_folder)})
    except WorkerRefused as exc:
        raise Conflict(exc.message) from None
    run.evaluation_json = json.dumps(evaluation)
    session.commit()
    return evaluation
