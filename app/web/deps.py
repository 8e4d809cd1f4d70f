"""Dependencies shared by routes, declared once as Annotated aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from app.config import Settings
from app.core.errors import NotFound, Unauthorized
from app.jobs.inspector import Inspector
from app.jobs.scheduler import Scheduler
from app.jobs.warm_worker import WarmWorker
from app.services import datasets
from app.store import repository, runs
from app.store.db import release_connection
from app.store.tables import DatasetRecord, ModelRecord, RunRecord
from app.web.auth import identify, start_browser_session

# Dependencies that do no I/O are `async`: FastAPI then runs them in the event loop rather than
# handing each to a thread, which under load means waiting for a free one, several times a request.

async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A database session for the request; it takes a connection only when it first queries."""
    with request.app.state.sessions() as session:
        yield session


def _found(session: Session, record: T) -> T:
    """Hand a looked-up record to the route without holding a database connection: between this
    dependency and the route, the request may wait for a free thread while the room is busy."""
    release_connection(session)
    return record


async def get_inspector(request: Request) -> Inspector:
    return request.app.state.inspector


async def get_data_worker(request: Request) -> WarmWorker:
    return request.app.state.data_worker


async def get_scheduler(request: Request) -> Scheduler:
    return request.app.state.scheduler


T = TypeVar("T")

SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
InspectorDep = Annotated[Inspector, Depends(get_inspector)]
DataWorkerDep = Annotated[WarmWorker, Depends(get_data_worker)]
SchedulerDep = Annotated[Scheduler, Depends(get_scheduler)]


def api_workspace(request: Request, session: SessionDep,
                  authorization: Annotated[str | None, Header()] = None) -> str:
    """The workspace of an API call: a bearer token, or the browser's session cookie."""
    workspace_id = _found(session, identify(request, session, authorization))
    if workspace_id is None:
        raise Unauthorized("This request has no workspace. Send `Authorization: Bearer <token>`, "
                           "with a token from POST /api/v1/workspaces.")
    return workspace_id


def page_viewer(request: Request, session: SessionDep) -> str | None:
    """The browser's workspace, or None before it has stored anything (nothing is created to look)."""
    return _found(session, identify(request, session, None))


def page_workspace(request: Request, session: SessionDep) -> str:
    """The browser's workspace; a browser storing its first thing gets one, and a session cookie for it."""
    return identify(request, session, None) or start_browser_session(request, session)


async def page_owner(viewer: Annotated[str | None, Depends(page_viewer)]) -> str:
    """The workspace whose records a page shows: without one there is nothing to find."""
    if viewer is None:
        raise NotFound("There is nothing here yet: this browser has no models. Start one from the home page.")
    return viewer


ApiWorkspace = Annotated[str, Depends(api_workspace)]
PageViewer = Annotated[str | None, Depends(page_viewer)]
PageWorkspace = Annotated[str, Depends(page_workspace)]
PageOwner = Annotated[str, Depends(page_owner)]


# Looking a record up, or answering 404, happens here once: routes receive the record.
# Another workspace's record looks exactly like a missing one.

def api_model(model_id: int, workspace_id: ApiWorkspace, session: SessionDep) -> ModelRecord:
    return _found(session, repository.get_model(session, workspace_id, model_id))


def page_model(model_id: int, workspace_id: PageOwner, session: SessionDep) -> ModelRecord:
    return _found(session, repository.get_model(session, workspace_id, model_id))


def api_run(run_id: int, workspace_id: ApiWorkspace, session: SessionDep) -> RunRecord:
    return _found(session, runs.get_run(session, workspace_id, run_id))


def page_run(run_id: int, workspace_id: PageOwner, session: SessionDep) -> RunRecord:
    return _found(session, runs.get_run(session, workspace_id, run_id))


def api_dataset(dataset_id: int, workspace_id: ApiWorkspace, session: SessionDep) -> DatasetRecord:
    return _found(session, datasets.get_dataset(session, workspace_id, dataset_id))


def page_dataset(dataset_id: int, workspace_id: PageOwner, session: SessionDep) -> DatasetRecord:
    return _found(session, datasets.get_dataset(session, workspace_id, dataset_id))


ApiModel = Annotated[ModelRecord, Depends(api_model)]
PageModel = Annotated[ModelRecord, Depends(page_model)]
ApiRun = Annotated[RunRecord, Depends(api_run)]
PageRun = Annotated[RunRecord, Depends(page_run)]
ApiDataset = Annotated[DatasetRecord, Depends(api_dataset)]
PageDataset = Annotated[DatasetRecord, Depends(page_dataset)]
