"""Workspaces and their tokens, for script clients."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from app.core.errors import Forbidden, Unauthorized
from app.store import sessions
from app.web.api.schemas import WorkspaceCreated
from app.web.auth import check_creation_rate, session_ttl
from app.web.deps import SessionDep, SettingsDep

router = APIRouter(tags=["workspaces"])


@router.post("/workspaces", status_code=201)
def create_workspace(request: Request, session: SessionDep, settings: SettingsDep) -> WorkspaceCreated:
    """Create a workspace and return a bearer token for it (shown only once).

    The token stays valid for LAYERLAB_SESSION_DAYS after its last use. New workspaces are
    limited per client address (LAYERLAB_WORKSPACES_PER_HOUR; 429 with Retry-After beyond).
    """
    if settings.workshop_mode:
        raise Forbidden("In a workshop, workspaces come with joining (POST /api/v1/workshops/join), and only the "
                        "instructor makes tokens for participants' scripts.")
    check_creation_rate(request)
    workspace_id, token = sessions.open_session(session, "token", session_ttl(settings))
    return WorkspaceCreated(workspace_id=workspace_id, token=token, expires_in_days=settings.session_days)


@router.delete("/workspaces/token", status_code=204)
def revoke_token(session: SessionDep, authorization: Annotated[str | None, Header()] = None) -> Response:
    """End the caller's bearer token at once; the workspace and its records stay."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not sessions.revoke(session, token.strip()):
        raise Unauthorized("Send the token to revoke as `Authorization: Bearer <token>`; this one is not valid.")
    return Response(status_code=204)
