"""Pages for improving a model: the run history, comparing runs, and continuing from any run."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.core.errors import UserError
from app.core.runs import RunState
from app.services import datasets, history, improving, reuse
from app.services.training import repeat_with_seeds
from app.store import repository
from app.web.deps import DataWorkerDep, PageOwner, PageRun, PageViewer, SchedulerDep, SessionDep, SettingsDep
from app.web.errors import status_of
from app.web.pages import FormDep, redirect_to
from app.web.templating import render
from app.web.training_pages import show_run

router = APIRouter(include_in_schema=False)
REPEAT_SEEDS = (1, 2, 3)
# The sort each column header offers first: names A to Z, numbers largest (best) first.
COLUMN_SORTS = {"name": "name", "state": "state", "params": "-params", "best": "-best", "test": "-test",
                "duration": "-duration", "created": "-created"}


def _filters(request: Request) -> dict[str, Any]:
    """The history's filters from the query string; empty fields mean "any"."""
    query = request.query_params
    values: dict[str, Any] = {"sort": query.get("sort") or "-created", "state": query.get("state") or None}
    for name in ("model_id", "dataset_id"):
        text = query.get(name) or ""
        if text and not (text.isdigit() and len(text) < 19):
            raise UserError(f"`{name}` must be a number from the list.", field=name)
        values[name] = int(text) if text else None
    return values


@router.get("/runs", response_class=HTMLResponse, name="runs")
def runs_page(request: Request, workspace_id: PageViewer, session: SessionDep, scheduler: SchedulerDep) -> Response:
    """Every run of the workspace, filtered and sorted, with checkboxes to compare them."""
    error: UserError | None = None
    filters: dict[str, Any] = {"sort": "-created", "state": None, "model_id": None, "dataset_id": None}
    rows: list[dict[str, Any]] = []
    try:
        filters = _filters(request)
        rows = history.run_history(session, scheduler, workspace_id, **filters) if workspace_id else []
    except UserError as exc:
        error = exc
    models = repository.list_models(session, workspace_id) if workspace_id else []
    data = datasets.list_datasets(session, workspace_id) if workspace_id else []
    context = {"runs": rows, "filters": filters, "models": models,
               "datasets": sorted(((d.id, d.name) for d in data), key=lambda d: d[1].casefold()),
               "states": list(RunState), "column_sorts": COLUMN_SORTS, "error": error,
               "max_compared": history.MAX_COMPARED}
    return render(request, "runs.html", context, status_code=status_of(error) if error else 200)


