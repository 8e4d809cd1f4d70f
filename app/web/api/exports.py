"""Leaving with working code: a model or a run as a Keras script or notebook, and the architecture as Keras JSON."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["export"])
