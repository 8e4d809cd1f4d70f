"""One place that turns errors into responses: JSON for the API, HTML for pages."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException

from app.core.errors import Conflict, Forbidden, LimitReached, NotFound, TooLarge, Unauthorized, Unavailable, UserError
from app.web.templating import templates

log = logging.getLogger(__name__)

# The one place that decides which HTTP status each kind of user error gets.
STATUS: dict[type[UserError], int] = {
    Unauthorized: 401, Forbidden: 403, NotFound: 404, Conflict: 409, TooLarge: 413,
    LimitReached: 429, Unavailable: 503,
}


def status_of(error: UserError) -> int:
    """422 for a plain UserError (the request was understood, and something in it is not allowed)."""
    return next((status for kind, status in STATUS.items() if isinstance(error, kind)), 422)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _respond(request: Request, status: int, body: dict[str, object],
             headers: dict[str, str] | None = None) -> Response:
    if _wants_json(request):
        return JSONResponse(body, status_code=status, headers=headers)
    return templates.TemplateResponse(request, "error.html", {"status": status, "message": body["detail"]},
                                      status_code=status, headers=headers)


def error_response(request: Request, error: UserError) -> Response:
    """A user error as the client wants it: JSON under /api, else the error page."""
    retry = getattr(error, "retry_after_s", None)
    return _respond(request, status_of(error), error.as_dict(), {"Retry-After": str(retry)} if retry else None)


def _location(error: Mapping[str, Any]) -> str:
    """Where a request's value was at fault, as the caller named it (`units`, `params.rate`), or '' for the whole."""
    return ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header"))


def _describe_one(error: Mapping[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        position = error.get("loc", ("body", "?"))[-1]
        return (f"The request body is not valid JSON (at character {position}: "
                f"{error.get('ctx', {}).get('error', 'it could not be decoded')}).")
    received = error.get("input")
    if isinstance(received, bytes) and not _location(error):
        return "The request body must be a JSON object, sent with Content-Type: application/json."
    shown = "" if isinstance(received, (dict, bytes)) or received is None else f" Received: {str(received)[:60]!r}"
    return f"Invalid value for `{_location(error) or 'request'}`: {error.get('msg', 'invalid')}.{shown}"


def _describe_validation(faults: Sequence[Mapping[str, Any]]) -> str:
    return " ".join(_describe_one(fault) for fault in faults[:5])


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError) -> Response:
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        # The one error body ({detail, field, layer_id}), with each problem listed when there are several.
        faults = exc.errors()
        errors = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg")} for e in faults[:20]]
        field = next((_location(e) for e in faults if e.get("type") != "json_invalid"), "") or None
        return _respond(request, 422, {"detail": _describe_validation(faults), "field": field, "layer_id": None,
                                       "errors": errors})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"There is nothing at {request.url.path}."
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}."
        return _respond(request, exc.status_code, {"detail": detail})

    @app.exception_handler(OperationalError)
    @app.exception_handler(SQLAlchemyTimeoutError)
    async def database_unavailable(request: Request, exc: Exception) -> Response:
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return error_response(request, Unavailable(
            "The database is busy or unavailable right now, so nothing was changed. Try again in a moment."))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _respond(request, 500, {"detail": "Something went wrong on the server; the error was logged."})
