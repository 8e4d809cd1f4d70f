"""Queries for training runs and their events. No HTTP here."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.core.errors import NotFound
from app.core.runs import ACTIVE_STATES, RunState
from app.store.tables import MAX_ID, RunEvent, RunRecord, is_possible_id

MAX_BATCH_POINTS = 500  # batch-level points sent to a chart; older ones are thinned out


def get_run(session: Session, workspace_id: str, run_id: int) -> RunRecord:
    run = session.get(RunRecord, run_id) if is_possible_id(run_id) else None
    if run is None or run.workspace_id != workspace_id:
        raise NotFound(f"There is no run {run_id} in this workspace.")
    return run


def get_any_run(session: Session, run_id: int) -> RunRecord:
    """A run of any workspace: for the instructor's dashboard (callers check that it is theirs to see)."""
    run = session.get(RunRecord, run_id) if is_possible_id(run_id) else None
    if run is None:
        raise NotFound(f"There is no run {run_id}.")
    return run


def list_runs(session: Session, workspace_id: str, model_id: int | None = None,
              limit: int | None = None) -> list[RunRecord]:
    query = select(RunRecord).where(RunRecord.workspace_id == workspace_id)
    if model_id is not None and not is_possible_id(model_id):
        return []
    if model_id is not None:
        query = query.where(RunRecord.model_id == model_id)
    return list(session.scalars(query.order_by(RunRecord.id.desc()).limit(limit)))


def count_runs(session: Session, workspace_id: str) -> int:
    return session.scalar(select(func.count()).where(RunRecord.workspace_id == workspace_id)) or 0


def delete_run(session: Session, run: RunRecord) -> None:
    session.execute(delete(RunEvent).where(RunEvent.run_id == run.id))
    session.delete(run)
    session.commit()


def active_runs(session: Session, workspace_id: str) -> int:
    query = select(func.count()).where(RunRecord.workspace_id == workspace_id,
                                       RunRecord.state.in_(ACTIVE_STATES))
    return session.scalar(query) or 0


EVENTS_PAGE = 500  # events read at once by a stream catching up


def running_count(session: Session) -> int:
    """Runs training now, in every workspace (each holds a training slot)."""
    return session.scalar(select(func.count()).where(RunRecord.state == RunState.RUNNING)) or 0


def queued_runs(session: Session) -> int:
    """Runs waiting for a training slot, in every workspace."""
    return session.scalar(select(func.count()).where(RunRecord.state == RunState.QUEUED)) or 0


def events_after(session: Session, run_id: int, after_id: int, limit: int = EVENTS_PAGE) -> list[RunEvent]:
    query = select(RunEvent).where(RunEvent.run_id == run_id, RunEvent.id > min(after_id, MAX_ID))
    return list(session.scalars(query.order_by(RunEvent.id).limit(limit)))


def history(session: Session, run_id: int, with_batches: bool = True) -> dict[str, Any]:
    """Epoch metrics (every epoch) and batch losses (thinned to a chart's worth; skipped for lists)."""
    kinds = ("epoch", "batch") if with_batches else ("epoch",)
    rows = session.execute(select(RunEvent.type, RunEvent.data_json)
                           .where(RunEvent.run_id == run_id, RunEvent.type.in_(kinds))
                           .order_by(RunEvent.id)).all()
    epochs: dict[int, dict[str, Any]] = {}
    batches: list[dict[str, Any]] = []
    for kind, data_json in rows:
        data = json.loads(data_json)
        if kind == "epoch":
            epochs[int(data.get("epoch", 0))] = data  # a resumed epoch replaces the old one
        else:
            batches.append(data)
    step = max(1, len(batches) // MAX_BATCH_POINTS + (1 if len(batches) % MAX_BATCH_POINTS else 0))
    return {"epochs": [epochs[k] for k in sorted(epochs)], "batches": batches[::step]}


def latest_progress(session: Session, run_id: int) -> dict[str, Any] | None:
    """The newest progress report: the last batch or epoch event."""
    row = session.execute(select(RunEvent.type, RunEvent.data_json)
                          .where(RunEvent.run_id == run_id, RunEvent.type.in_(("batch", "epoch", "started")))
                          .order_by(RunEvent.id.desc()).limit(1)).first()
    return {"type": row[0], **json.loads(row[1])} if row else None


def first_start(session: Session, run_id: int) -> dict[str, Any] | None:
    """The run's first `started` event: what it began from (a resume continues from its checkpoint)."""
    row = session.scalar(select(RunEvent.data_json).where(RunEvent.run_id == run_id, RunEvent.type == "started")
                         .order_by(RunEvent.id).limit(1))
    return json.loads(row) if row else None


def last_start(session: Session, run_id: int) -> dict[str, Any] | None:
    """The run's latest `started` event: how its last stretch of training began (on which device...)."""
    row = session.scalar(select(RunEvent.data_json).where(RunEvent.run_id == run_id, RunEvent.type == "started")
                         .order_by(RunEvent.id.desc()).limit(1))
    return json.loads(row) if row else None


def last_event_id(session: Session, run_id: int) -> int:
    return session.scalar(select(func.max(RunEvent.id)).where(RunEvent.run_id == run_id)) or 0


def latest_run_of_model(session: Session, model_id: int) -> RunRecord | None:
    query = select(RunRecord).where(RunRecord.model_id == model_id)
    return session.scalar(query.order_by(RunRecord.id.desc()).limit(1))


def previous_run_of_model(session: Session, run: RunRecord) -> RunRecord | None:
    """The run this one is compared with by default: the run of the same model started just before it,
    or, for the first run of a variant model, the run it was made from."""
    previous = None
    if run.model_id is not None:
        query = select(RunRecord).where(RunRecord.model_id == run.model_id, RunRecord.id < run.id)
        previous = session.scalar(query.order_by(RunRecord.id.desc()).limit(1))
    if previous is None and run.parent_run_id is not None:
        parent = session.get(RunRecord, run.parent_run_id)
        previous = parent if parent is not None and parent.workspace_id == run.workspace_id else None
    return previous
