"""The instructor's pages: workshops, the live dashboard of a room, the projector view, participants' models."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterable
from typing import Any

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from app.core.errors import LimitReached, UserError
from app.core.validation import validate
from app.core.workshops import WorkshopLimits, shown_code
from app.data.catalog import DATASETS
from app.jobs.event_hub import ALL_RUNS, RunEventHub
from app.services import challenges, datasets, workshops
from app.services.editing import ModelState
from app.services.workshop_room import room
from app.store import repository, runs
from app.web.deps import InstructorDep, InstructorWorkshop, SchedulerDep, SessionDep, SettingsDep, find_run
from app.web.errors import status_of
from app.web.pages import FormDep, redirect_to
from app.web.templating import render

router = APIRouter(include_in_schema=False)
# A busy room changes many times a second; the dashboard is told at most this often.
DASHBOARD_REFRESH_S = 1.5
LIMIT_FIELDS = tuple(WorkshopLimits.model_fields)


def join_url(request: Request, code: str) -> str:
    return str(request.base_url).rstrip("/") + f"/join?code={code}"


def dashboard_page(request: Request, session: Any, scheduler: Any, workshop: Any, error: UserError | None = None,
               status_code: int = 200) -> Response:
    own_datasets = [d for d in datasets.list_datasets(session, workshops.INSTRUCTOR_WORKSPACE)
                    if d.state == "ready" and d.source != "challenge"]
    context = {"workshop": workshop, "code": shown_code(workshop.join_code),
               "join_url": join_url(request, workshop.join_code), "room": room(session, scheduler, workshop),
               "limits": workshops.limits_of(workshop), "offered": [DATASETS[k] for k in workshops.datasets_of(workshop)
                                                                     if k in DATASETS],
               "examples": workshops.examples(session, workshop.id),
               "challenges": challenges.challenges_of(session, workshop.id),
               "own_models": repository.list_models(session, workshops.INSTRUCTOR_WORKSPACE),
               "own_datasets": own_datasets, "error": error}
    return render(request, "workshop_dashboard.html", context, status_code=status_code)


@router.get("/workshops", response_class=HTMLResponse, name="workshops")
def workshops_page(request: Request, who: InstructorDep, session: SessionDep, settings: SettingsDep) -> Response:
    return _workshops(request, session, settings)


def _workshops(request: Request, session: Any, settings: Any, error: UserError | None = None,
               values: dict[str, Any] | None = None) -> Response:
    context = {"workshops": workshops.list_workshops(session), "datasets": DATASETS.values(),
               "default_datasets": workshops.default_datasets(settings), "defaults": WorkshopLimits(),
               "error": error, "values": values or {}}
    return render(request, "workshops.html", context, status_code=status_of(error) if error else 200)


@router.post("/workshops", name="create_workshop_page")
def create_workshop(request: Request, form: FormDep, who: InstructorDep, session: SessionDep,
                    settings: SettingsDep) -> Response:
    limits: dict[str, Any] = {name: form.get(name) for name in LIMIT_FIELDS if form.get(name) not in (None, "")}
    limits["uploads"] = form.get("uploads") == "on"
    try:
        workshop = workshops.create_workshop(session, settings, form.get("name"), form.getlist("datasets"), limits)
    except UserError as error:
        return _workshops(request, session, settings, error, dict(form))
    return redirect_to(request, request.app.url_path_for("workshop_dashboard", workshop_id=str(workshop.id)))


@router.get("/workshops/{workshop_id}", response_class=HTMLResponse, name="workshop_dashboard")
def dashboard(request: Request, workshop: InstructorWorkshop, session: SessionDep, scheduler: SchedulerDep) -> Response:
    return dashboard_page(request, session, scheduler, workshop)


@router.get("/workshops/{workshop_id}/room", response_class=HTMLResponse, name="workshop_room")
def room_fragment(request: Request, workshop: InstructorWorkshop, session: SessionDep,
                  scheduler: SchedulerDep) -> Response:
    """The live part of the dashboard alone, fetched again whenever the room's event stream says so."""
    context = {"workshop": workshop, "room": room(session, scheduler, workshop),
               "challenges": challenges.challenges_of(session, workshop.id)}
    return render(request, "partials/_room.html", context)


