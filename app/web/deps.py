"""Dependencies shared by routes, declared once as Annotated aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from app.config import Settings
from app.core.errors import Forbidden, NotFound, Unauthorized
from app.jobs.inspector import Inspector
from app.jobs.scheduler import Scheduler
from app.jobs.warm_worker import WarmWorker
from app.services import datasets, workshops
from app.store import repository, runs
from app.store.db import release_connection
from app.store.tables import DatasetRecord, ModelRecord, RunRecord, WorkshopRecord
from app.web.auth import Principal, identify, principal_of, start_browser_session

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


def principal(request: Request, session: SessionDep,
              authorization: Annotated[str | None, Header()] = None) -> Principal:
    """Who is asking, for routes that need to know the role (a page or an API call)."""
    found = _found(session, principal_of(request, session, authorization))
    if found is None:
        raise Unauthorized("Sign in first: this needs a workspace, a participant's or the instructor's session.")
    return found


async def instructor(who: Annotated[Principal, Depends(principal)]) -> Principal:
    if who.role != "instructor":
        raise Forbidden("Only the workshop's instructor may do this.")
    return who


def workshop_of_instructor(workshop_id: int, who: Annotated[Principal, Depends(instructor)],
                           session: SessionDep) -> WorkshopRecord:
    return _found(session, workshops.get_workshop(session, workshop_id))


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


def find_run(request: Request, session: Session, workspace_id: str, run_id: int) -> RunRecord:
    """The workspace's run; for the instructor, also a participant's run, to look at or to stop."""
    who: Principal | None = getattr(request.state, "principal", None)
    if who is None or who.role != "instructor":
        return _found(session, runs.get_run(session, workspace_id, run_id))
    run = runs.get_any_run(session, run_id)
    if run.workspace_id != workspace_id:
        if not workshops.is_participant_workspace(session, run.workspace_id):
            raise NotFound(f"There is no run {run_id} in this workshop.")
        if request.method not in ("GET", "HEAD") and not request.url.path.endswith("/stop"):
            raise Forbidden("A participant's run can be looked at and stopped by the instructor, not changed.")
    return _found(session, run)


def only_looking(request: Request, run: RunRecord) -> bool:
    """Whether the viewer may look at this run but not change it (what `find_run` and the workshop gate refuse):
    the instructor on a participant's run (who may still stop it), or a participant once their workshop has
    closed. Pages then leave out what would be refused."""
    who: Principal | None = getattr(request.state, "principal", None)
    return who is not None and (who.workspace_id != run.workspace_id or who.read_only)


def api_run(request: Request, run_id: int, workspace_id: ApiWorkspace, session: SessionDep) -> RunRecord:
    return find_run(request, session, workspace_id, run_id)


def page_run(request: Request, run_id: int, workspace_id: PageOwner, session: SessionDep) -> RunRecord:
    return find_run(request, session, workspace_id, run_id)


def _dataset(request: Request, session: Session, workspace_id: str, dataset_id: int) -> DatasetRecord:
    """The workspace's dataset, or its workshop's challenge dataset, which can be used but not changed."""
    record = datasets.get_dataset(session, workspace_id, dataset_id)
    if record.workspace_id != workspace_id and request.method not in ("GET", "HEAD"):
        raise Forbidden("This is the workshop's challenge dataset: it can be used, not changed or deleted.")
    return _found(session, record)


def api_dataset(request: Request, dataset_id: int, workspace_id: ApiWorkspace, session: SessionDep) -> DatasetRecord:
    return _dataset(request, session, workspace_id, dataset_id)


def page_dataset(request: Request, dataset_id: int, workspace_id: PageOwner, session: SessionDep) -> DatasetRecord:
    return _dataset(request, session, workspace_id, dataset_id)


ApiModel = Annotated[ModelRecord, Depends(api_model)]
PageModel = Annotated[ModelRecord, Depends(page_model)]
ApiRun = Annotated[RunRecord, Depends(api_run)]
PageRun = Annotated[RunRecord, Depends(page_run)]
ApiDataset = Annotated[DatasetRecord, Depends(api_dataset)]
PageDataset = Annotated[DatasetRecord, Depends(page_dataset)]

PrincipalDep = Annotated[Principal, Depends(principal)]
InstructorDep = Annotated[Principal, Depends(instructor)]
InstructorWorkshop = Annotated[WorkshopRecord, Depends(workshop_of_instructor)]
