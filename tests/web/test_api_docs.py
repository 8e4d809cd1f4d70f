"""The API documentation: every operation has a summary, a description and an example, in both modes."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import Settings
from app.main import create_app


def has_example(node: Any, components: dict[str, Any]) -> bool:
    if isinstance(node, dict):
        if "example" in node or "examples" in node:
            return True
        if "$ref" in node:
            component = components.get(node["$ref"].rsplit("/", 1)[-1], {})
            return "examples" in component or "example" in component
        return any(has_example(value, components) for value in node.values())
    if isinstance(node, list):
        return any(has_example(value, components) for value in node)
    return False


@pytest.mark.parametrize("mode", ["personal", "workshop"])
def test_every_operation_is_documented_with_an_example(tmp_path, mode):
    app = create_app(Settings(data_dir=tmp_path, mode=mode, instructor_password="a long enough password"))
    schema = app.openapi()
    components = schema["components"]["schemas"]
    operations = [(method, path, op) for path, item in schema["paths"].items() for method, op in item.items()]
    assert len(operations) > 50
    assert all(path.startswith("/api/v1/") for _, path, _ in operations)  # pages are not in the API document
    for method, path, operation in operations:
        assert operation.get("summary") and operation.get("description"), (method, path)
        assert has_example(operation, components), (method, path)


def test_operations_that_take_a_token_declare_the_bearer_scheme(tmp_path):
    schema = create_app(Settings(data_dir=tmp_path)).openapi()
    assert schema["components"]["securitySchemes"]["workspaceToken"] == {
        **schema["components"]["securitySchemes"]["workspaceToken"], "type": "http", "scheme": "bearer"}
    operations = [op for item in schema["paths"].values() for op in item.values()]
    with_token = [op for op in operations
                  if any(p["in"] == "header" and p["name"] == "authorization" for p in op.get("parameters", []))]
    assert len(with_token) > 50
    assert all(op["security"] == [{"workspaceToken": []}] for op in with_token)
    assert all("security" not in op for op in operations if op not in with_token)  # e.g. POST /workspaces
