"""Pages for error analysis: the test samples behind a confusion-matrix cell, a regression run's
largest errors, and one test sample with everything the model said about it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.core.graph import Graph
from app.services import insights
from app.services.internals import FEATURE_MAP_TYPES
from app.web.deps import DataWorkerDep, PageRun, SchedulerDep, SessionDep, SettingsDep
from app.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE_LIMIT = 100  # samples shown on a cell's or the errors' page


def _run(run: Any) -> dict[str, Any]:
    return {"id": run.id, "name": run.name or f"Run {run.id} of {run.model_name}", "dataset_name": run.dataset_name}


@router.get("/runs/{run_id}/confusion/{true_class}/{predicted_class}", response_class=HTMLResponse,
            name="confusion_cell_page")
def confusion_cell_page(request: Request, true_class: int, predicted_class: int, run: PageRun,
                        session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
                        worker: DataWorkerDep) -> Response:
    cell = insights.confusion_cell(session, settings, scheduler, worker, run, true_class, predicted_class,
                                   limit=PAGE_LIMIT, with_features=True)
    return render(request, "confusion_cell.html", {"run": _run(run), "cell": cell, "errors": None})


@router.get("/runs/{run_id}/errors", response_class=HTMLResponse, name="largest_errors_page")
def largest_errors_page(request: Request, run: PageRun, session: SessionDep, settings: SettingsDep,
                        scheduler: SchedulerDep, worker: DataWorkerDep) -> Response:
    errors = insights.largest_errors(session, settings, scheduler, worker, run, with_features=True)
    return render(request, "confusion_cell.html", {"run": _run(run), "cell": None, "errors": errors})


@router.get("/runs/{run_id}/samples/{index}", response_class=HTMLResponse, name="sample_page")
def sample_page(request: Request, index: int, run: PageRun, session: SessionDep, settings: SettingsDep,
                scheduler: SchedulerDep, worker: DataWorkerDep) -> Response:
    found = insights.sample(session, settings, scheduler, worker, run, index)
    graph = Graph.model_validate_json(run.graph_json)
    # What the network saw inside (image data): its convolution and pooling outputs, drawn on request.
    inside = [n for n in graph.topological_order() if n.type in FEATURE_MAP_TYPES] if found["kind"] == "image" else []
    first_conv = next((n for n in inside if n.type == "Conv2D"), None)
    return render(request, "sample.html", {"run": _run(run), "sample": found, "inside": inside,
                                           "first_conv": first_conv})
