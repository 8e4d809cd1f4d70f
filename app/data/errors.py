"""Errors the data layer raises, each with a message written for the person who sent the data.

Pure Python, so the web process can catch them (or rebuild them from a worker's reply)
without importing numpy. Each carries `field` (which option or column was at fault, if any)
and `status` (the HTTP status a route should answer with).
"""

from __future__ import annotations

from app.core.catalog import ParamError


class DatasetParamError(ParamError):
    """A dataset key, dataset parameter or preparation option that is not allowed."""

    status = 422

    def __init__(self, field: str, message: str):
        super().__init__(field, message)
        self.field = field


class UploadError(ValueError):
    """An uploaded file that cannot be used: says what was wrong and what is allowed."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 422):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


class DatasetUnavailable(RuntimeError):
    """A built-in dataset whose files are neither cached nor downloadable right now."""

    status = 503

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        self.field: str | None = None
