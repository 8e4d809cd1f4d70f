"""Who is asking: a browser session (its cookie), a script (its bearer token), or nobody yet.

A browser gets a session only when it first stores something (its first model), so
looking around creates nothing. Sessions are server-side records with an expiry
(`app/store/sessions.py`); a page's forms and htmx requests carry a CSRF token derived
from the session's secret, which another site cannot read.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import deque
from datetime import timedelta

from fastapi import Request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session

from app.config import Settings
from app.core.errors import Forbidden, LimitReached, Unauthorized
from app.store import sessions
from app.store.tables import Workspace

COOKIE_NAME = "layerlab_session"
LEGACY_COOKIE_NAME = "layerlab_workspace"  # a signed workspace id, from before sessions were records
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


def session_ttl(settings: Settings) -> timedelta:
    return timedelta(days=settings.session_days)


def identify(request: Request, db: Session, authorization: str | None) -> str | None:
    """The workspace of the request, or None for a browser without a session yet.

    A bearer token that is not valid is an error (a script should know); a cookie that is
    not valid (expired, revoked, tampered with) is treated as no session at all.
    """
    ttl = session_ttl(request.app.state.settings)
    if authorization:
        scheme, _, token = authorization.partition(" ")
        workspace_id = sessions.workspace_of(db, token.strip(), ttl) if scheme.lower() == "bearer" else None
        if workspace_id is None:
            raise Unauthorized("The bearer token is not valid, or has expired or been revoked. Get a new one "
                               "with POST /api/v1/workspaces.")
        return workspace_id
    secret = request.cookies.get(COOKIE_NAME)
    workspace_id = sessions.workspace_of(db, secret, ttl) if secret else None
    return workspace_id or _adopt_legacy_cookie(request, db)


def start_browser_session(request: Request, db: Session) -> str:
    """A new workspace and a session cookie for it (rate-limited per address)."""
    check_creation_rate(request)
    workspace_id, secret = sessions.open_session(db, "browser", session_ttl(request.app.state.settings))
    request.state.new_session_cookie = secret
    return workspace_id


def check_creation_rate(request: Request) -> None:
    limiter: RateLimiter = request.app.state.workspace_rate
    address = request.client.host if request.client else "unknown"
    wait = limiter.wait_for(address)
    if wait is not None:
        raise LimitReached(f"Too many new workspaces from this address; the most is "
                           f"{limiter.limit} an hour (LAYERLAB_WORKSPACES_PER_HOUR). Try again in about "
                           f"{max(1, round(wait / 60))} min.", retry_after_s=wait)


def _adopt_legacy_cookie(request: Request, db: Session) -> str | None:
    """A cookie from before sessions existed names its workspace: it becomes a session cookie."""
    value = request.cookies.get(LEGACY_COOKIE_NAME)
    if not value:
        return None
    try:
        workspace_id = URLSafeSerializer(request.app.state.settings.signing_key, salt="workspace").loads(value)
    except BadSignature:
        return None
    if not isinstance(workspace_id, str) or db.get(Workspace, workspace_id) is None:
        return None
    _, secret = sessions.open_session(db, "browser", session_ttl(request.app.state.settings), workspace_id)
    request.state.new_session_cookie = secret
    return workspace_id


def csrf_token(request: Request) -> str | None:
    """The token a page of this session sends back with every change; None without a session."""
    secret = getattr(request.state, "new_session_cookie", None) or request.cookies.get(COOKIE_NAME)
    if not secret:
        return None
    known = getattr(request.state, "csrf_for", None)  # a page has a form per layer: compute it once
    if known is not None and known[0] == secret:
        return str(known[1])
    key = request.app.state.settings.signing_key.encode()
    token = hmac.new(key, f"csrf:{secret}".encode(), hashlib.sha256).hexdigest()[:40]
    request.state.csrf_for = (secret, token)
    return token


def check_csrf(request: Request, sent: str | None) -> None:
    """Refuse a change sent with the session cookie but without this session's CSRF token."""
    expected = csrf_token(request)
    if expected is None or "authorization" in request.headers:
        return  # no session to protect (a first visit), or a bearer token, which carries its own proof
    if not sent or not hmac.compare_digest(sent, expected):
        raise Forbidden("This form is out of date or did not come from LayerLab's own pages (its security "
                        "token is missing or wrong), so nothing was changed. Reload the page and try again.")


class RateLimiter:
    """At most `limit` events per key in any `window_s` seconds; memory is bounded by the keys seen lately."""

    def __init__(self, limit: int, window_s: float = 3600.0):
        self.limit, self.window_s = limit, window_s
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait_for(self, key: str) -> int | None:
        """Records an event and returns None, or returns the seconds to wait when over the limit."""
        now = time.monotonic()
        with self._lock:
            if len(self._events) > 10_000:  # forget keys that have gone quiet
                self._events = {k: v for k, v in self._events.items() if v and now - v[-1] < self.window_s}
            events = self._events.setdefault(key, deque())
            while events and now - events[0] >= self.window_s:
                events.popleft()
            if len(events) >= self.limit:
                return int(self.window_s - (now - events[0])) + 1
            events.append(now)
            return None
