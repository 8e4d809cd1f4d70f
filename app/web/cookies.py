"""Sets the session cookie that a request started (`request.state.new_session_cookie`) on the way out,
or removes it when the request ended the session (`request.state.session_ended`)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web.auth import COOKIE_NAME, LEGACY_COOKIE_NAME

# The browser keeps the cookie as long as it allows (about 400 days); the server decides how long the
# session it names stays valid (LAYERLAB_SESSION_DAYS after its last use).
COOKIE_MAX_AGE = 400 * 24 * 3600


class SessionCookieMiddleware:
    def __init__(self, app: ASGIApp, secure: bool = False):
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        flags = "; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if self.secure else "")

        async def send_with_cookie(message: Message) -> None:
            secret = state.get("new_session_cookie")
            if message["type"] == "http.response.start" and secret:
                headers = MutableHeaders(scope=message)
                headers.append("set-cookie", f"{COOKIE_NAME}={secret}; Max-Age={COOKIE_MAX_AGE}{flags}")
                headers.append("set-cookie", f"{LEGACY_COOKIE_NAME}=; Max-Age=0{flags}")
            elif message["type"] == "http.response.start" and state.get("session_ended"):
                MutableHeaders(scope=message).append("set-cookie", f"{COOKIE_NAME}=; Max-Age=0{flags}")
            await send(message)

        await self.app(scope, receive, send_with_cookie)
