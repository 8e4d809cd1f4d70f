"""Run history and comparison: what each run was, what changed from one to the next, and what it did.

Shared by the runs and compare pages and the API, so each sentence and number is made once.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from app.config import Settings
from app.core.compare import (
    REPORTING_ONLY,
    Change,
    RunFacts,
    headline_metric,
    run_changes,
    seed_spread,
    summary_sentence,
)
from app.core.errors import UserError, invalid_value
from app.core.graph import Graph
from app.core.runs import (
    CHECKPOINT,
    FINAL_MODEL,
    RunState,
    architecture_line,
    at_best_epoch,
    best_epoch,
    test_metrics,
    validation_metric,
)
from app.core.training import stored_config
from app.core.validation import validate
from app.jobs.scheduler import Scheduler
from app.services import datasets, editing
from app.services.training import checkpoint_epoch, saved_model
from app.store import runs
from app.store.tables import ModelRecord, RunRecord

MIN_COMPARED, MAX_COMPARED = 2, 8
MAX_RUN_NAME, MAX_RUN_NOTES = 80, 2000
# Each run keeps one colour on the compare page: its curves, its column and its sentence.
RUN_COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f")
SORTS = {
    "created": lambda r: r["id"],
    "name": lambda r: r["name"].casefold(),
    "state": lambda r: r["state"],
    "params": lambda r: r["params"] if r["params"] is not None else -1,
    "best": lambda r: _ranked(r["best"]),
    "test": lambda r: _ranked(r["test"]),
    "duration": lambda r: r["duration_s"] if r["duration_s"] is not None else -1.0,
}
SORT_RULE = "one of " + ", ".join(SORTS) + ", with a leading - for the largest first"


def _ranked(score: dict[str, Any] | None) -> float:
    """A score to sort by, better is larger: accuracy as it is, losses and errors negated."""
    if not score:
        return float("-inf")
    return score["value"] if "accuracy" in score["metric"] else -score["value"]


def run_out(session: Session, scheduler: Scheduler, run: RunRecord, detail: bool = True,
            name: str | None = None, history: dict[str, Any] | None = None) -> dict[str, Any]:
    """A run as the API and pages show it; lists leave out the metrics history and the graph
    (and pass the name, which they work out with the run before it, and the history they read)."""
    if history is None:
        history = runs.history(session, run.id, with_batches=detail)
    config = stored_config(run.config_json)
    state = RunState(run.state)
    model = saved_model(scheduler, run)
    saved_epoch = checkpoint_epoch(scheduler, run) if detail else None
    has_checkpoint = saved_epoch is not None if detail else (scheduler.run_folder(run.id) / CHECKPOINT).exists()
    graph = Graph.model_validate_json(run.graph_json)
    out = {
        "id": run.id, "name": name if name is not None else display_name(session, run), "notes": run.notes,
        "named": run.name is not None, "state": state.value, "reason": run.reason,
        "active": state.active, "resumable": state.resumable and has_checkpoint,
        "model_id": run.model_id, "model_name": run.model_name,
        "dataset_id": run.dataset_id, "dataset_name": run.dataset_name,
        "architecture": architecture_line(graph), "params": parameter_count(run, graph),
        "config": config, "epochs_done": run.epochs_done, "epochs": config.get("epochs"),
        "saved_epoch": saved_epoch,
        "queue_position": scheduler.queue_position(session, run),
        "created_at": run.created_at, "started_at": run.started_at, "finished_at": run.finished_at,
        "duration_s": (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at
        else None,
        "progress": runs.latest_progress(session, run.id), "best_epoch": best_epoch(history["epochs"]),
        "evaluation": run.evaluation,
        "model_url": f"/api/v1/runs/{run.id}/model" if model else None,
        "model_epoch": model[1] if model else None,
        "model_is_final": bool(model and model[0] == FINAL_MODEL),
    }
    if detail:
        out.update(metrics=history, graph=graph.model_dump(), started_from=_started_from(session, run, graph),
                   device=(runs.last_start(session, run.id) or {}).get("device"))
    return out


def run_facts(session: Session, run: RunRecord, epochs: list[dict[str, Any]] | None = None) -> RunFacts:
    """The numbers of a run that comparisons and sentences use."""
    if epochs is None:
        epochs = runs.history(session, run.id, with_batches=False)["epochs"]
    graph = Graph.model_validate_json(run.graph_json)
    metric = validation_metric(epochs)
    best = at_best_epoch(epochs, metric) if metric else None
    return RunFacts(id=run.id, graph=graph, config=stored_config(run.config_json), dataset_id=run.dataset_id,
                    dataset_name=run.dataset_name, params=parameter_count(run, graph),
                    best_epoch=best_epoch(epochs), best_value=best[0] if best else None,
                    test=test_metrics(run.evaluation))


def setup_of(run: RunRecord) -> RunFacts:
    """What a run was set up with (data, graph, settings), without its results: enough for `run_changes`."""
    return RunFacts(id=run.id, graph=Graph.model_validate_json(run.graph_json), config=stored_config(run.config_json),
                    dataset_id=run.dataset_id, dataset_name=run.dataset_name, params=run.params, best_epoch=None,
                    best_value=None, test={})


def parameter_count(run: RunRecord, graph: Graph) -> int | None:
    """Recorded when the run started; worked out from its graph for runs of earlier versions."""
    if run.params is not None:
        return run.params
    report = validate(graph)
    return report.total_params if report.ok else None


def default_run_name(model_name: str, changes: Sequence[Change] | None) -> str:
    """"Convnet · tanh instead of relu in conv2d": the model and what changed since its previous run."""
    if changes is None:
        return f"{model_name} · first run"
    phrases = [c.phrase() for c in changes if c.path != "settings.seed"]
    if not phrases:
        what = "new seed" if changes else "same again"
    else:
        what = phrases[0] + (f" (+{len(phrases) - 1} more)" if len(phrases) > 1 else "")
    return f"{model_name} · {what}"[:MAX_RUN_NAME]


def display_name(session: Session, run: RunRecord) -> str:
    """The run's own name, or the telling default: its model and what changed since the previous run."""
    if run.name:
        return run.name
    previous = runs.previous_run_of_model(session, run)
    return default_run_name(run.model_name, run_changes(setup_of(previous), setup_of(run))
                            if previous is not None else None)