@router.get("/workshops/{workshop_id}/events", response_class=EventSourceResponse, name="workshop_events")
async def room_events(request: Request, workshop: InstructorWorkshop,
                      who: InstructorDep) -> AsyncIterable[ServerSentEvent]:
    """`changed` whenever a run in the server moves on, someone joins or a score comes in (at most every 1.5 s)."""
    hub: RunEventHub = request.app.state.event_hub
    limit = request.app.state.settings.max_streams_per_session
    if hub.open_streams(who.workspace_id) >= limit:
        raise LimitReached(f"This session already follows {limit} event streams (LAYERLAB_MAX_STREAMS_PER_SESSION).")
    subscription = hub.subscribe(ALL_RUNS, who.workspace_id)
    try:
        while True:
            await subscription.queue.get()
            if subscription.overflowed:
                return
            await asyncio.sleep(DASHBOARD_REFRESH_S)  # gather what else happens meanwhile into one refresh
            while not subscription.queue.empty():
                subscription.queue.get_nowait()
            yield ServerSentEvent(event="changed", data={})
    finally:
        hub.unsubscribe(subscription)


@router.get("/workshops/{workshop_id}/projector", response_class=HTMLResponse, name="workshop_projector")
def projector(request: Request, workshop: InstructorWorkshop) -> Response:
    return render(request, "workshop_projector.html", {"workshop": workshop, "code": shown_code(workshop.join_code),
                                                       "join_url": join_url(request, workshop.join_code)})


@router.get("/workshops/{workshop_id}/qr.svg", name="workshop_qr")
def qr_code(request: Request, workshop: InstructorWorkshop) -> Response:
    """The join address as a QR code, drawn here (no outside service): a phone's camera opens the join page."""
    drawn = io.BytesIO()
    segno.make(join_url(request, workshop.join_code), error="m").save(
        drawn, kind="svg", omitsize=True, light="#fff", xmldecl=False, title="Join code QR")
    return Response(drawn.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=3600"})


@router.post("/workshops/{workshop_id}/close", name="close_workshop_page")
def close(request: Request, form: FormDep, workshop: InstructorWorkshop, session: SessionDep) -> Response:
    workshops.close_workshop(session, workshop)
    return redirect_to(request, request.app.url_path_for("workshop_dashboard", workshop_id=str(workshop.id)))


@router.post("/workshops/{workshop_id}/runs/{run_id}/stop", name="instructor_stop_run")
def stop_run(request: Request, run_id: int, form: FormDep, workshop: InstructorWorkshop, who: InstructorDep,
             session: SessionDep, scheduler: SchedulerDep) -> Response:
    run = find_run(request, session, who.workspace_id, run_id)
    if run.state in ("queued", "running"):
        scheduler.stop(run.id)
    return redirect_to(request, request.app.url_path_for("workshop_dashboard", workshop_id=str(workshop.id)))


@router.get("/workshops/{workshop_id}/participants/{participant_id}", response_class=HTMLResponse,
            name="participant_page")
def participant_page(request: Request, participant_id: int, workshop: InstructorWorkshop, session: SessionDep,
                     settings: SettingsDep, model: int | None = None) -> Response:
    """A participant's models (read-only, with their diagrams) and runs."""
    participant = workshops.get_participant(session, workshop, participant_id)
    models = repository.list_models(session, participant.workspace_id)
    shown = next((m for m in models if m.id == model), models[0] if models else None)
    state = None
    if shown is not None:
        graph = repository.load_graph(shown)
        state = ModelState(shown, graph, validate(graph, settings.limits))
    context = {"workshop": workshop, "participant": participant, "models": models, "shown": shown, "state": state,
               "runs": runs.list_runs(session, participant.workspace_id, limit=50)}
    return render(request, "participant.html", context)


@router.post("/workshops/{workshop_id}/examples", name="pin_example_page")
def pin_example(request: Request, form: FormDep, workshop: InstructorWorkshop, session: SessionDep,
                scheduler: SchedulerDep) -> Response:
    try:
        participant_id = int(form.get("participant_id") or 0) or None  # type: ignore[arg-type]
        model_id = int(form.get("model_id") or 0)  # type: ignore[arg-type]
        workshops.pin_example(session, workshop, model_id, participant_id)
    except ValueError as error:
        message = error if isinstance(error, UserError) else UserError("Choose a model to pin.", field="model_id")
        return dashboard_page(request, session, scheduler, workshop, message, status_of(message))
    return redirect_to(request, request.app.url_path_for("workshop_dashboard", workshop_id=str(workshop.id)))


@router.post("/workshops/{workshop_id}/examples/{example_id}/unpin", name="unpin_example_page")
def unpin_example(request: Request, example_id: int, form: FormDep, workshop: InstructorWorkshop,
                  session: SessionDep) -> Response:
    workshops.unpin_example(session, workshops.get_example(session, workshop.id, example_id))
    return redirect_to(request, request.app.url_path_for("workshop_dashboard", workshop_id=str(workshop.id)))
