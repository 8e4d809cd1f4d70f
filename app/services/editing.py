"""Editing models, shared by the editor page and the API: apply an edit, then describe the model.

An edit runs on a copy of the graph; it is stored only if it succeeds, stays within the
size limits and does not break the layer it changes, so a refused edit changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.config import Settings
from app.core.errors import Conflict, UserError, invalid_value
from app.core.graph import Graph, check_model_name
from app.core.starters import STARTERS
from app.core.training import check_training, suggested_for
from app.core.validation import Issue, Report, validate
from app.data.prepared import DatasetMeta
from app.jobs.inspector import Inspector
from app.store import repository
from app.store.db import release_connection
from app.store.tables import DatasetRecord, ModelDataset, ModelRecord

# How far back the editor looks for the last version of a model that Keras could build,
# to keep its summary on screen (marked out of date) while the current version has a fault.
STALE_SUMMARY_LOOKBACK = 20


@dataclass
class ModelState:
    """A model as the user sees it: graph, problems, and Keras' summary when it builds."""

    record: ModelRecord
    graph: Graph
    report: Report
    summary: dict[str, Any] | None = None
    stale_summary: dict[str, Any] | None = None  # the last version that built, while this one has a fault
    keras_issue: Issue | None = None
    fit_issues: list[Issue] = field(default_factory=list)  # model against its data
    notices: list[str] = field(default_factory=list)

    @property
    def issues(self) -> list[Issue]:
        issues = self.report.issues + ([self.keras_issue] if self.keras_issue else []) + self.fit_issues
        # A problem found as an error against the data is not repeated as the graph's warning.
        errors = {(i.code, i.layer_id) for i in issues if i.code and i.severity == "error"}
        return [i for i in issues if i.severity == "error" or (i.code, i.layer_id) not in errors]

    @property
    def valid(self) -> bool:
        return self.report.ok and self.keras_issue is None and self.summary is not None

    def issues_for(self, layer_id: str) -> list[Issue]:
        return [i for i in self.issues if i.layer_id == layer_id]

    def general_issues(self) -> list[Issue]:
        return [i for i in self.issues if i.layer_id is None]

    def output_shape(self, layer_id: str) -> tuple[int | None, ...] | None:
        """A layer's output shape with the batch axis: Keras' own, else inferred up to the first fault."""
        if self.summary:
            row = next((r for r in self.summary["layers"] if r["id"] == layer_id), None)
            return tuple(row["output_shape"]) if row else None
        inferred = self.report.shapes.get(layer_id)
        return (None, *inferred.output) if inferred else None


def apply_edit(session: Session, settings: Settings, record: ModelRecord,
               edit: Callable[[Graph], Graph], description: str,
               inspector: Inspector | None = None, changed_layer: str | None = None) -> Graph:
    """Apply and store an edit; with an inspector, Keras starts on the new summary at once.

    `changed_layer` is the layer whose parameters the edit sets: a value that makes that very
    layer impossible (a kernel larger than its input) is refused at its field, like a value
    out of bounds, rather than stored. Faults an edit causes further down are stored and shown
    at their layers, since fixing them may take several edits. An edit that changes nothing stores nothing.
    """
    graph = repository.load_graph(record)
    new_graph = edit(graph)
    if new_graph == graph:
        return graph  # a value set to what it was: no new revision, so Undo is not spent on nothing
    report = validate(new_graph, settings.limits)
    too_large = [i for i in report.issues if i.too_large]
    if too_large:
        raise too_large[0].as_error()
    if changed_layer is not None:
        at_layer = [i for i in report.errors if i.layer_id == changed_layer and i.field]
        if at_layer:  # refused only when this edit caused them: the layer may have been at fault already
            before = {i.message for i in validate(graph, settings.limits).issues_for(changed_layer)}
            new = [i for i in at_layer if i.message not in before]
            if new:
                raise new[0].as_error()
    if inspector is not None and report.ok:
        inspector.prefetch(new_graph)
    repository.save_graph(session, record, new_graph, description, settings.undo_depth)
    return new_graph


