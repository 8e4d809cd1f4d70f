"""The catalog of layer types, activations, initializers and starters."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.core.activations import ACTIVATIONS
from app.core.catalog import LAYER_TYPES
from app.core.initializers import INITIALIZERS
from app.core.starters import STARTERS

router = APIRouter(tags=["catalog"])


@router.get("/catalog")
def get_catalog() -> dict[str, Any]:
    """Every layer type with its parameters (type, default, bounds, help), for building forms."""
    return {
        "layers": [t.as_dict() for t in LAYER_TYPES],
        "activations": [{"name": a.name, "note": a.note} for a in ACTIVATIONS.values()],
        "initializers": [{"name": name, "note": note} for name, note in INITIALIZERS.items()],
    }


@router.get("/starters")
def list_starters() -> list[dict[str, Any]]:
    """Starter models: each key, title, description and its layer types, for POST /api/v1/models."""
    return [{"key": s.key, "title": s.title, "description": s.description,
             "layers": [t for t, _ in s.layers]} for s in STARTERS.values()]
