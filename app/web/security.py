"""Protection every response gets: security headers, and a refusal of cross-site requests.

A browser sends the session cookie with any request to this site, also with a form that
another site submits (SameSite=Lax still allows top-level POST navigations in some cases,
and always allows requests from sibling sites). So a request that changes something and
relies on the cookie must come from one of this site's own pages: its `Origin` (or, where a
browser leaves that out, its `Referer`) must name this host. On top of that, page forms
carry the session's CSRF token (checked where the form is read, `app/web/pages.read_form`),
and API calls made with the cookie carry it as the `X-CSRF-Token` header (checked here).
Requests with a bearer token carry their own proof and are not checked.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import Forbidden
from app.web.auth import COOKIE_NAME, CSRF_HEADER, LEGACY_COOKIE_NAME, check_csrf
from app.web.errors import error_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Only the app's own scripts, styles and images run or load; nothing inline, nothing from elsewhere.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
                           "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "referrer-policy": "same-origin",
}


def _source_host(headers: Headers) -> str | None:
    """The host a browser says the request comes from: Origin, else Referer."""
    for name in ("origin", "referer"):
        value = headers.get(name)
        if value and value != "null":
            return urlsplit(value).netloc or None
    return None


def uses_cookie(headers: Headers) -> bool:
    cookies = headers.get("cookie", "")
    return f"{COOKIE_NAME}=" in cookies or f"{LEGACY_COOKIE_NAME}=" in cookies


def cross_site_refusal(scope: Scope) -> Forbidden | None:
    """Forbidden for a state-changing request to a page, or to the API with the session cookie,
    that did not come from one of this site's pages."""
    if scope["method"] in SAFE_METHODS:
        return None
    headers = Headers(scope=scope)
    page = not scope["path"].startswith("/api/")
    if "authorization" in headers or not (page or uses_cookie(headers)):
        return None
    source, host = _source_host(headers), headers.get("host")
    if source is not None and source == host:
        return None
    return Forbidden("This request was refused: it changes your workspace but did not come from one of "
                     "LayerLab's own pages (its Origin header names another site, or is missing). "
                     "Reload the page and try again; scripts should use a bearer token instead.")


def _api_change_with_cookie(scope: Scope) -> bool:
    headers = Headers(scope=scope)
    return (scope["method"] not in SAFE_METHODS and scope["path"].startswith("/api/")
            and "authorization" not in headers and uses_cookie(headers))


class SecurityMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

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

        request = Request(scope, receive)
        refusal = cross_site_refusal(scope)
        if refusal is None and _api_change_with_cookie(scope):
            try:
                check_csrf(request, request.headers.get(CSRF_HEADER))
            except Forbidden as exc:
                refusal = exc
        if refusal is not None:
            response = error_response(request, refusal)
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
