"""The OpenAPI document: FastAPI's, with an example for every operation.

Request bodies carry their examples on their models (`app/web/api/schemas.py`); path and query
parameters get theirs here by name, and the few operations with neither show an example answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PARAMETER_EXAMPLES: dict[str, Any] = {
    "layer_id": "n2", "ids": "3,5", "sort": "-test", "state": "completed", "key": "overfitting", "format": "keras",
    "text": True, "after": 0, "follow": True, "authorization": "Bearer <token from POST /api/v1/workspaces>",
    "last-event-id": "120", "code": "KQ7M4XTP",
}
ANSWER_EXAMPLES: dict[tuple[str, str], Any] = {
    ("get", "/api/v1/catalog"): {"Dense": {"params": [{"name": "units", "kind": "int", "default": 64}]}},
    ("get", "/api/v1/starters"): [{"key": "convnet", "title": "Convnet", "layers": ["Input", "Conv2D", "Dense"]}],
    ("get", "/api/v1/models"): [{"id": 1, "name": "Convnet", "layer_count": 9,
                                 "updated_at": "2026-12-01T09:00:00Z"}],
    ("get", "/api/v1/datasets"): [{"id": 3, "name": "Digits (8x8)", "source": "builtin", "state": "ready",
                                   "split_sizes": {"train": 1257, "val": 270, "test": 270}}],
    ("get", "/api/v1/datasets/builtin"): {"datasets": [{"key": "digits", "title": "Digits (8x8)"}]},
    ("get", "/api/v1/training-settings"): [{"name": "epochs", "default": 10, "allowed": "1 to 1000"}],
    ("post", "/api/v1/workspaces"): {"workspace_id": "Zq3...", "token": "k7P...", "expires_in_days": 30},
    ("get", "/api/v1/me"): {"role": "participant", "workshop_id": 1, "display_name": "Ada", "read_only": False},
    ("get", "/api/v1/workshops"): [{"id": 1, "name": "Friday group", "join_code": "KQ7M4XTP", "state": "open"}],
    ("get", "/api/v1/runs/{run_id}/internals"): {
        "run_id": 1, "version": 1, "bins": 30, "probe": {"split": "validation", "samples": 64},
        "layers": [{"id": "n2", "name": "dense", "type": "Dense", "activation": "relu", "watch": "dead",
                    "hidden": True, "has_weights": True, "output_shape": [64]}],
        "records": [{"epoch": 0, "layers": {"n2": {
            "weights": {"low": -0.3, "high": 0.3, "counts": [4, 9, 12], "mean": 0.0, "std": 0.15, "nonfinite": 0},
            "activations": {"low": 0.0, "high": 2.1, "counts": [40, 12, 3], "mean": 0.4, "std": 0.5,
                            "nonfinite": 0},
            "gradient_norm": 0.21, "dead": 0.03}}}],
        "findings": [], "snapshot_epochs": []},
}


# How the API is called: the bearer token of a workspace (or a workshop's member or instructor). Swagger UI sends
# no Authorization header declared as a parameter; declared as a scheme, its Authorize button sends it.
TOKEN_SCHEME = "workspaceToken"
SECURITY_SCHEMES = {TOKEN_SCHEME: {
    "type": "http", "scheme": "bearer",
    "description": "The token from POST /api/v1/workspaces (a workshop's: POST /api/v1/workshops/join, or "
                   "POST /api/v1/instructor/session). Pages in this browser use the workspace's cookie instead.",
}}

# Every refusal, a 422 included, has this body (`UserError.as_dict`), not FastAPI's list of validation errors.
ERROR_SCHEMA = {
    "title": "Error", "type": "object", "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "What was wrong, and what is allowed instead."},
        "field": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "The field at fault."},
        "layer_id": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "The layer at fault."},
        "errors": {"type": "array", "description": "When a request body or query has several faults: each one, "
                   "with its location (`body.params.units`) and message.",
                   "items": {"type": "object", "properties": {"field": {"type": "string"},
                                                              "message": {"type": "string"}}}},
    },
    "example": {"detail": "Invalid value received for `units`. Expected an integer from 1 to 100000. Received: "
                          "units=0", "field": "units", "layer_id": "n3"},
}


def documented_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            for path, item in schema.get("paths", {}).items():
                for method, operation in item.items():
                    _add_examples(method, path, operation)
                    if any(p["in"] == "header" and p["name"].lower() == "authorization"
                           for p in operation.get("parameters", [])):
                        operation["security"] = [{TOKEN_SCHEME: []}]
            schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            components = schema.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in components:
                components["HTTPValidationError"] = ERROR_SCHEMA
                components.pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    return build


def _add_examples(method: str, path: str, operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        if "example" in parameter or "examples" in parameter:
            continue
        name = parameter["name"].lower()
        example = PARAMETER_EXAMPLES.get(name, 1 if name.endswith("_id") else None)
        if example is not None:
            parameter["example"] = example
    answer = ANSWER_EXAMPLES.get((method, path))
    if answer is not None:
        for response in operation.get("responses", {}).values():
            content = response.get("content", {}).get("application/json")
            if content is not None:
                content["example"] = answer
                break
