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
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session

from app.config import Settings
from app.core.errors import Forbidden, LimitReached, Unauthorized
from app.services import workshops
from app.services.workshops import Membership
from app.store import sessions
from app.store.tables import Workspace

COOKIE_NAME = "layerlab_session"
LEGACY_COOKIE_NAME = "layerlab_workspace"  # a signed workspace id, from before sessions were records
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


def session_ttl(settings: Settings) -> timedelta:
    return timedelta(days=settings.session_days)


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: whose workspace it works in, and in which role."""

    workspace_id: str
    role: str  # personal, participant or instructor
    member: Membership | None = None  # a participant's workshop

    @property
    def read_only(self) -> bool:
        return self.member is not None and self.member.closed


def identify(request: Request, db: Session, authorization: str | None) -> str | None:
    """The workspace of the request, or None for a browser without a session yet."""
    principal = principal_of(request, db, authorization)
    return principal.workspace_id if principal else None


def principal_of(request: Request, db: Session, authorization: str | None) -> Principal | None:
    """Who the request comes from (worked out once per request), or None for a browser without a session.

    A bearer token that is not valid is an error (a script should know); a cookie that is
    not valid (expired, revoked, tampered with) is treated as no session at all.
    """
    if getattr(request.state, "principal_known", False):
        return request.state.principal
    settings = request.app.state.settings
    ttl = session_ttl(settings)
    if authorization:
        scheme, _, token = authorization.partition(" ")
        found = sessions.session_of(db, token.strip(), ttl) if scheme.lower() == "bearer" else None
        if found is None:
            raise Unauthorized("The bearer token is not valid, or has expired or been revoked. " + (
                "Ask the instructor for a new one." if settings.workshop_mode
                else "Get a new one with POST /api/v1/workspaces."))
    else:
        secret = request.cookies.get(COOKIE_NAME)
        found = sessions.session_of(db, secret, ttl) if secret else None
        if found is None and not settings.workshop_mode:
            legacy = _adopt_legacy_cookie(request, db)
            found = (legacy, "browser") if legacy else None
    principal = _principal(db, *found) if found else None
    request.state.principal, request.state.principal_known = principal, True
    return principal


def _principal(db: Session, workspace_id: str, kind: str) -> Principal:
    if kind == workshops.INSTRUCTOR:
        return Principal(workspace_id, "instructor")
    if kind == workshops.PARTICIPANT:
        return Principal(workspace_id, "participant", workshops.membership(db, workspace_id))
    return Principal(workspace_id, "personal")


def start_browser_session(request: Request, db: Session) -> str:
    """A new workspace and a session cookie for it (rate-limited per address)."""
    if request.app.state.settings.workshop_mode:
        raise Unauthorized("In a workshop, join with the workshop's code first (on the Join page).")
    check_creation_rate(request)
    workspace_id, secret = sessions.open_session(db, "browser", session_ttl(request.app.state.settings))
    request.state.new_session_cookie = secret
    request.state.principal, request.state.principal_known = Principal(workspace_id, "personal"), True
    return workspace_id


def check_creation_rate(request: Request) -> None:
    limiter: RateLimiter = request.app.state.workspace_rate
    wait = limiter.wait_for(client_address(request))
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

    def wait_for(self, key: str, record: bool = True) -> int | None:
        """Records an event and returns None, or returns the seconds to wait when over the limit.
        With `record=False`, only says whether another event would be over the limit now."""
        now = time.monotonic()
        with self._lock:
            if len(self._events) > 10_000:  # forget keys that have gone quiet
                self._events = {k: v for k, v in self._events.items() if v and now - v[-1] < self.window_s}
            events = self._events.setdefault(key, deque())
            while events and now - events[0] >= self.window_s:
                events.popleft()
            if len(events) >= self.limit:
                return int(self.window_s - (now - events[0])) + 1
            if record:
                events.append(now)
            return None


def check_guess_rate(request: Request, door: str) -> None:
    """Refuse an attempt at a door (join, instructor) from an address that has guessed wrong there too often."""
    limiter: RateLimiter = request.app.state.guess_rate
    wait = limiter.wait_for(_guesser(request, door), record=False)
    if wait is not None:
        wrong = "passwords" if door == "instructor" else "codes or PINs"
        raise LimitReached(f"Too many wrong {wrong} from this address; at most {limiter.limit} a minute "
                           f"(LAYERLAB_JOIN_ATTEMPTS_PER_MINUTE). Try again in {wait} s.", retry_after_s=wait)


def count_wrong_guess(request: Request, door: str) -> None:
    request.app.state.guess_rate.wait_for(_guesser(request, door))


def _guesser(request: Request, door: str) -> str:
    """Whose guesses are counted together: one address at one door."""
    return f"{door} {client_address(request)}"


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
