"""Pages for data and training: choosing data for a model, dataset previews, runs."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from app.core.training import GROUPS, PARAMS_BY_NAME
from app.data.catalog import COLUMN_TREATMENTS, DATASETS, SPLIT_OPTIONS, UPLOAD_KINDS
from app.errors import PublicError
from app.store import runs
from app.store.tables import RunRecord
from app.web import datasets
from app.web.api.datasets import read_upload_form
from app.web.deps import (DataWorkerDep, PageModel, PageWorkspace, SchedulerDep, SessionDep, SettingsDep)
from app.web.pages import EditorDep, FormDep, redirect_to
from app.web.templating import render
from app.web.training import evaluate_run, run_out, start_run

router = APIRouter(include_in_schema=False)
BUILTIN_PARAMS = {key: spec.params for key, spec in DATASETS.items()}


def page_run(run_id: int, workspace_id: PageWorkspace, session: SessionDep) -> RunRecord:
    return runs.get_run(session, workspace_id, run_id)


PageRun = Annotated[RunRecord, Depends(page_run)]


def training_form_values(form: Any) -> dict[str, Any]:
    """The settings a run form sent; checkboxes send false through a hidden field first."""
    values: dict[str, Any] = {}
    for name in PARAMS_BY_NAME:
        sent = form.getlist(f"t.{name}")
        if not sent:
            continue
        if name == "metrics":
            values[name] = [v for v in sent if v]
        else:
            values[name] = sent[-1]
    return values


@router.post("/models/{model_id}/dataset", response_class=HTMLResponse)
def choose_dataset(form: FormDep, record: PageModel, workspace_id: PageWorkspace, view: EditorDep,
                   worker: DataWorkerDep, scheduler: SchedulerDep) -> HTMLResponse:
    """Attach a workspace dataset, or prepare a built-in one first."""
    choice = str(form.get("dataset") or "")
    try:
        if choice.startswith("builtin:"):
            key = choice.removeprefix("builtin:")
            accepted = {p.name for p in BUILTIN_PARAMS.get(key, ())}
            params = {k[2:]: v for k, v in form.items() if k.startswith("d.") and v != "" and k[2:] in accepted}
            options = {k[2:]: v for k, v in form.items() if k.startswith("s.") and v != ""}
            dataset = datasets.add_builtin(view.session, view.settings, worker, workspace_id, key, params, options)
        elif choice.isdigit():
            dataset = datasets.get_dataset(view.session, workspace_id, int(choice))
        else:
            raise PublicError("Choose a dataset from the list.", field="dataset", status=422)
        datasets.attach(view.session, view.settings, record, dataset)
        scheduler.executor.warm_up()  # a model with data is usually trained soon
    except PublicError as exc:
        exc.field = exc.field or "dataset"
        return view.show(record, error=exc, panel_error=True)
    return view.show(record, flash=f"Using {dataset.name}: the Input layer now takes its shape.")


@router.post("/models/{model_id}/dataset/upload", response_class=HTMLResponse)
async def upload_dataset(request: Request, record: PageModel, workspace_id: PageWorkspace, view: EditorDep,
                         worker: DataWorkerDep) -> HTMLResponse:
    try:
        folder = datasets.workspace_folder(view.settings, workspace_id) / "uploads"
        kind, options, path = await read_upload_form(request, folder)
    except PublicError as exc:
        return await run_in_threadpool(view.show, record, error=exc, panel_error=True)

    def prepare_and_attach() -> HTMLResponse:
        try:
            dataset = datasets.add_upload(view.session, view.settings, worker, workspace_id, kind, path,
                                          {k: v for k, v in options.items() if v not in ("", None)})
            datasets.attach(view.session, view.settings, record, dataset)
        except PublicError as exc:
            exc.field = exc.field or "upload"
            return view.show(record, error=exc, panel_error=True)
        finally:
            path.unlink(missing_ok=True)
        return view.show(record, flash=f"Uploaded {dataset.name}; the Input layer now takes its shape.")

    return await run_in_threadpool(prepare_and_attach)


@router.post("/models/{model_id}/dataset/fit-output", response_class=HTMLResponse)
def fit_output(record: PageModel, view: EditorDep) -> HTMLResponse:
    dataset = datasets.attached_dataset(view.session, record)
    if dataset is None:
        return view.show(record, error=PublicError("Choose a dataset first.", field="dataset", status=422),
                         panel_error=True)
    datasets.fit_output_layer(view.session, view.settings, record, datasets.meta_of(dataset))
    return view.show(record, flash="The output layer now fits the data.")


@router.post("/models/{model_id}/runs")
def start_training(request: Request, form: FormDep, record: PageModel, workspace_id: PageWorkspace,
                   view: EditorDep, scheduler: SchedulerDep) -> Response:
    values = training_form_values(form)
    try:
        run = start_run(view.session, view.settings, scheduler, workspace_id, record, values)
    except PublicError as exc:
        return view.show(record, error=exc, panel_error=True, train_values=values)
    return redirect_to(request, f"/runs/{run.id}")


def _dataset_page(request: Request, record: Any, error: PublicError | None = None) -> HTMLResponse:
    spec = json.loads(record.spec_json)
    context = {"dataset": record, "meta": datasets.meta_of(record), "error": error,
               "options": spec.get("options", {}),
               "option_params": UPLOAD_KINDS.get(record.source, ()) + SPLIT_OPTIONS,
               "treatments": COLUMN_TREATMENTS}
    return render(request, "dataset.html", context, status_code=error.status if error else 200)


@router.get("/datasets/{dataset_id}", response_class=HTMLResponse)
def dataset_page(request: Request, dataset_id: int, workspace_id: PageWorkspace, session: SessionDep) -> HTMLResponse:
    return _dataset_page(request, datasets.get_dataset(session, workspace_id, dataset_id))


@router.post("/datasets/{dataset_id}/prepare")
def prepare_dataset_again(request: Request, form: FormDep, dataset_id: int, workspace_id: PageWorkspace,
                          session: SessionDep, settings: SettingsDep, worker: DataWorkerDep) -> Response:
    record = datasets.get_dataset(session, workspace_id, dataset_id)
    options: dict[str, Any] = {k[2:]: v for k, v in form.items() if k.startswith("o.") and v != ""}
    if record.source == "csv":
        options["target"] = str(form.get("target") or "")
        options["column_types"] = {k[4:]: v for k, v in form.items() if k.startswith("col.") and v != "auto"}
    try:
        datasets.reprepare(session, settings, worker, record, options)
    except PublicError as exc:
        session.refresh(record)
        return _dataset_page(request, record, exc)
    return RedirectResponse(f"/datasets/{record.id}", status_code=303)


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, workspace_id: PageWorkspace, session: SessionDep,
              scheduler: SchedulerDep) -> HTMLResponse:
    listed = [run_out(session, scheduler, run, detail=False) for run in runs.list_runs(session, workspace_id)]
    return render(request, "runs.html", {"runs": listed})


def _run_context(session: Any, scheduler: Any, run: RunRecord) -> dict[str, Any]:
    data = run_out(session, scheduler, run)
    return {"run": data, "groups": GROUPS, "params": PARAMS_BY_NAME,
            "last_event_id": runs.last_event_id(session, run.id)}


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run: PageRun, session: SessionDep, scheduler: SchedulerDep) -> HTMLResponse:
    return render(request, "run.html", _run_context(session, scheduler, run), fragment="partials/_run_update.html")


@router.post("/runs/{run_id}/stop", response_class=HTMLResponse)
def stop_run(request: Request, run: PageRun, session: SessionDep, scheduler: SchedulerDep) -> Response:
    if run.state == "running":
        # The worker stops after its current batch and the live stream brings the new state;
        # answering with the page now could overwrite a newer state that arrived first.
        try:
            scheduler.stop(run.id)
        except PublicError:
            pass  # it ended in the meantime; the stream has the final word
        return Response(status_code=204)
    return _command(request, run, session, scheduler, scheduler.stop)


@router.post("/runs/{run_id}/resume", response_class=HTMLResponse)
def resume_run(request: Request, run: PageRun, session: SessionDep, scheduler: SchedulerDep) -> HTMLResponse:
    return _command(request, run, session, scheduler, scheduler.resume)


def _command(request: Request, run: RunRecord, session: Any, scheduler: Any, command: Any) -> HTMLResponse:
    error = None
    try:
        command(run.id)
    except PublicError as exc:
        error = exc
    session.refresh(run)
    context = {**_run_context(session, scheduler, run), "error": error}
    return render(request, "run.html", context, status_code=error.status if error else 200,
                  fragment="partials/_run_update.html")


@router.post("/runs/{run_id}/evaluate", response_class=HTMLResponse)
def evaluate_again(request: Request, run: PageRun, session: SessionDep, settings: SettingsDep,
                   scheduler: SchedulerDep, worker: DataWorkerDep) -> HTMLResponse:
    return _command(request, run, session, scheduler,
                    lambda run_id: evaluate_run(session, settings, scheduler, worker, run))
