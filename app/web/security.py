"""Protection every response gets: security headers, and a refusal of cross-site form posts.

A browser sends the workspace cookie with any request to this site, also with a form that
another site submits (SameSite=Lax still allows top-level POST navigations in some cases,
and always allows requests from sibling sites). So a request that changes something and
relies on the cookie must come from one of this site's own pages: its `Origin` (or, where a
browser leaves that out, its `Referer`) must name this host. Requests with a bearer token
carry their own proof and are not checked.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import Forbidden
from app.web.errors import error_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
    "referrer-policy": "same-origin",
}


def _source_host(headers: Headers) -> str | None:
    """The host a browser says the request comes from: Origin, else Referer."""
    for name in ("origin", "referer"):
        value = headers.get(name)
        if value and value != "null":
            return urlsplit(value).netloc or None
    return None


def cross_site_refusal(scope: Scope, cookie_name: str) -> Forbidden | None:
    """Forbidden for a state-changing request to a page, or to the API with the workspace cookie,
    that did not come from one of this site's pages."""
    if scope["method"] in SAFE_METHODS:
        return None
    headers = Headers(scope=scope)
    page = not scope["path"].startswith("/api/")
    if "authorization" in headers or not (page or f"{cookie_name}=" in headers.get("cookie", "")):
        return None
    source, host = _source_host(headers), headers.get("host")
    if source is not None and source == host:
        return None
    return Forbidden("This request was refused: it changes your workspace but did not come from one of "
                     "LayerLab's own pages (its Origin header names another site, or is missing). "
                     "Reload the page and try again; scripts should use a bearer token instead.")


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, cookie_name: str):
        self.app = app
        self.cookie_name = cookie_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        refusal = cross_site_refusal(scope, self.cookie_name)
        if refusal is not None:
            response = error_response(Request(scope, receive), refusal)
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
