"""Bounds every request body while it arrives: uploads by the upload limit, everything else by the
body limit, and JSON by its nesting depth, so that no request can make the server read or parse
more than it allows. Refused with 413 (too large) or 422 (too deep), with or without Content-Length.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import TooLarge, UserError
from app.core.text import byte_size
from app.web.errors import error_response

UPLOAD_PATH_SUFFIX = "/upload"
UPLOAD_PATHS = frozenset({"/api/v1/models/import"})  # uploads whose path does not end in /upload
MAX_JSON_DEPTH = 32  # LayerLab's own bodies nest 4 deep; deeper ones are refused before parsing
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class BodyTooLarge(Exception):
    pass


def json_depth(body: bytes) -> int:
    """How deep arrays and objects nest, strings skipped; a linear scan, no parsing."""
    depth = deepest = 0
    for token in _JSON_TOKENS.finditer(body):
        first = token.group()[0]
        if first in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif first in b"]}":
            depth -= 1
    return deepest


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_upload_bytes: int, max_body_bytes: int):
        self.app = app
        self.max_upload_bytes = max_upload_bytes
        self.max_body_bytes = max_body_bytes

    def _too_large(self, scope: Scope, limit: int) -> UserError:
        if scope["path"].endswith(UPLOAD_PATH_SUFFIX):
            return TooLarge(f"The upload is larger than {byte_size(limit)}, the most this server accepts "
                            "(LAYERLAB_MAX_UPLOAD_BYTES).", field="file")
        return TooLarge(f"The request body is larger than {byte_size(limit)}, the most this server accepts "
                        "for anything but an upload (LAYERLAB_MAX_BODY_BYTES).")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_upload = scope["path"].endswith(UPLOAD_PATH_SUFFIX) or scope["path"] in UPLOAD_PATHS
        limit = self.max_upload_bytes if is_upload else self.max_body_bytes
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await error_response(Request(scope), self._too_large(scope, limit))(scope, receive, send)
            return
        if headers.get(b"content-type", b"").startswith(b"application/json"):
            await self._json(scope, receive, send, limit)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await error_response(Request(scope), self._too_large(scope, limit))(scope, receive, send)

    async def _json(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Read a JSON body whole (it is small), check its size and depth, then hand it on."""
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await error_response(Request(scope), self._too_large(scope, limit))(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if json_depth(body) > MAX_JSON_DEPTH:
            error = UserError(f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels; LayerLab's requests "
                              "need a few. Send a flatter body.")
            await error_response(Request(scope), error)(scope, receive, send)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()  # after the body: a disconnect, when it comes
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
