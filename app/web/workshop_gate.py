"""In workshop mode, nothing is reachable without a session: a participant's, the instructor's, or a
bearer token the instructor made. Checked here, in front of every route (pages, the API, event
streams, downloads, the API documentation and `openapi.json`), so that a route added later is closed
until it is listed as public. A participant of a closed workshop may still read, but not change.
"""

from __future__ import annotations

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import Forbidden, Unauthorized, UserError
from app.web.auth import Principal, principal_of
from app.web.errors import error_response

# What a visitor without a session may reach: the ways in, the health check, and the static files.
PUBLIC_PATHS = frozenset({"/join", "/instructor/sign-in", "/healthz", "/favicon.ico",
                          "/api/v1/workshops/join", "/api/v1/instructor/session"})
PUBLIC_PREFIXES = ("/static/",)
# What a participant of a closed workshop may still post: leaving.
READ_ONLY_EXCEPTIONS = frozenset({"/logout", "/api/v1/workspaces/token"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class WorkshopGateMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            principal = await to_thread.run_sync(self._identify, request)
            self._check(request, principal)
        except UserError as error:
            response: Response
            if isinstance(error, Unauthorized) and self._is_page_visit(request):
                response = RedirectResponse("/join", status_code=303)
            else:
                response = error_response(request, error)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _identify(request: Request) -> Principal | None:
        with request.app.state.sessions() as db:
            return principal_of(request, db, request.headers.get("authorization"))

    @staticmethod
    def _check(request: Request, principal: Principal | None) -> None:
        if principal is None:
            raise Unauthorized("This LayerLab serves a workshop: join it with its code (on the Join page, or "
                               "POST /api/v1/workshops/join), or sign in as the instructor.")
        if principal.read_only and request.method not in SAFE_METHODS and request.url.path not in READ_ONLY_EXCEPTIONS:
            raise Forbidden("This workshop is closed: your work is read-only now. You can still open and "
                            "download your models and runs.")

    @staticmethod
    def _is_page_visit(request: Request) -> bool:
        return request.method == "GET" and not request.url.path.startswith("/api/") and \
            "authorization" not in request.headers
