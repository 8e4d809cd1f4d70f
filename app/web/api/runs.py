"""Training runs over JSON, and their live events over Server-Sent Events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.responses import FileResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from app.core.errors import LimitReached, NotFound
from app.core.runs import ACTIVE_STATES, RECONSTRUCTIONS, RESUMABLE_STATES
from app.core.training import settings_schema
from app.jobs.event_hub import RunEventHub, StreamEvent
from app.services import history, improving
from app.services.history import run_out
from app.services.model_formats import FORMAT_HELP, ModelFormat, model_download
from app.services.training import delete_run, evaluate_run, resume_run, start_run
from app.store import runs
from app.store.tables import RunRecord
from app.web.api.models import model_out
from app.web.api.schemas import (
    AppliedSuggestion,
    ModelOut,
    RunComparison,
    RunDetail,
    RunHistoryRow,
    RunUpdate,
    SuggestionOut,
)
from app.web.deps import (
    ApiModel,
    ApiRun,
    ApiWorkspace,
    DataWorkerDep,
    SchedulerDep,
    SessionDep,
    SettingsDep,
    api_workspace,
    find_run,
)

router = APIRouter(tags=["runs"])


@router.get("/training-settings")
def training_settings() -> list[dict[str, Any]]:
    """Every training setting with its default, bounds, help and group, for building forms."""
    return settings_schema()


@router.post("/models/{model_id}/runs", status_code=201)
def train_model(body: Annotated[dict[str, Any], Body(examples=[{"epochs": 10, "batch_size": 32, "learning_rate": 0.001,
                                                                "optimizer": "adam", "seed": 42}])],
                record: ApiModel, workspace_id: ApiWorkspace, session: SessionDep, settings: SettingsDep,
                scheduler: SchedulerDep) -> RunDetail:
    """Train the model on its dataset; the body overrides the suggested settings (GET /training-settings)."""
    run = start_run(session, settings, scheduler, workspace_id, record, body)
    return RunDetail.model_validate(run_out(session, scheduler, run))


@router.get("/runs")
def list_runs(workspace_id: ApiWorkspace, session: SessionDep, scheduler: SchedulerDep,
              model_id: int | None = None, dataset_id: int | None = None, state: str | None = None,
              sort: Annotated[str, Query(description=history.SORT_RULE)] = "-created") -> list[RunHistoryRow]:
    """The workspace's runs, filtered and sorted, each with what changed since its model's previous run."""
    rows = history.run_history(session, scheduler, workspace_id, model_id=model_id, dataset_id=dataset_id,
                               state=state, sort=sort)
    return [RunHistoryRow.model_validate(row) for row in rows]


@router.get("/runs/compare")
def compare(workspace_id: ApiWorkspace, session: SessionDep, scheduler: SchedulerDep,
            ids: Annotated[str, Query(description="2 to 8 run ids separated by commas; the first is the "
                                                  "one the others are compared with.")]) -> RunComparison:
    """Runs side by side: their epochs, what changed against the first, and the effect in a sentence."""
    return RunComparison.model_validate(
        history.compare_runs(session, scheduler, workspace_id, history.parse_ids(ids)))


@router.get("/runs/{run_id}")
def get_run(run: ApiRun, session: SessionDep, scheduler: SchedulerDep) -> RunDetail:
    """State, settings, per-epoch metrics, thinned batch losses and the evaluation."""
    return RunDetail.model_validate(run_out(session, scheduler, run))


@router.patch("/runs/{run_id}")
def update_run(body: RunUpdate, run: ApiRun, session: SessionDep, scheduler: SchedulerDep) -> RunDetail:
    """Rename a run or change its notes."""
    history.update_run(session, run, body.name, body.notes)
    return RunDetail.model_validate(run_out(session, scheduler, run))


@router.get("/runs/{run_id}/suggestions")
def suggestions(run: ApiRun, session: SessionDep, scheduler: SchedulerDep) -> list[SuggestionOut]:
    """What to try next, from the run's curves, settings, graph, test results and what was recorded inside it
    (none while it trains, none when nothing looks wrong). Each says what it saw and the changes it would make."""
    return [SuggestionOut.model_validate(s.as_dict()) for s in improving.suggestions_for(session, scheduler, run)]


@router.post("/runs/{run_id}/suggestions/{key}/apply", status_code=201)
def apply_suggestion(key: str, run: ApiRun, session: SessionDep, settings: SettingsDep,
                     scheduler: SchedulerDep) -> AppliedSuggestion:
    """Make the suggested variant as a new model and queue its run with this run's settings otherwise."""
    model, queued = improving.apply_suggestion(session, settings, scheduler, run, key)
    return AppliedSuggestion(model_id=model.id, run_id=queued.id)


