"""What the editor page and the API share: apply an edit, then describe the model.

An edit runs on a copy of the graph; it is stored only if it succeeds and the
result stays within the size limits, so a refused edit changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from sqlalchemy.orm import Session

from app.config import Settings
from app.core.graph import EditError, Graph, check_model_name
from app.core.starters import STARTERS
from app.core.training import check_training, default_config, output_head
from app.data.prepared import DatasetMeta
from app.core.validation import Issue, Report, validate
from app.errors import InvalidInput, PublicError
from app.jobs.inspector import Inspector, InspectorUnavailable, LayerRefused
from app.store import repository
from app.store.tables import ModelRecord


@dataclass
class ModelState:
    """A model as the user sees it: graph, problems, and Keras' summary when it builds."""

    record: ModelRecord
    graph: Graph
    report: Report
    summary: dict[str, Any] | None = None
    keras_issue: Issue | None = None
    fit_issues: list[Issue] = field(default_factory=list)  # model against its data
    notices: list[str] = field(default_factory=list)

    @property
    def issues(self) -> list[Issue]:
        return self.report.issues + ([self.keras_issue] if self.keras_issue else []) + self.fit_issues

    @property
    def valid(self) -> bool:
        return self.report.ok and self.keras_issue is None and self.summary is not None

    def issues_for(self, node_id: str) -> list[Issue]:
        return [i for i in self.issues if i.node_id == node_id]

    def general_issues(self) -> list[Issue]:
        return [i for i in self.issues if i.node_id is None]


def _output_units(state: ModelState) -> int | None:
    head = output_head(state.graph, state.report)
    return head.units if head else None


def edit_error(exc: EditError) -> PublicError:
    return PublicError(exc.message, layer_id=exc.node_id, field=exc.field, status=exc.status)


def apply_edit(session: Session, settings: Settings, record: ModelRecord,
               edit: Callable[[Graph], Graph], description: str,
               inspector: Inspector | None = None) -> Graph:
    """Apply and store an edit; with an inspector, Keras starts on the new summary at once."""
    graph = repository.load_graph(record)
    try:
        new_graph = edit(graph)
    except EditError as exc:
        raise edit_error(exc) from None
    report = validate(new_graph, settings.limits)
    too_large = [i for i in report.issues if i.too_large]
    if too_large:
        raise InvalidInput(too_large[0].message, layer_id=too_large[0].node_id)
    if inspector is not None and report.ok:
        inspector.prefetch(new_graph)
    repository.save_graph(session, record, new_graph, description, settings.undo_depth)
    return new_graph


def describe_model(record: ModelRecord, settings: Settings, inspector: Inspector,
                   with_text: bool = False, meta: DatasetMeta | None = None) -> ModelState:
    """Validation, then Keras' summary, then how the model fits the attached data (if any)."""
    graph = repository.load_graph(record)
    state = ModelState(record, graph, validate(graph, settings.limits))
    if not state.report.ok:
        return state
    try:
        state.summary = inspector.summarize(graph, with_text=with_text)
    except LayerRefused as exc:
        state.keras_issue = Issue(exc.message, exc.layer_id)
    except InspectorUnavailable as exc:
        state.notices.append(str(exc))
    if meta is not None:
        # Added after the summary: a model that does not fit the data still has a summary.
        state.fit_issues = check_training(graph, meta, default_config(meta, _output_units(state)), state.report)
    return state


def create_model(session: Session, settings: Settings, workspace_id: str, name: str,
                 starter_key: str) -> ModelRecord:
    name = checked_name(name)
    starter = STARTERS.get(starter_key)
    if starter is None:
        raise InvalidInput(f"Invalid value received for `starter`. Expected one of: "
                           f"{', '.join(STARTERS)}. Received: starter={starter_key!r}", field="starter")
    if repository.count_models(session, workspace_id) >= settings.max_models_per_workspace:
        raise PublicError(f"This workspace already holds {settings.max_models_per_workspace} models, "
                          "the most allowed. Delete one first.", status=409)
    return repository.create_model(session, workspace_id, name, starter.graph())


def checked_name(name: str) -> str:
    try:
        return check_model_name(name)
    except EditError as exc:
        raise edit_error(exc) from None
