"""Pages for data and training: choosing data for a model, dataset previews, runs."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from app.core.errors import UserError
from app.core.graph import Graph
from app.core.runs import RunState
from app.core.training import GROUPS, PARAMS_BY_NAME
from app.data.catalog import COLUMN_TREATMENTS, DATASETS, SPLIT_OPTIONS, UPLOAD_KINDS
from app.jobs.scheduler import Scheduler
from app.services import datasets, improving, internals, model_formats
from app.services.history import run_out
from app.services.training import delete_run, evaluate_run, resume_run, start_run
from app.store import runs
from app.store.tables import DatasetRecord, RunRecord
from app.web.api.datasets import read_upload_form
from app.web.deps import (
    DataWorkerDep,
    PageDataset,
    PageModel,
    PageOwner,
    PageRun,
    SchedulerDep,
    SessionDep,
    SettingsDep,
    only_looking,
)
from app.web.errors import status_of
from app.web.pages import EditorDep, FormDep, redirect_to, training_form_values
from app.web.templating import is_htmx, render

router = APIRouter(include_in_schema=False)
BUILTIN_PARAMS = {key: spec.params for key, spec in DATASETS.items()}


@router.post("/models/{model_id}/dataset", name="choose_dataset")
def choose_dataset(form: FormDep, record: PageModel, workspace_id: PageOwner, view: EditorDep,
                   worker: DataWorkerDep, scheduler: SchedulerDep) -> Response:
    """Attach a workspace dataset, or prepare a built-in one first."""
    choice = str(form.get("dataset") or "")
    try:
        if choice.startswith("builtin:"):
            key = choice.removeprefix("builtin:")
            accepted = {p.name for p in BUILTIN_PARAMS.get(key, ())}
            params = {k[2:]: v for k, v in form.items() if k.startswith("d.") and v != "" and k[2:] in accepted}
            options = {k[2:]: v for k, v in form.items() if k.startswith("s.") and v != ""}
            dataset = datasets.add_builtin(view.session, view.settings, worker, workspace_id, key, params, options)
        elif choice.isdigit() and len(choice) < 12:
            dataset = datasets.get_dataset(view.session, workspace_id, int(choice))
        else:
            raise UserError("Choose a dataset from the list.", field="dataset")
        datasets.attach(view.session, view.settings, record, dataset)
        scheduler.executor.warm_up()  # a model with data is usually trained soon
    except UserError as exc:
        exc.field = exc.field or "dataset"
        return view.done(record, error=exc, panel_error=True, form_values={"dataset": choice})
    return view.done(record, flash=f"Using {dataset.name}: the Input layer now takes its shape.",
                     settings_source="data")


@router.post("/models/{model_id}/dataset/upload", name="upload_dataset")
async def upload_dataset(request: Request, record: PageModel, workspace_id: PageOwner, view: EditorDep,
                         worker: DataWorkerDep) -> Response:
    try:
        folder = datasets.workspace_folder(view.settings, workspace_id) / "uploads"
        kind, options, path = await read_upload_form(request, folder)
    except UserError as exc:
        error = exc
        return await run_in_threadpool(lambda: view.done(record, error=error, panel_error=True))

    def prepare_and_attach() -> Response:
        try:
            dataset = datasets.add_upload(view.session, view.settings, worker, workspace_id, kind, path,
                                          {k: v for k, v in options.items() if v not in ("", None)})
            datasets.attach(view.session, view.settings, record, dataset)
        except UserError as exc:
            exc.field = exc.field or "upload"
            return view.done(record, error=exc, panel_error=True)
        finally:
            path.unlink(missing_ok=True)
        return view.done(record, flash=f"Uploaded {dataset.name}; the Input layer now takes its shape.",
                         settings_source="data")

    return await run_in_threadpool(prepare_and_attach)


@router.post("/models/{model_id}/dataset/fit-output", name="fit_output")
def fit_output(record: PageModel, view: EditorDep) -> Response:
    dataset = datasets.attached_dataset(view.session, record)
    try:
        if dataset is None:
            raise UserError("Choose a dataset first.", field="dataset")
        datasets.fit_output_layer(view.session, view.settings, record, datasets.meta_of(dataset))
    except UserError as exc:
        return view.done(record, error=exc, panel_error=True)
    return view.done(record, flash="The output layer now fits the data.", settings_source="data")


@router.post("/models/{model_id}/runs", name="start_run")
def start_training(request: Request, form: FormDep, record: PageModel, workspace_id: PageOwner,
                   view: EditorDep, scheduler: SchedulerDep) -> Response:
    values = training_form_values(form)
    try:
        run = start_run(view.session, view.settings, scheduler, workspace_id, record, values)
    except UserError as exc:
        return view.done(record, error=exc, panel_error=True)
    return redirect_to(request, request.app.url_path_for("run", run_id=str(run.id)))


def _dataset_page(request: Request, record: DatasetRecord, error: UserError | None = None) -> Response:
    spec = json.loads(record.spec_json)
    context = {"dataset": record, "meta": datasets.meta_of(record), "error": error,
               "options": spec.get("options", {}),
               "option_params": UPLOAD_KINDS.get(record.source, ()) + SPLIT_OPTIONS,
               "treatments": COLUMN_TREATMENTS}
    return render(request, "dataset.html", context, status_code=status_of(error) if error else 200)


@router.get("/datasets/{dataset_id}", response_class=HTMLResponse, name="dataset")
def dataset_page(request: Request, record: PageDataset) -> Response:
    return _dataset_page(request, record)


@router.post("/datasets/{dataset_id}/prepare", name="prepare_dataset")
def prepare_dataset_again(request: Request, form: FormDep, record: PageDataset, session: SessionDep,
                          settings: SettingsDep, worker: DataWorkerDep) -> Response:
    options: dict[str, Any] = {k[2:]: v for k, v in form.items() if k.startswith("o.") and v != ""}
    if record.source == "csv":
        options["target"] = str(form.get("target") or "")
        options["column_types"] = {k[4:]: v for k, v in form.items() if k.startswith("col.") and v != "auto"}
    try:
        datasets.reprepare(session, settings, worker, record, options)
    except UserError as exc:
        session.refresh(record)
        return _dataset_page(request, record, exc)
    return RedirectResponse(request.app.url_path_for("dataset", dataset_id=str(record.id)), status_code=303)


def show_run(request: Request, session: Any, scheduler: Scheduler, run: RunRecord,
             error: UserError | None = None) -> Response:
    session.refresh(run)
    previous = runs.previous_run_of_model(session, run)
    context = {"run": run_out(session, scheduler, run), "groups": GROUPS, "params": PARAMS_BY_NAME,
               "only_looking": only_looking(request, run),
               "previous_run_id": previous.id if previous is not None else None,
               "suggestions": improving.suggestions_for(session, scheduler, run),
               "last_event_id": runs.last_event_id(session, run.id), "error": error,
               # Checked as the API checks it, so a button is never offered for a download that is refused.
               "litert_refusal": model_formats.refusal("litert", Graph.model_validate_json(run.graph_json))}
    return render(request, "run.html", context, status_code=status_of(error) if error else 200,
                  fragment="partials/_run_update.html")


@router.get("/runs/{run_id}", response_class=HTMLResponse, name="run")
def run_page(request: Request, run: PageRun, session: SessionDep, scheduler: SchedulerDep) -> Response:
    return show_run(request, session, scheduler, run)


@router.get("/runs/{run_id}/internals", response_class=HTMLResponse, name="internals_panel")
def internals_panel(request: Request, run: PageRun, session: SessionDep, settings: SettingsDep,
                    scheduler: SchedulerDep, worker: DataWorkerDep) -> Response:
    """The run page's "Inside the network" section alone, which a page polls while the run trains."""
    session.refresh(run)
    context = {"run": run_out(session, scheduler, run),
               "inside_view": internals.inside_view(session, settings, scheduler, worker, run),
               "suggestions": improving.suggestions_for(session, scheduler, run),
               "max_channels": settings.max_channels_drawn}
    return render(request, "partials/_internals.html", context)


