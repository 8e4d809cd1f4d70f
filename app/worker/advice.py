"""Turn Keras' error messages into plain advice at the layer at fault."""

from __future__ import annotations

import re

from app.core.graph import Node
from app.core.shapes import format_shape

_NDIM = re.compile(r"expected (min_)?ndim=(\d+), found ndim=(\d+)")


def explain_keras_error(node: Node, input_shapes: list[tuple], exc: Exception) -> str:
    text = str(exc)
    got = " and ".join(format_shape(s) for s in input_shapes) or "no input"
    match = _NDIM.search(text)
    if match:
        at_least, expected, found = match.group(1), match.group(2), match.group(3)
        need = f"at least a {expected}-D" if at_least else f"a {expected}-D"
        fix = (f"Keep {node.type} before any Flatten layer (Flatten turns each sample into one row), "
               "or add a Reshape layer before it." if int(expected) > int(found)
               else "Add a Flatten layer before it.")
        return f"{node.type} expects {need} input but got a {found}-D input {got}. {fix}"
    if "negative" in text.lower() and "dimension" in text.lower():
        return (f"{node.type}'s window is larger than its input {got}, so no output is left. "
                "Use a smaller kernel or pool size, or padding 'same'.")
    if node.type in ("Add", "Concatenate") and ("shape" in text.lower()):
        return f"{node.type} cannot join inputs of shapes {got}. Make the layers feeding it produce matching shapes."
    first_line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"Keras could not build {node.type} with input {got}: {first_line[:300]}"
