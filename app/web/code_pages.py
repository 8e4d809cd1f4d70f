"""The code of a model or a run, on a page: highlighted, with Copy and the downloads."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.services import exports
from app.web.deps import PageModel, PageRun, SessionDep, SettingsDep
from app.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/models/{model_id}/code", response_class=HTMLResponse, name="model_code")
def model_code(request: Request, record: PageModel) -> Response:
    script, name = exports.model_code(record)
    return render(request, "code.html", {
        "title": record.name, "code": script.as_python(), "filename": f"{name}.py", "back": ("editor", record.id),
        "downloads": [("Python script", "api.export_model_script"), ("Notebook", "api.export_model_notebook"),
                      ("Keras JSON", "api.export_keras_config")], "model_id": record.id, "run_id": None})


@router.get("/runs/{run_id}/code", response_class=HTMLResponse, name="run_code")
def run_code(request: Request, run: PageRun, session: SessionDep, settings: SettingsDep) -> Response:
    script, name = exports.run_code(session, settings, run)
    return render(request, "code.html", {
        "title": f"{run.model_name} · run {run.id}", "code": script.as_python(), "filename": f"{name}.py",
        "back": ("run", run.id), "downloads": [("Python script", "api.export_run_script"),
                                               ("Notebook", "api.export_run_notebook")],
        "model_id": None, "run_id": run.id})