@router.post("/runs/{run_id}/restore", status_code=201)
def restore(run: ApiRun, workspace_id: ApiWorkspace, session: SessionDep, settings: SettingsDep) -> ModelOut:
    """A new model from the graph this run trained (attached to its dataset when that still exists)."""
    return model_out(history.restore_model(session, settings, workspace_id, run), settings)


@router.delete("/runs/{run_id}", status_code=204)
def remove_run(run: ApiRun, session: SessionDep, scheduler: SchedulerDep) -> Response:
    """Delete an ended run with its files (409 while it is queued or running: stop it first)."""
    delete_run(session, scheduler, run)
    return Response(status_code=204)


@router.post("/runs/{run_id}/stop")
def stop(run: ApiRun, session: SessionDep, scheduler: SchedulerDep) -> RunDetail:
    """Stop a queued or running run; a running one ends as cancelled after its current batch,
    keeping every epoch it finished."""
    scheduler.stop(run.id)
    session.refresh(run)
    return RunDetail.model_validate(run_out(session, scheduler, run))


@router.post("/runs/{run_id}/resume")
def resume(run: ApiRun, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep) -> RunDetail:
    """Continue an interrupted, stopped or failed run after its last saved epoch."""
    resume_run(session, settings, scheduler, run)
    session.refresh(run)
    return RunDetail.model_validate(run_out(session, scheduler, run))


@router.post("/runs/{run_id}/evaluate")
def evaluate(run: ApiRun, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
             worker: DataWorkerDep) -> dict[str, Any]:
    """Evaluate the trained model (or, for a run that ended early, its last saved epoch) on the test split."""
    return evaluate_run(session, settings, scheduler, worker, run)


@router.get("/runs/{run_id}/model")
def download_model(run: ApiRun, session: SessionDep, scheduler: SchedulerDep, worker: DataWorkerDep,
                   format: Annotated[ModelFormat, Query(description=FORMAT_HELP)] = "keras") -> FileResponse:
    """The trained model as Keras' .keras file, a TensorFlow SavedModel (.zip), ONNX or LiteRT (.tflite);
    for a run that ended early, its last saved epoch. Other formats than .keras are exported by Keras on
    the first download, which takes seconds, and kept for the next."""
    download = model_download(session, scheduler, worker, run, format)
    return FileResponse(download.path, media_type=download.media_type, filename=download.filename)


@router.get("/runs/{run_id}/predictions.png")
def predictions_image(run: ApiRun, scheduler: SchedulerDep) -> FileResponse:
    """The test split's sample predictions as a PNG grid (image datasets)."""
    path = scheduler.run_folder(run.id) / "predictions.png"
    if not path.exists():
        raise NotFound("This run has no sample predictions image.")
    return FileResponse(path, media_type="image/png")


@router.get("/runs/{run_id}/reconstructions.png")
def reconstructions_image(run: ApiRun, scheduler: SchedulerDep) -> FileResponse:
    """An autoencoder's test samples (top row) above what it gave back (bottom row), from the best reconstructed
    to the worst, each with its mean squared error (runs with target input on images)."""
    path = scheduler.run_folder(run.id) / RECONSTRUCTIONS
    if not path.exists():
        raise NotFound("This run has no reconstructions image: only runs with target input on images draw one.")
    return FileResponse(path, media_type="image/png")