def history_row(session: Session, scheduler: Scheduler, run: RunRecord, previous: RunRecord | None) -> dict[str, Any]:
    """A run as the history table shows it, with what changed since the model's previous run."""
    history = runs.history(session, run.id, with_batches=False)
    epochs = history["epochs"]
    facts = run_facts(session, run, epochs)
    changes = run_changes(setup_of(previous), facts) if previous is not None else None
    out = run_out(session, scheduler, run, detail=False, name=run.name or default_run_name(run.model_name, changes),
                  history=history)
    metric = validation_metric(epochs)
    best = at_best_epoch(epochs, metric) if metric else None
    headline = headline_metric(facts.test)
    out.update(
        best={"metric": metric, "value": best[0], "epoch": best[1]} if metric and best else None,
        test={"metric": headline, "value": facts.test[headline]} if headline else None,
        changes_from_previous=[c.as_dict() for c in changes or []],
        previous_run_id=previous.id if previous is not None else None,
    )
    return out


def run_history(session: Session, scheduler: Scheduler, workspace_id: str, *, model_id: int | None = None,
                dataset_id: int | None = None, state: str | None = None,
                sort: str = "-created") -> list[dict[str, Any]]:
    """The workspace's runs (or one model's), filtered and sorted, each with what changed since the
    previous run of its model."""
    if state is not None and state not in set(RunState):
        raise invalid_value("state", "one of " + ", ".join(RunState), state)
    key = SORTS.get(sort.removeprefix("-"))
    if key is None:
        raise invalid_value("sort", SORT_RULE, sort)
    everything = sorted(runs.list_runs(session, workspace_id), key=lambda r: r.id)
    previous_of: dict[int, RunRecord | None] = {}
    last_of_model: dict[int | None, RunRecord] = {}
    by_id = {run.id: run for run in everything}
    for run in everything:
        previous_of[run.id] = last_of_model.get(run.model_id) if run.model_id is not None else None
        if previous_of[run.id] is None and run.parent_run_id is not None:
            previous_of[run.id] = by_id.get(run.parent_run_id)  # a variant's first run: the run it came from
        last_of_model[run.model_id] = run
    chosen = [r for r in everything if (model_id is None or r.model_id == model_id)
              and (dataset_id is None or r.dataset_id == dataset_id) and (state is None or r.state == state)]
    rows = [history_row(session, scheduler, run, previous_of[run.id]) for run in chosen]
    return sorted(rows, key=SORTS[sort.removeprefix("-")], reverse=sort.startswith("-"))


def update_run(session: Session, run: RunRecord, name: str | None = None, notes: str | None = None) -> None:
    """Rename a run (an empty name goes back to the telling default) or change its notes."""
    if name is not None:
        name = " ".join(name.split())
        if len(name) > MAX_RUN_NAME:
            raise invalid_value("name", f"at most {MAX_RUN_NAME} characters", name)
        run.name = name or None
    if notes is not None:
        if len(notes) > MAX_RUN_NOTES:
            raise invalid_value("notes", f"at most {MAX_RUN_NOTES} characters", notes)
        run.notes = notes.strip() or None
    session.commit()


