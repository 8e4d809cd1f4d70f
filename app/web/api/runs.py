"""Training runs over JSON, and their live events over Server-Sent Events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import FileResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from app.core.errors import NotFound
from app.core.runs import ACTIVE_STATES, FINAL_MODEL, RESUMABLE_STATES
from app.core.training import settings_schema
from app.services.training import evaluate_run, run_out, saved_model, start_run
from app.store import runs
from app.store.tables import RunRecord
from app.web.api.schemas import RunDetail, RunSummary
from app.web.deps import ApiModel, ApiRun, ApiWorkspace, DataWorkerDep, SchedulerDep, SessionDep, SettingsDep

router = APIRouter(tags=["runs"])
STREAM_WAKE_SECONDS = 5.0  # a stream rechecks the database at least this often


@router.get("/training-settings")
def training_settings() -> list[dict[str, Any]]:
    """Every training setting with its default, bounds, help and group, for building forms."""
    return settings_schema()


@router.post("/models/{model_id}/runs", status_code=201)
def start(body: dict[str, Any], record: ApiModel, workspace_id: ApiWorkspace, session: SessionDep,
          settings: SettingsDep, scheduler: SchedulerDep) -> RunDetail:
    """Train the model on its dataset; the body overrides the suggested settings (GET /training-settings)."""
    run = start_run(session, settings, scheduler, workspace_id, record, body)
    return RunDetail.model_validate(run_out(session, scheduler, run))


@router.get("/runs")
def list_runs(workspace_id: ApiWorkspace, session: SessionDep, scheduler: SchedulerDep,
              model_id: int | None = None) -> list[RunSummary]:
    return [RunSummary.model_validate(run_out(session, scheduler, run, detail=False))
            for run in runs.list_runs(session, workspace_id, model_id)]


@router.get("/runs/{run_id}")
def get_run(run: ApiRun, session: SessionDep, scheduler: SchedulerDep) -> RunDetail:
    """State, settings, per-epoch metrics, thinned batch losses and the evaluation."""
    return RunDetail.model_validate(run_out(session, scheduler, run))


@router.post("/runs/{run_id}/stop")
def stop(run: ApiRun, session: SessionDep, scheduler: SchedulerDep) -> RunDetail:
    """Stop a queued or running run; a running one ends as cancelled after its current batch,
    keeping every epoch it finished."""
    scheduler.stop(run.id)
    session.refresh(run)
    return RunDetail.model_validate(run_out(session, scheduler, run))


@router.post("/runs/{run_id}/resume")
def resume(run: ApiRun, session: SessionDep, scheduler: SchedulerDep) -> RunDetail:
    """Continue an interrupted, stopped or failed run after its last saved epoch."""
    scheduler.resume(run.id)
    session.refresh(run)
    return RunDetail.model_validate(run_out(session, scheduler, run))


@router.post("/runs/{run_id}/evaluate")
def evaluate(run: ApiRun, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
             worker: DataWorkerDep) -> dict[str, Any]:
    """Evaluate the trained model (or, for a run that ended early, its last saved epoch) on the test split."""
    return evaluate_run(session, settings, scheduler, worker, run)


@router.get("/runs/{run_id}/model")
def download_model(run: ApiRun, scheduler: SchedulerDep) -> FileResponse:
    """The trained model in Keras' .keras format; for a run that ended early, its last saved epoch."""
    model = saved_model(scheduler, run)
    if model is None:
        raise NotFound("This run has no saved model yet: it is still training, or it ended before "
                       "finishing an epoch.")
    file, epoch = model
    filename = "".join(c if c.isalnum() or c in "-_" else "_" for c in run.model_name) or "model"
    suffix = "" if file == FINAL_MODEL else f"-epoch{epoch}"
    return FileResponse(scheduler.run_folder(run.id) / file, media_type="application/octet-stream",
                        filename=f"{filename}-run{run.id}{suffix}.keras")


@router.get("/runs/{run_id}/predictions.png")
def predictions_image(run: ApiRun, scheduler: SchedulerDep) -> FileResponse:
    path = scheduler.run_folder(run.id) / "predictions.png"
    if not path.exists():
        raise NotFound("This run has no sample predictions image.")
    return FileResponse(path, media_type="image/png")


@router.get("/runs/{run_id}/events", response_class=EventSourceResponse)
async def events(run: ApiRun, request: Request, last_event_id: Annotated[str | None, Header()] = None,
                 after: int = 0, follow: bool = False) -> AsyncIterable[ServerSentEvent]:
    """Live events: started, batch, epoch, checkpoint, finished, state. `Last-Event-ID` resumes without gaps.

    `after` skips the events a page already drew; a reconnect's `Last-Event-ID` takes precedence.
    The stream ends once the run has ended and every event has been sent; with `follow=true` it
    stays open while the run could still be resumed, so a page sees a resume from another tab.
    """
    async for event in stream_run_events(request, run.id, last_event_id or str(max(after, 0)), follow):
        yield event


async def stream_run_events(request: Request, run_id: int, last_event_id: str | None,
                            follow: bool = False) -> AsyncIterable[ServerSentEvent]:
    sessions, notifier = request.app.state.sessions, request.app.state.notifier
    last = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    wake = notifier.subscribe(run_id)
    waits_for = ACTIVE_STATES | (RESUMABLE_STATES if follow else frozenset())

    def fetch(after: int) -> tuple[list[tuple[int, str, str]], str]:
        with sessions() as session:
            # The state first: a state and the events announcing it are committed together, so
            # once an ended state is read, the events read next include its last ones.
            state = session.get(RunRecord, run_id).state
            rows = [(e.id, e.type, e.data_json) for e in runs.events_after(session, run_id, after)]
        return rows, state

    try:
        while True:
            wake.clear()
            rows, state = await run_in_threadpool(fetch, last)
            for event_id, kind, data_json in rows:
                last = event_id
                yield ServerSentEvent(id=str(event_id), event=kind, raw_data=data_json)
            if not rows and state not in waits_for:
                return
            if rows:
                continue  # there may be more than one page of events
            try:
                await asyncio.wait_for(wake.wait(), timeout=STREAM_WAKE_SECONDS)
            except TimeoutError:
                pass
    finally:
        notifier.unsubscribe(run_id, wake)
