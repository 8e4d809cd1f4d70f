"""Pages for data and training: dataset choice and preview, run settings, live run page."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
