"""Suggestions after a run, and applying one: a variant model and its queued run, in one step."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from app.config import Settings
from app.core import graph as edits
from app.core.errors import NotFound, UserError
from app.core.graph import Graph, Node
from app.core.internals import findings, read_internals
from app.core.runs import INTERNALS, RunState
from app.core.suggestions import RunSummary, Suggestion, suggest
from app.core.training import TrainConfig, check_training
from app.core.validation import validate
from app.jobs.scheduler import Scheduler
from app.services import datasets, editing
from app.services.training import queue_runs
from app.store import repository, runs
from app.store.tables import ModelRecord, RunRecord


def suggestions_for(session: Session, scheduler: Scheduler, run: RunRecord) -> list[Suggestion]:
    """What to try next after an ended run (none while it trains, none when nothing is wrong), from its
    curves, settings, test results and what was recorded inside it."""
    if RunState(run.state).active:
        return []
    epochs = runs.history(session, run.id, with_batches=False)["epochs"]
    evaluation = run.evaluation or {}
    inside = findings(read_internals(scheduler.run_folder(run.id) / INTERNALS))
    summary = RunSummary(state=run.state, graph=Graph.model_validate_json(run.graph_json),
                         config=json.loads(run.config_json), epochs=[e.get("logs", {}) for e in epochs],
                         per_class=evaluation.get("per_class") or (), inside=inside)
    return suggest(summary)


def _layer_named(graph: Graph, name: str) -> Node:
    for node in graph.nodes:
        if node.name == name:
            return node
    raise UserError(f"This run has no layer named {name}, so the suggestion no longer fits.")


def apply_changes(graph: Graph, changes: list[dict[str, Any]]) -> tuple[Graph, dict[str, Any]]:
    """The graph with a suggestion's (or a search trial's) layer changes made, and its settings changes
    (path `settings.<name>`)."""
    overrides: dict[str, Any] = {}
    for change in changes:
        where = change["path"].split(".")
        if where[0] == "settings":
            overrides[where[1]] = change["to"]
        elif len(where) == 2 and change["from"] is None:  # an added layer
            added = change["to"]
            anchor = _layer_named(graph, added["after"])
            graph, _ = edits.add_layer(graph, added["type"], added["params"], name=where[1], after=anchor.id)
        elif len(where) == 2 and change["to"] is None:  # a removed layer
            graph = edits.remove_layer(graph, _layer_named(graph, where[1]).id)
        else:
            node = _layer_named(graph, where[1])
            graph = edits.update_layer(graph, node.id, {where[2]: change["to"]})
    return graph, overrides


def apply_suggestion(session: Session, settings: Settings, scheduler: Scheduler, run: RunRecord,
                     key: str) -> tuple[ModelRecord, RunRecord]:
    """A new model with the suggested changes, trained with the run's settings otherwise. Everything is
    checked before anything is stored; if the run cannot be queued, the new model is removed again."""
    found = {s.key: s for s in suggestions_for(session, scheduler, run)}
    suggestion = found.get(key)
    if suggestion is None:
        offered = ", ".join(found) or "none"
        raise NotFound(f"Run {run.id} has no suggestion `{key[:40]}`; its suggestions are: {offered}.")
    dataset = datasets.ready_dataset(session, run.dataset_id)
    if dataset is None:
        raise UserError("This run's dataset was deleted, so a variant of it cannot be trained.")
    graph, overrides = apply_changes(Graph.model_validate_json(run.graph_json), suggestion.changes)
    report = validate(graph, settings.limits)
    if not report.ok:
        raise report.errors[0].as_error("The suggested model does not build: ")
    config = TrainConfig.from_values({**json.loads(run.config_json), **overrides})
    errors = [i for i in check_training(graph, datasets.meta_of(dataset), config, report) if i.severity == "error"]
    if errors:
        raise errors[0].as_error(others=errors)
    model = editing.model_from_graph(session, settings, run.workspace_id, f"{run.model_name[:40]} - {key}", graph,
                                     dataset)
    try:
        queued = queue_runs(session, settings, scheduler, run.workspace_id, model_id=model.id, model_name=model.name,
                            graph_json=model.graph_json, dataset=dataset, configs=[config.get_config()],
                            params=report.total_params, parent_run_id=run.id)
    except UserError:
        repository.delete_model(session, model)
        raise
    return model, queued[0]
