"""Request bodies and response shapes of the JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkspaceCreated(BaseModel):
    workspace_id: str
    token: str


class ModelCreate(Strict):
    name: str = Field("Untitled model", description="1 to 64 letters, digits, spaces or _ . - ( )")
    starter: str = Field("blank", description="One of the keys from GET /api/v1/starters.")


class ModelRename(Strict):
    name: str


class ModelDuplicate(Strict):
    name: str | None = None


class LayerCreate(Strict):
    type: str = Field(description="A layer type from GET /api/v1/catalog.")
    params: dict[str, Any] = Field(default_factory=dict)
    name: str | None = None
    after: str | None = Field(None, description="Insert after this layer id (default: the last layer).")
    inputs: list[str] | None = Field(None, description="Wire to exactly these layer ids (branches and merges).")


class LayerUpdate(Strict):
    params: dict[str, Any] = Field(default_factory=dict)
    name: str | None = None


class LayerMove(Strict):
    direction: Literal["up", "down"] | None = None
    position: int | None = Field(None, description="New index in the layer list (drag and drop).")


class LayerRewire(Strict):
    inputs: list[str]


class NodeOut(BaseModel):
    id: str
    type: str
    name: str
    params: dict[str, Any]
    inputs: list[str]


class ModelOut(BaseModel):
    id: int
    name: str
    revision: int
    created_at: datetime
    updated_at: datetime
    layers: list[NodeOut]
    validation: dict[str, Any]


class ModelListItem(BaseModel):
    id: int
    name: str
    layer_count: int
    updated_at: datetime
