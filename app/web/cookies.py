"""Sets the workspace cookie chosen by `page_workspace` on the way out."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web.deps import COOKIE_MAX_AGE, COOKIE_NAME


class WorkspaceCookieMiddleware:
    def __init__(self, app: ASGIApp, secure: bool = False):
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_cookie(message: Message) -> None:
            value = state.get("new_workspace_cookie")
            if message["type"] == "http.response.start" and value:
                cookie = (f"{COOKIE_NAME}={value}; Path=/; Max-Age={COOKIE_MAX_AGE}; "
                          "HttpOnly; SameSite=Lax")
                MutableHeaders(scope=message).append("set-cookie", cookie + ("; Secure" if self.secure else ""))
            await send(message)

        await self.app(scope, receive, send_with_cookie)
