"""Bringing a model in: a `.keras` file or a Keras JSON config becomes an editable LayerLab model."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["import"])