def _series(comparison: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    """Each run's training (solid) and validation (dashed) curve of one metric."""
    lines = []
    for run in comparison["runs"]:
        for prefix, dashed in (("", False), ("val_", True)):
            points = [(e["epoch"], e["logs"][prefix + metric]) for e in run["metrics"]["epochs"]
                      if isinstance(e.get("logs", {}).get(prefix + metric), (int, float))]
            label = f"{run['name']} ({'validation' if dashed else 'training'})"
            lines.append({"colour": run["colour"], "label": label, "dashed": dashed, "points": points})
    return lines


def diff_rows(comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """The "what changed" table: one row per path any run changed, the first run's value, then each run's."""
    runs = comparison["runs"]
    paths = list(dict.fromkeys(c["path"] for run in runs[1:] for c in run["changes"]))
    rows = []
    for path in paths:
        found = [next((c for c in run["changes"] if c["path"] == path), None) for run in runs[1:]]
        before = next(c["from"] for c in found if c is not None)
        rows.append({"path": path, "first": before, "others": [c["to"] if c else None for c in found],
                     "changed": [c is not None for c in found]})
    return rows


@router.get("/runs/compare", response_class=HTMLResponse, name="compare_runs")
def compare_page(request: Request, workspace_id: PageOwner, session: SessionDep, scheduler: SchedulerDep,
                 metric: str = "loss") -> Response:
    """2 to 8 runs: curves on shared axes, what changed against the first, and a sentence each."""
    ids_text = ",".join(request.query_params.getlist("ids"))
    try:
        # The oldest run is the one the others are compared with (checkboxes arrive in table order).
        ids = sorted(history.parse_ids(ids_text))
        comparison = history.compare_runs(session, scheduler, workspace_id, ids)
    except UserError as exc:
        return render(request, "compare.html", {"error": exc, "comparison": None}, status_code=status_of(exc))
    choices = sorted({name.removeprefix("val_") for name in comparison["metrics"]})
    if metric not in choices:
        metric = "loss" if "loss" in choices else (choices[0] if choices else "loss")
    context = {"comparison": comparison, "metric": metric, "metric_choices": choices,
               "series": _series(comparison, metric), "diff": diff_rows(comparison),
               "ids": [run["id"] for run in comparison["runs"]], "error": None}
    return render(request, "compare.html", context)


@router.post("/runs/{run_id}/details", name="update_run")
def update_details(request: Request, form: FormDep, run: PageRun, session: SessionDep,
                   scheduler: SchedulerDep) -> Response:
    """Rename a run or change its notes (an empty name goes back to the telling default)."""
    try:
        history.update_run(session, run, str(form.get("name") or ""), str(form.get("notes") or ""))
    except UserError as exc:
        session.rollback()
        return show_run(request, session, scheduler, run, exc)
    return redirect_to(request, request.app.url_path_for("run", run_id=str(run.id)))


@router.post("/runs/{run_id}/restore", name="restore_run")
def restore(request: Request, run: PageRun, workspace_id: PageOwner, session: SessionDep,
            settings: SettingsDep, scheduler: SchedulerDep) -> Response:
    """"Open in the editor": a new model from the graph this run trained."""
    try:
        model = history.restore_model(session, settings, workspace_id, run)
    except UserError as exc:
        return show_run(request, session, scheduler, run, exc)
    return redirect_to(request, request.app.url_path_for("editor", model_id=str(model.id)))


@router.post("/runs/{run_id}/reuse", name="reuse_run")
def reuse_weights(request: Request, run: PageRun, workspace_id: PageOwner, session: SessionDep,
                  settings: SettingsDep, scheduler: SchedulerDep, worker: DataWorkerDep) -> Response:
    """"Reuse with its weights": a new model with this run's layers and trained weights, to fine-tune."""
    try:
        result = reuse.reuse_run(session, settings, scheduler, worker, run, workspace_id)
    except UserError as exc:
        return show_run(request, session, scheduler, run, exc)
    return redirect_to(request, request.app.url_path_for("editor", model_id=str(result.record.id)))


@router.post("/runs/{run_id}/train-again", name="train_again")
def train_again(request: Request, run: PageRun, workspace_id: PageOwner, session: SessionDep,
                settings: SettingsDep, scheduler: SchedulerDep) -> Response:
    """The model's editor with this run's settings in the training form (a model restored from the
    run when its own was deleted)."""
    model_id = run.model_id
    if model_id is None:
        try:
            model_id = history.restore_model(session, settings, workspace_id, run).id
        except UserError as exc:
            return show_run(request, session, scheduler, run, exc)
    url = request.app.url_path_for("editor", model_id=str(model_id))
    return redirect_to(request, f"{url}?from_run={run.id}#train-panel")


@router.post("/runs/{run_id}/repeat", name="repeat_run")
def repeat(request: Request, run: PageRun, session: SessionDep, settings: SettingsDep,
           scheduler: SchedulerDep) -> Response:
    """Queue the run again with three other seeds, then compare them all."""
    try:
        repeats = repeat_with_seeds(session, settings, scheduler, run, REPEAT_SEEDS)
    except UserError as exc:
        return show_run(request, session, scheduler, run, exc)
    ids = "&".join(f"ids={r}" for r in [run.id, *(r.id for r in repeats)])
    return redirect_to(request, f"{request.app.url_path_for('compare_runs')}?{ids}")


@router.post("/runs/{run_id}/suggestions/{key}/apply", name="apply_suggestion")
def apply_suggestion(request: Request, key: str, run: PageRun, session: SessionDep, settings: SettingsDep,
                     scheduler: SchedulerDep) -> Response:
    """A suggestion's variant as a new model, its run queued; the new run's page follows."""
    try:
        _, queued = improving.apply_suggestion(session, settings, scheduler, run, key)
    except UserError as exc:
        session.rollback()
        return show_run(request, session, scheduler, run, exc)
    return redirect_to(request, request.app.url_path_for("run", run_id=str(queued.id)))
