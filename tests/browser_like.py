"""A test client that behaves like a browser on LayerLab's own pages.

It sends the `Origin` a browser sends, keeps the session cookie, and sends the session's
CSRF token with every change, as htmx does: it reads the token from a page's
`<meta name="csrf-token">` (loading the home page once when it has not seen one yet).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

ORIGIN = "http://testserver"
_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


class BrowserLikeClient(TestClient):
    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.headers["Origin"] = ORIGIN
        self._token_for: tuple[str | None, str] | None = None  # (session cookie, token)

    def _csrf(self) -> str | None:
        cookie = self.cookies.get("layerlab_session")
        if cookie is None:
            return None
        if self._token_for is None or self._token_for[0] != cookie:
            found = _META.search(super().request("GET", "/").text)
            self._token_for = (cookie, found.group(1) if found else "")
        return self._token_for[1]

    def request(self, method: str, url: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if method.upper() not in ("GET", "HEAD", "OPTIONS"):
            token = self._csrf()
            if token:
                kwargs["headers"] = {"X-CSRF-Token": token, **(kwargs.get("headers") or {})}
        return super().request(method, url, **kwargs)
