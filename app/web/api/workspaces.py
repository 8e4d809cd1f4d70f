"""Workspaces for script clients."""

from __future__ import annotations

from fastapi import APIRouter

from app.store import repository
from app.web.api.schemas import WorkspaceCreated
from app.web.deps import SessionDep

router = APIRouter(tags=["workspaces"])


@router.post("/workspaces", status_code=201)
def create_workspace(session: SessionDep) -> WorkspaceCreated:
    """Create a workspace and return a bearer token for it (shown only once)."""
    workspace_id, token = repository.create_token_workspace(session)
    return WorkspaceCreated(workspace_id=workspace_id, token=token)