def open_stream(run_id: int, request: Request,
                authorization: Annotated[str | None, Header()] = None) -> tuple[int, str]:
    """The run and the session asking for it, checked with a database session of its own that is
    closed before the stream starts: a stream holds no database connection while it waits."""
    with request.app.state.sessions() as session:
        workspace_id = api_workspace(request, session, authorization)
        find_run(request, session, workspace_id, run_id)  # the instructor may follow a participant's run
    hub: RunEventHub = request.app.state.event_hub
    limit = request.app.state.settings.max_streams_per_session
    if hub.open_streams(workspace_id) >= limit:
        raise LimitReached(f"This session already follows {limit} event streams, the most allowed "
                           "(LAYERLAB_MAX_STREAMS_PER_SESSION). Close a tab that shows a run, then try again.")
    return run_id, workspace_id


StreamTarget = Annotated[tuple[int, str], Depends(open_stream)]


@router.get("/runs/{run_id}/events", response_class=EventSourceResponse)
async def events(target: StreamTarget, request: Request, last_event_id: Annotated[str | None, Header()] = None,
                 after: int = 0, follow: bool = False) -> AsyncIterable[ServerSentEvent]:
    """Live events: started, batch, epoch, checkpoint, finished, state. `Last-Event-ID` resumes without gaps.

    `after` skips the events a page already drew; a reconnect's `Last-Event-ID` takes precedence.
    The stream ends once the run has ended and every event has been sent; with `follow=true` it
    stays open while the run could still be resumed, so a page sees a resume from another tab.
    Keep-alive comments are sent while nothing happens. A client that falls far behind is
    disconnected, and catches up by reconnecting with `Last-Event-ID`.
    """
    last = int(last_event_id) if last_event_id and last_event_id.isdigit() and len(last_event_id) < 19 else None
    run_id, owner = target
    async for event in stream_run_events(request, run_id, owner, last if last is not None else max(after, 0),
                                         follow):
        yield event


async def stream_run_events(request: Request, run_id: int, owner: str, last: int,
                            follow: bool = False) -> AsyncIterable[ServerSentEvent]:
    """The backlog from the database once, then live events from the hub, which cost no query."""
    sessions, hub = request.app.state.sessions, request.app.state.event_hub
    waits_for = ACTIVE_STATES | (RESUMABLE_STATES if follow else frozenset())
    subscription = hub.subscribe(run_id, owner)  # before the backlog is read, so nothing falls between

    def backlog(after: int) -> tuple[str, list[StreamEvent]]:
        with sessions() as session:
            # The state first: a state and the events announcing it are committed together, so
            # once an ended state is read, the events read next include its last ones.
            state = session.get(RunRecord, run_id).state
            rows = [StreamEvent(e.id, e.type, e.data_json) for e in runs.events_after(session, run_id, after)]
        return state, rows

    try:
        while True:
            state, rows = await run_in_threadpool(backlog, last)
            for row in rows:
                last = row.id
                yield ServerSentEvent(id=str(row.id), event=row.type, raw_data=row.data_json)
            if len(rows) < runs.EVENTS_PAGE:
                break  # caught up with the database
        if state not in waits_for:
            return
        while True:
            event = await subscription.queue.get()
            if subscription.overflowed:
                return  # this reader fell too far behind; it reconnects with Last-Event-ID
            if event.id <= last:
                continue  # already sent from the backlog
            last = event.id
            yield ServerSentEvent(id=str(event.id), event=event.type, raw_data=event.data_json)
            if event.type == "state" and json.loads(event.data_json).get("state") not in waits_for:
                return
    finally:
        hub.unsubscribe(subscription)
