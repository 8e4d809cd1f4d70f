"""Errors shown to users: each carries an HTTP status and a message written for people."""

from __future__ import annotations


class PublicError(Exception):
    status = 400

    def __init__(self, message: str, *, layer_id: str | None = None, field: str | None = None,
                 status: int | None = None, extra: dict[str, object] | None = None):
        super().__init__(message)
        self.message = message
        self.layer_id = layer_id
        self.field = field
        self.extra = extra or {}
        if status is not None:
            self.status = status

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"detail": self.message, "layer_id": self.layer_id, "field": self.field}
        body.update(self.extra)
        return body


class NotFound(PublicError):
    status = 404


class Unauthorized(PublicError):
    status = 401


class Conflict(PublicError):
    status = 409


class InvalidInput(PublicError):
    status = 422


class Unavailable(PublicError):
    status = 503