@router.post("/runs/{run_id}/stop", name="stop_run")
def stop_run(request: Request, run: PageRun, session: SessionDep, scheduler: SchedulerDep) -> Response:
    was_running = run.state == RunState.RUNNING
    try:
        scheduler.stop(run.id)
    except UserError as exc:
        if not was_running:
            return show_run(request, session, scheduler, run, exc)
        # else it ended in the meantime: the live stream has the final word
    if was_running and is_htmx(request):
        # The worker stops after its current batch and the live stream brings the new state;
        # answering with the page now could overwrite a newer state that arrived first.
        return Response(status_code=204)
    return _after_command(request, session, scheduler, run)


@router.post("/runs/{run_id}/resume", name="resume_run")
def resume(request: Request, run: PageRun, session: SessionDep, settings: SettingsDep,
           scheduler: SchedulerDep) -> Response:
    try:
        resume_run(session, settings, scheduler, run)
    except UserError as exc:
        return show_run(request, session, scheduler, run, exc)
    return _after_command(request, session, scheduler, run)


@router.post("/runs/{run_id}/delete", name="delete_run")
def delete(request: Request, run: PageRun, session: SessionDep, scheduler: SchedulerDep) -> Response:
    try:
        delete_run(session, scheduler, run)
    except UserError as exc:
        return show_run(request, session, scheduler, run, exc)
    return redirect_to(request, request.app.url_path_for("runs"))


@router.post("/runs/{run_id}/evaluate", name="evaluate_run")
def evaluate_again(request: Request, run: PageRun, session: SessionDep, settings: SettingsDep,
                   scheduler: SchedulerDep, worker: DataWorkerDep) -> Response:
    try:
        evaluate_run(session, settings, scheduler, worker, run)
    except UserError as exc:
        return show_run(request, session, scheduler, run, exc)
    return _after_command(request, session, scheduler, run)


def _after_command(request: Request, session: Any, scheduler: Scheduler, run: RunRecord) -> Response:
    """htmx gets the changed fragments; a plain form post is redirected to the run page."""
    if is_htmx(request):
        return show_run(request, session, scheduler, run)
    return RedirectResponse(request.app.url_path_for("run", run_id=str(run.id)), status_code=303)