def describe_model(session: Session, record: ModelRecord, settings: Settings, inspector: Inspector,
                   with_text: bool = False, meta: DatasetMeta | None = None) -> ModelState:
    """Validation, then Keras' summary, then how the model fits the attached data (if any)."""
    graph = repository.load_graph(record)
    state = ModelState(record, graph, validate(graph, settings.limits))
    if state.report.ok:
        release_connection(session)  # Keras may take a while when the room is busy: wait without one
        try:
            state.summary = inspector.summarize(graph, with_text=with_text)
        except UserError as exc:  # Unavailable included: the page says Keras is starting
            if exc.layer_id is None:
                state.notices.append(exc.message)
            else:
                state.keras_issue = Issue(exc.message, exc.layer_id, field=exc.field)
    if state.summary is None and not state.notices:
        state.stale_summary = _last_summary_that_built(session, record, settings, inspector)
    if meta is not None and state.report.ok:
        # Added after the summary: a model that does not fit the data still has a summary.
        state.fit_issues = check_training(graph, meta, suggested_for(graph, meta, state.report), state.report)
    return state


def _last_summary_that_built(session: Session, record: ModelRecord, settings: Settings,
                             inspector: Inspector) -> dict[str, Any] | None:
    """Keras' summary of the newest earlier version without faults (from the inspector's cache, usually)."""
    graphs = repository.earlier_graphs(session, record, STALE_SUMMARY_LOOKBACK)
    release_connection(session)
    for graph in graphs:
        if graph.nodes and validate(graph, settings.limits).ok:
            try:
                return inspector.summarize(graph)
            except UserError:
                return None
    return None


def create_model(session: Session, settings: Settings, workspace_id: str, name: str | None,
                 starter_key: str) -> ModelRecord:
    """A new model from a starter; without a name it gets a telling one ("Convnet 2")."""
    starter = STARTERS.get(starter_key)
    if starter is None:
        raise invalid_value("starter", "one of " + ", ".join(STARTERS), starter_key)
    name = check_model_name(name) if name else repository.unused_model_name(session, workspace_id, starter.model_name)
    _check_room_for_a_model(session, settings, workspace_id)
    return repository.create_model(session, workspace_id, name, starter.graph())


def duplicate_model(session: Session, settings: Settings, record: ModelRecord,
                    name: str | None = None) -> ModelRecord:
    """A copy of the model's current graph; without a name, "<name> (copy)", numbered when taken."""
    name = check_model_name(name) if name else repository.unused_model_name(
        session, record.workspace_id, f"{record.name[:56]} (copy)")
    _check_room_for_a_model(session, settings, record.workspace_id)
    return repository.create_model(session, record.workspace_id, name, repository.load_graph(record))


def model_from_graph(session: Session, settings: Settings, workspace_id: str, base_name: str,
                     graph: Graph, dataset: DatasetRecord | None = None) -> ModelRecord:
    """A new model holding a given graph (a run's snapshot), named "<base_name>", numbered when taken,
    and attached to `dataset` when one is given (the graph already fits it)."""
    name = repository.unused_model_name(session, workspace_id, base_name[:60])
    _check_room_for_a_model(session, settings, workspace_id)
    model = repository.create_model(session, workspace_id, name, graph)
    if dataset is not None:
        session.add(ModelDataset(model_id=model.id, dataset_id=dataset.id))
        session.commit()
    return model


def _check_room_for_a_model(session: Session, settings: Settings, workspace_id: str) -> None:
    """The one check every path that creates a model goes through."""
    limit = settings.max_models_per_workspace
    if repository.count_models(session, workspace_id) >= limit:
        raise Conflict(f"This workspace already holds {limit} models, the most allowed "
                       "(LAYERLAB_MAX_MODELS_PER_WORKSPACE). Delete one first.")