def parse_ids(text: str) -> list[int]:
    """`1,2,3` as the compare page and API take it: 2 to 8 distinct run ids, in the order given."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not all(p.isdigit() and len(p) < 20 for p in parts):
        raise invalid_value("ids", "run ids separated by commas, such as 3,5,8", text)
    ids = list(dict.fromkeys(int(p) for p in parts))
    if not MIN_COMPARED <= len(ids) <= MAX_COMPARED:
        raise UserError(f"Choose {MIN_COMPARED} to {MAX_COMPARED} different runs to compare; "
                        f"{len(ids)} {'was' if len(ids) == 1 else 'were'} given.", field="ids")
    return ids


def _started_from(session: Session, run: RunRecord, graph: Graph) -> dict[str, list[str]] | None:
    """For a run that began from trained weights (an imported or reused model): the layers that got them, and
    the layers with weights that started fresh (renamed, reshaped or new)."""
    started = runs.first_start(session, run.id)
    loaded = list((started or {}).get("initial_weights") or [])
    if not loaded:
        return None
    report = validate(graph)
    weighted = [n.name for n in graph.nodes if n.id in report.shapes and report.shapes[n.id].params]
    return {"loaded": loaded, "fresh": [name for name in weighted if name not in loaded]}


def _setup_key(run: RunRecord) -> str:
    """Runs with the same key differ at most in their seed."""
    config = {k: v for k, v in stored_config(run.config_json).items() if k != "seed" and k not in REPORTING_ONLY}
    graph = Graph.model_validate_json(run.graph_json)
    layers = [(n.type, n.name, sorted(n.full_params().items()), n.inputs) for n in graph.nodes]
    return json.dumps([run.dataset_id, layers, sorted(config.items())], default=str)


def seed_spreads(session: Session, workspace_id: str, model_ids: set[int | None]) -> dict[str, float]:
    """Per headline metric, the largest spread seen between finished runs of these models that differ
    only in their seed (repeats are runs of the same model)."""
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    candidates = [run for model_id in model_ids if model_id is not None
                  for run in runs.list_runs(session, workspace_id, model_id)]
    for run in candidates:
        scores = test_metrics(run.evaluation)
        headline = headline_metric(scores)
        if headline is not None:
            groups[headline][_setup_key(run)].append(scores[headline])
    spreads = {metric: seed_spread(by_setup) for metric, by_setup in groups.items()}
    return {metric: spread for metric, spread in spreads.items() if spread is not None}


def compare_runs(session: Session, scheduler: Scheduler, workspace_id: str, ids: Sequence[int]) -> dict[str, Any]:
    """2 to 8 runs side by side: their epochs aligned, what changed against the first, and a sentence each."""
    records = [runs.get_run(session, workspace_id, run_id) for run_id in ids]
    spreads = seed_spreads(session, workspace_id, {run.model_id for run in records})
    compared, facts = [], []
    for position, run in enumerate(records):
        detail = run_out(session, scheduler, run)
        facts.append(run_facts(session, run, detail["metrics"]["epochs"]))
        detail.update(colour=RUN_COLOURS[position], test_metrics=facts[-1].test)
        detail.pop("graph")
        compared.append(detail)
    first = facts[0]
    for detail, fact in zip(compared[1:], facts[1:], strict=True):
        changes = run_changes(first, fact)
        headline = headline_metric(fact.test)
        detail["changes"] = [c.as_dict() for c in changes]
        detail["summary"] = summary_sentence(first, fact, changes, spreads.get(headline) if headline else None)
    compared[0]["changes"], compared[0]["summary"] = [], None
    metric_names = sorted({name for d in compared for e in d["metrics"]["epochs"] for name in e.get("logs", {})})
    epochs = max((len(d["metrics"]["epochs"]) for d in compared), default=0)
    return {"runs": compared, "metrics": metric_names, "epochs": epochs,
            "classes": _per_class_table(compared)}


def _per_class_table(compared: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-class F1 of each run, one row per class, when the runs classify the same classes."""
    reports = [(d.get("evaluation") or {}).get("per_class") for d in compared]
    if not all(reports) or len({tuple(c["name"] for c in r) for r in reports if r}) != 1:
        return []
    first_report = reports[0] or []
    return [{"name": entry["name"], "f1": [r[i]["f1"] if r else None for r in reports],
             "recall": [r[i]["recall"] if r else None for r in reports]}
            for i, entry in enumerate(first_report)]


def restore_model(session: Session, settings: Settings, workspace_id: str, run: RunRecord) -> ModelRecord:
    """A new model from the graph the run trained, attached to the run's dataset when it still exists."""
    return editing.model_from_graph(session, settings, workspace_id, f"{run.model_name[:48]} (run {run.id})",
                                    Graph.model_validate_json(run.graph_json),
                                    datasets.ready_dataset(session, run.dataset_id))

