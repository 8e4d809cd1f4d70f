"""Queries for workspaces and models. No HTTP here: callers map results to responses."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.core.errors import Conflict, NotFound
from app.core.graph import Graph
from app.store.db import rows_changed
from app.store.tables import GraphHistory, ModelRecord, is_possible_id, utcnow


def list_models(session: Session, workspace_id: str) -> list[ModelRecord]:
    query = select(ModelRecord).where(ModelRecord.workspace_id == workspace_id)
    return list(session.scalars(query.order_by(ModelRecord.updated_at.desc(), ModelRecord.id.desc())))


def count_models(session: Session, workspace_id: str) -> int:
    return session.scalar(select(func.count()).where(ModelRecord.workspace_id == workspace_id)) or 0


def get_model(session: Session, workspace_id: str, model_id: int) -> ModelRecord:
    record = session.get(ModelRecord, model_id) if is_possible_id(model_id) else None
    if record is None or record.workspace_id != workspace_id:
        # Another workspace's model looks exactly like a missing one.
        raise NotFound(f"There is no model {model_id} in this workspace.")
    return record


def create_model(session: Session, workspace_id: str, name: str, graph: Graph) -> ModelRecord:
    record = ModelRecord(workspace_id=workspace_id, name=name, graph_json=graph.model_dump_json())
    session.add(record)
    session.commit()
    return record


def load_graph(record: ModelRecord) -> Graph:
    return Graph.model_validate_json(record.graph_json)


def save_graph(session: Session, record: ModelRecord, graph: Graph, description: str,
               undo_depth: int) -> None:
    """Store the new graph and keep the old one for undo, unless another edit came first."""
    previous, graph_json, now = record.graph_json, graph.model_dump_json(), utcnow()
    _replace_graph(session, record, graph_json, now)
    session.add(GraphHistory(model_id=record.id, graph_json=previous, description=description[:200]))
    session.flush()
    _trim_history(session, record.id, undo_depth)
    session.commit()
    _written(record, graph_json, now)


def _written(record: ModelRecord, graph_json: str, now: datetime) -> None:
    """Bring the loaded record up to date with the row just written, without marking it changed
    (which would write the same row again at the next query)."""
    set_committed_value(record, "graph_json", graph_json)
    set_committed_value(record, "revision", record.revision + 1)
    set_committed_value(record, "updated_at", now)


def _replace_graph(session: Session, record: ModelRecord, graph_json: str, now: datetime) -> None:
    changed = rows_changed(session.execute(
        update(ModelRecord)
        .where(ModelRecord.id == record.id, ModelRecord.revision == record.revision)
        .values(graph_json=graph_json, revision=record.revision + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    ))
    if changed != 1:
        session.rollback()
        raise Conflict("This model was changed by another edit at the same moment; reload and try again.")


def _trim_history(session: Session, model_id: int, keep: int) -> None:
    """Drop undo steps beyond the newest `keep`, in one statement."""
    oldest_kept = (select(GraphHistory.id).where(GraphHistory.model_id == model_id)
                   .order_by(GraphHistory.id.desc()).offset(keep - 1).limit(1).scalar_subquery())
    session.execute(delete(GraphHistory).where(GraphHistory.model_id == model_id, GraphHistory.id < oldest_kept)
                    .execution_options(synchronize_session=False))


def last_edit(session: Session, model_id: int) -> GraphHistory | None:
    query = select(GraphHistory).where(GraphHistory.model_id == model_id)
    return session.scalar(query.order_by(GraphHistory.id.desc()).limit(1))


def undo(session: Session, record: ModelRecord) -> str:
    """Restore the graph before the last edit; returns that edit's description."""
    entry = last_edit(session, record.id)
    if entry is None:
        raise Conflict("There is nothing to undo in this model.")
    now = utcnow()
    _replace_graph(session, record, entry.graph_json, now)
    session.delete(entry)
    session.commit()
    _written(record, entry.graph_json, now)
    return entry.description


def rename_model(session: Session, record: ModelRecord, name: str) -> None:
    record.name = name
    record.updated_at = utcnow()
    session.commit()


def delete_model(session: Session, record: ModelRecord) -> None:
    session.execute(delete(GraphHistory).where(GraphHistory.model_id == record.id))
    session.delete(record)
    session.commit()


def unused_model_name(session: Session, workspace_id: str, base: str) -> str:
    """`base` if no model of the workspace has that name, else "base 2", "base 3"..."""
    taken = set(session.scalars(select(ModelRecord.name).where(ModelRecord.workspace_id == workspace_id,
                                                                ModelRecord.name.startswith(base))))
    number = 2
    name = base
    while name in taken:
        name, number = f"{base} {number}", number + 1
    return name


def earlier_graphs(session: Session, record: ModelRecord, limit: int) -> list[Graph]:
    """The model's graphs before its last edits, newest first (its undo history)."""
    rows = session.scalars(select(GraphHistory.graph_json).where(GraphHistory.model_id == record.id)
                           .order_by(GraphHistory.id.desc()).limit(limit))
    return [Graph.model_validate_json(row) for row in rows]


def checked_dataset_name(name: str) -> str:
    """Dataset names often come from file names: replace what the naming rule forbids."""
    cleaned = re.sub(r"[^\w .\-()]", "_", str(name)).strip()[:64]
    if not cleaned or not re.match(r"\w", cleaned):
        cleaned = ("dataset " + cleaned)[:64].strip()
    return cleaned
