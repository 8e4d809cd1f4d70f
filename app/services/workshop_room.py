"""What the instructor's dashboard shows: each participant's state and best result, the queue and the
training slots, and the curves of the room's best runs. Read in a few queries, whatever the room's size."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, load_only

from app.core.runs import RunState
from app.core.workshops import HIGHER_IS_BETTER, is_better
from app.jobs.scheduler import Scheduler
from app.services.workshops import participants
from app.store import runs
from app.store.tables import Participant, RunRecord, WorkshopRecord

BEST_RUNS_SHOWN = 5
# The test score a participant's result is given by, the first that their runs have.
RESULT_METRICS = ("accuracy", "r2", "mae")


@dataclass
class ParticipantRow:
    participant: Participant
    state: str = "editing"          # editing, queued, training, finished
    detail: str = ""                # "epoch 3 of 10", "3rd in the queue"
    runs: int = 0
    active_run_id: int | None = None
    latest_run_id: int | None = None
    best: dict[str, Any] | None = None  # {"metric", "value", "run_id", "params", "dataset"}
    run_ids: list[int] = field(default_factory=list)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _result_metric(scores: dict[str, float]) -> str | None:
    return next((name for name in RESULT_METRICS if name in scores), None)


def room(db: Session, scheduler: Scheduler, workshop: WorkshopRecord) -> dict[str, Any]:
    people = participants(db, workshop)
    owner = {p.workspace_id: p for p in people}
    rows = {p.id: ParticipantRow(p) for p in people}
    records = list(db.scalars(
        select(RunRecord).options(load_only(RunRecord.id, RunRecord.workspace_id, RunRecord.state, RunRecord.model_name,
                                            RunRecord.epochs_done, RunRecord.config_json, RunRecord.test_scores_json,
                                            RunRecord.params, RunRecord.dataset_name))
        .where(RunRecord.workspace_id.in_(list(owner))).order_by(RunRecord.id))) if owner else []
    queue = [(position, run) for position, run in scheduler.queue(db) if run.workspace_id in owner]
    position_of = {run.id: position for position, run in queue}
    training: list[dict[str, Any]] = []
    for run in records:
        row = rows[owner[run.workspace_id].id]
        row.runs += 1
        row.latest_run_id = run.id
        row.run_ids.append(run.id)
        scores = run.test_scores
        metric = _result_metric(scores)
        if metric and (row.best is None or (row.best["metric"] == metric and is_better(metric, scores[metric],
                                                                                      row.best["value"]))):
            row.best = {"metric": metric, "value": scores[metric], "run_id": run.id, "params": run.params,
                        "dataset": run.dataset_name}
        if run.state == RunState.RUNNING:
            progress = _progress(db, run)
            row.state, row.detail, row.active_run_id = "training", progress, run.id
            training.append({"run": run, "participant": row.participant, "progress": progress})
        elif run.state == RunState.QUEUED and row.state != "training":
            row.state, row.active_run_id = "queued", run.id
            row.detail = f"{_ordinal(position_of.get(run.id, 0))} in the queue"
        elif row.state not in ("training", "queued"):
            row.state, row.detail = "finished", f"last run {run.state}"
    ordered = sorted(rows.values(), key=lambda r: r.participant.display_name.casefold())
    return {"rows": ordered, "training": training,
            "queue": [{"position": position, "run": run, "participant": owner[run.workspace_id]}
                      for position, run in queue],
            "slots": scheduler.max_running, "busy": runs.running_count(db),
            "best_curves": _best_curves(db, ordered),
            "counts": {state: sum(1 for r in ordered if r.state == state)
                       for state in ("editing", "queued", "training", "finished")}}


def _progress(db: Session, run: RunRecord) -> str:
    latest = runs.latest_progress(db, run.id) or {}
    epochs = json.loads(run.config_json).get("epochs")
    epoch = int(latest.get("epoch", run.epochs_done) or 0)
    return f"epoch {max(epoch, 1)} of {epochs}" if epochs else "starting"


def _best_curves(db: Session, rows: list[ParticipantRow]) -> dict[str, Any]:
    """The validation curves of the room's best results (one per participant), best first."""
    results = [r for r in rows if r.best]
    if not results:
        return {"metric": None, "result_metric": None, "series": []}
    metric = results[0].best["metric"] if results[0].best else "accuracy"
    same = sorted((r for r in results if r.best and r.best["metric"] == metric),
                  key=lambda r: r.best["value"] if r.best else 0, reverse=metric in HIGHER_IS_BETTER)[:BEST_RUNS_SHOWN]
    series = []
    curve = f"val_{metric}" if metric == "accuracy" else "val_loss"
    for index, row in enumerate(same):
        assert row.best is not None
        epochs = runs.history(db, row.best["run_id"], with_batches=False)["epochs"]
        points = [(e["epoch"], e["logs"][curve]) for e in epochs
                  if isinstance(e.get("logs", {}).get(curve), (int, float))]
        # Named with its data too: the room may train on different datasets, whose curves share the axes.
        label = f"{row.participant.display_name} · {row.best['dataset']}"
        series.append({"index": index, "label": label, "run_id": row.best["run_id"],
                       "value": row.best["value"], "points": points})
    return {"metric": curve, "result_metric": metric, "series": series}
