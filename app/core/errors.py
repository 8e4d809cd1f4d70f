"""The one kind of error a user sees: what was wrong, and what is allowed instead.

Every layer of LayerLab raises `UserError` (or one of the few subclasses below, which
only say what kind of problem it is). The web layer alone maps the kind to an HTTP
status (app/web/errors.py); workers send errors across their pipe with `to_wire` and
the web process raises them again with `from_wire`, so nothing converts between
error classes anywhere else.
"""

from __future__ import annotations

from typing import Any

MAX_SHOWN_CHARS = 60  # a bad value is quoted in a message up to this many characters


class UserError(ValueError):
    """A problem the user can fix, in words written for people.

    A ValueError, as Keras' own argument errors are, so that pydantic validators report it
    as a validation error of the field.

    `field` names the parameter, setting or form field at fault and `layer_id` the layer,
    so that pages can show the message where the problem is. `details` carries extra
    JSON-safe facts for API clients (for example every issue of a model).
    """

    def __init__(self, message: str, *, field: str | None = None, layer_id: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.layer_id = layer_id
        self.details = details or {}

    def as_dict(self) -> dict[str, Any]:
        """The JSON body of an API error."""
        return {"detail": self.message, "layer_id": self.layer_id, "field": self.field, **self.details}

    def to_wire(self) -> dict[str, Any]:
        """A picklable, JSON-safe form, to send from a worker process."""
        return {"kind": type(self).__name__, "message": self.message, "field": self.field,
                "layer_id": self.layer_id, "details": self.details}

    @staticmethod
    def from_wire(body: dict[str, Any]) -> UserError:
        kind = _KINDS.get(str(body.get("kind")), UserError)
        return kind(str(body.get("message", "")), field=body.get("field"), layer_id=body.get("layer_id"),
                    details=body.get("details") or {})


class NotFound(UserError):
    """The thing asked for does not exist (or belongs to another workspace)."""


class Conflict(UserError):
    """The thing is in a state that does not allow this now."""


class LimitReached(UserError):
    """A limit of the workspace or the server: wait (`retry_after_s` when known), or remove something first."""

    def __init__(self, message: str, *, retry_after_s: int | None = None, **where: Any) -> None:
        super().__init__(message, **where)
        self.retry_after_s = retry_after_s


class TooLarge(UserError):
    """A body or file larger than the server accepts."""


class Unavailable(UserError):
    """The server cannot do this right now (a worker, the network); trying later may work."""


class Unauthorized(UserError):
    """The request does not say who it is from."""


class Forbidden(UserError):
    """The request says who it is from, and that one may not do this."""


_KINDS: dict[str, type[UserError]] = {kind.__name__: kind for kind in (
    UserError, NotFound, Conflict, LimitReached, TooLarge, Unavailable, Unauthorized, Forbidden)}


def shown(value: Any) -> str:
    """A received value as a message quotes it: text in quotes, and never more than a short prefix."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS - 3] + "..."


def invalid_value(name: str, expected: str, received: Any, *, layer_id: str | None = None,
                  received_text: str | None = None) -> UserError:
    """Keras' wording for a bad argument, naming what was expected and what was received.

    `received_text` replaces the quoted value where the caller knows a better way to show it
    (a number typed into a form arrives as text but reads best as the number).
    """
    return UserError(f"Invalid value received for `{name}`. Expected {expected}. "
                     f"Received: {name}={received_text if received_text is not None else shown(received)}",
                     field=name, layer_id=layer_id)
