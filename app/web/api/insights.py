"""Error analysis of a run: the test samples behind each confusion-matrix cell, the largest errors,
and one sample's prediction."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["error analysis"])
