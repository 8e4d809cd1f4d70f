"""Dependencies shared by routes, declared once as Annotated aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session

from app.config import Settings
from app.core.errors import Unauthorized
from app.jobs.inspector import Inspector
from app.jobs.scheduler import Scheduler
from app.jobs.warm_worker import WarmWorker
from app.services import datasets
from app.store import repository, runs
from app.store.tables import DatasetRecord, ModelRecord, RunRecord

COOKIE_NAME = "layerlab_workspace"
COOKIE_MAX_AGE = 400 * 24 * 3600  # browsers cap cookie lifetime at about 400 days


def cookie_signer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.signing_key, salt="workspace")


def workspace_from_cookie(request: Request) -> str | None:
    value = request.cookies.get(COOKIE_NAME)
    if not value:
        return None
    try:
        workspace_id = cookie_signer(request.app.state.settings).loads(value)
    except BadSignature:
        return None
    return workspace_id if isinstance(workspace_id, str) else None


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def get_inspector(request: Request) -> Inspector:
    return request.app.state.inspector


def get_data_worker(request: Request) -> WarmWorker:
    return request.app.state.data_worker


def get_scheduler(request: Request) -> Scheduler:
    return request.app.state.scheduler


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
InspectorDep = Annotated[Inspector, Depends(get_inspector)]
DataWorkerDep = Annotated[WarmWorker, Depends(get_data_worker)]
SchedulerDep = Annotated[Scheduler, Depends(get_scheduler)]


def api_workspace(request: Request, session: SessionDep,
                  authorization: Annotated[str | None, Header()] = None) -> str:
    """The workspace of an API call: a bearer token, or the browser's workspace cookie."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        workspace_id = repository.workspace_for_token(session, token.strip()) if scheme.lower() == "bearer" else None
        if workspace_id is None:
            raise Unauthorized("The bearer token is not valid. Get a new one with POST /api/v1/workspaces.")
        return workspace_id
    workspace_id = workspace_from_cookie(request)
    if workspace_id is None:
        raise Unauthorized("This request has no workspace. Send `Authorization: Bearer <token>`, "
                           "with a token from POST /api/v1/workspaces.")
    return workspace_id


def page_workspace(request: Request, session: SessionDep) -> str:
    """The browser's workspace; a first visit gets a new one and a cookie for it."""
    workspace_id = workspace_from_cookie(request)
    if workspace_id is None:
        workspace_id = repository.new_workspace_id()
        request.state.new_workspace_cookie = cookie_signer(request.app.state.settings).dumps(workspace_id)
    repository.ensure_workspace(session, workspace_id)
    return workspace_id


ApiWorkspace = Annotated[str, Depends(api_workspace)]
PageWorkspace = Annotated[str, Depends(page_workspace)]


# Looking a record up, or answering 404, happens here once: routes receive the record.
# Another workspace's record looks exactly like a missing one.

def api_model(model_id: int, workspace_id: ApiWorkspace, session: SessionDep) -> ModelRecord:
    return repository.get_model(session, workspace_id, model_id)


def page_model(model_id: int, workspace_id: PageWorkspace, session: SessionDep) -> ModelRecord:
    return repository.get_model(session, workspace_id, model_id)


def api_run(run_id: int, workspace_id: ApiWorkspace, session: SessionDep) -> RunRecord:
    return runs.get_run(session, workspace_id, run_id)


def page_run(run_id: int, workspace_id: PageWorkspace, session: SessionDep) -> RunRecord:
    return runs.get_run(session, workspace_id, run_id)


def api_dataset(dataset_id: int, workspace_id: ApiWorkspace, session: SessionDep) -> DatasetRecord:
    return datasets.get_dataset(session, workspace_id, dataset_id)


def page_dataset(dataset_id: int, workspace_id: PageWorkspace, session: SessionDep) -> DatasetRecord:
    return datasets.get_dataset(session, workspace_id, dataset_id)


ApiModel = Annotated[ModelRecord, Depends(api_model)]
PageModel = Annotated[ModelRecord, Depends(page_model)]
ApiRun = Annotated[RunRecord, Depends(api_run)]
PageRun = Annotated[RunRecord, Depends(page_run)]
ApiDataset = Annotated[DatasetRecord, Depends(api_dataset)]
PageDataset = Annotated[DatasetRecord, Depends(page_dataset)]
