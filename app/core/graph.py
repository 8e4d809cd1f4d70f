"""The model graph: a DAG of layer nodes, and the edits a user can make to it.

Every edit is a pure function that takes a Graph and returns a new one, or raises
UserError naming the layer and the parameter at fault. The stored graph is only
replaced once an edit has succeeded, so a refused edit changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from app.core.catalog import CATALOG, coerce_params, get_layer_type
from app.core.errors import NotFound, UserError, invalid_value, shown

MAX_NODES = 200
NAME_PATTERN = re.compile(r"^[\w][\w .\-()]{0,63}$")
NAME_RULE = "1 to 64 letters, digits, spaces or _ . - ( ), starting with a letter or digit"


class Node(BaseModel):
    id: str
    type: str
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: list[str] = Field(default_factory=list)

    def full_params(self) -> dict[str, Any]:
        """Its parameters, with the default of each one the catalog added after the layer was stored."""
        layer_type = CATALOG.get(self.type)
        return {**(layer_type.defaults() if layer_type else {}), **self.params}


class Graph(BaseModel):
    """Nodes in display order; `inputs` carries the wiring."""

    nodes: list[Node] = Field(default_factory=list)
    next_id: int = 1

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise NotFound(f"There is no layer with id {shown(node_id)} in this model.", layer_id=node_id)

    def consumers(self, node_id: str) -> list[Node]:
        return [n for n in self.nodes if node_id in n.inputs]

    def outputs(self) -> list[Node]:
        used = {i for n in self.nodes for i in n.inputs}
        return [n for n in self.nodes if n.id not in used]

    def topological_order(self) -> list[Node]:
        """Nodes so that each comes after its inputs; raises UserError on a cycle."""
        by_id = {n.id: n for n in self.nodes}
        state: dict[str, int] = {}
        ordered: list[Node] = []

        def visit(node: Node, trail: list[str]) -> None:
            mark = state.get(node.id)
            if mark == 2:
                return
            if mark == 1:
                loop = trail[trail.index(node.id):] + [node.id]
                names = " -> ".join(by_id[i].name for i in loop)
                raise UserError(f"The wiring makes a loop ({names}); a network must flow "
                                "from its input to its output without cycles.", layer_id=node.id)
            state[node.id] = 1
            for input_id in node.inputs:
                if input_id in by_id:
                    visit(by_id[input_id], trail + [node.id])
            state[node.id] = 2
            ordered.append(node)

        for node in self.nodes:
            visit(node, [])
        return ordered

    def copy_deep(self) -> Graph:
        return self.model_copy(deep=True)


def snake_case(type_name: str) -> str:
    """Keras' naming: MaxPooling2D -> max_pooling2d, LSTM -> lstm."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", type_name).lower()


def default_name(graph: Graph, type_name: str) -> str:
    base = snake_case(type_name)
    taken = {n.name for n in graph.nodes}
    if base not in taken:
        return base
    index = 1
    while f"{base}_{index}" in taken:
        index += 1
    return f"{base}_{index}"


def check_name(graph: Graph, name: str, node_id: str | None = None) -> str:
    try:
        name = check_model_name(name)
    except UserError as exc:
        exc.layer_id = node_id
        raise
    if any(n.name == name and n.id != node_id for n in graph.nodes):
        raise UserError(f"Another layer is already named {name!r}; layer names must be unique.",
                        layer_id=node_id, field="name")
    return name


def _params_for(type_name: str, values: dict[str, Any] | None, node_id: str | None) -> dict[str, Any]:
    try:
        layer_type = get_layer_type(type_name)
        params = layer_type.defaults()
        params.update(coerce_params(layer_type, values or {}))
    except UserError as exc:
        exc.layer_id = node_id
        raise
    return params


def _check_input_count(graph: Graph, node: Node) -> None:
    layer_type = CATALOG[node.type]
    for input_id in node.inputs:
        graph.node(input_id)  # raises for an unknown id
    if len(set(node.inputs)) != len(node.inputs):
        raise UserError(f"{node.name} lists the same input twice.", layer_id=node.id, field="inputs")
    count = len(node.inputs)
    if layer_type.is_input and count:
        raise UserError("An Input layer cannot take inputs: it is where data enters.",
                        layer_id=node.id, field="inputs")
    if layer_type.is_merge and count < layer_type.min_inputs:
        raise UserError(f"{node.type} joins two or more layers; it received {count}. Choose at "
                        "least two layers for its inputs.", layer_id=node.id, field="inputs")
    if layer_type.is_merge and layer_type.max_inputs is not None and count > layer_type.max_inputs:
        raise UserError(f"{node.type} joins exactly {layer_type.max_inputs} layers; it received {count}.",
                        layer_id=node.id, field="inputs")
    if layer_type.takes_several and not layer_type.is_merge and not 1 <= count <= (layer_type.max_inputs or count):
        raise UserError(f"{node.type} takes 1 to {layer_type.max_inputs} inputs; it received {count}.",
                        layer_id=node.id, field="inputs")
    if not layer_type.is_input and not layer_type.takes_several and count != 1:
        raise UserError(f"{node.type} takes exactly one input; it received {count}.",
                        layer_id=node.id, field="inputs")


def add_layer(graph: Graph, type_name: str, params: dict[str, Any] | None = None,
              name: str | None = None, after: str | None = None,
              inputs: list[str] | None = None) -> tuple[Graph, str]:
    """Add a layer and return the new graph and the new layer's id.

    With `inputs`, the layer is wired to exactly those layers (a branch or a merge).
    Otherwise it is inserted after `after` (default: the last output), and the layers
    that used `after` now use the new layer, so a plain stack needs no wiring.
    """
    if len(graph.nodes) >= MAX_NODES:
        raise UserError(f"A model can have at most {MAX_NODES} layers.", field="type")
    new = graph.copy_deep()
    node_id = f"n{new.next_id}"
    layer_type_params = _params_for(type_name, params, None)
    layer_type = CATALOG[type_name]
    node = Node(id=node_id, type=type_name, params=layer_type_params,
                name=check_name(new, name) if name else default_name(new, type_name))

    if layer_type.is_input:
        if inputs:
            raise UserError("An Input layer cannot take inputs: it is where data enters.",
                            field="inputs")
        # Layers left without an input (after the old Input was removed) read from the new one.
        for orphan in new.nodes:
            if not orphan.inputs and not CATALOG[orphan.type].is_input and not CATALOG[orphan.type].is_merge:
                orphan.inputs = [node_id]
        new.nodes.insert(0, node)
    elif inputs is not None:
        node.inputs = list(inputs)
        _check_input_count(new, node)
        new.nodes.append(node)
    else:
        anchor = new.node(after) if after else _last_output(new)
        if anchor is None:
            raise UserError(f"Add an Input layer first: {type_name} needs a layer to read from.",
                            field="type")
        if layer_type.is_merge:
            raise UserError(f"{type_name} joins two or more layers: choose its inputs.",
                            field="inputs")
        for consumer in new.consumers(anchor.id):
            consumer.inputs = [node_id if i == anchor.id else i for i in consumer.inputs]
        node.inputs = [anchor.id]
        new.nodes.insert(new.nodes.index(anchor) + 1, node)
    new.next_id += 1
    new.topological_order()
    return new, node_id


def _last_output(graph: Graph) -> Node | None:
    outputs = graph.outputs()
    return outputs[-1] if outputs else None


def update_layer(graph: Graph, node_id: str, params: dict[str, Any] | None = None,
                 name: str | None = None) -> Graph:
    new = graph.copy_deep()
    node = new.node(node_id)
    try:
        changes = coerce_params(get_layer_type(node.type), params or {})
    except UserError as exc:
        exc.layer_id = node_id
        raise
    node.params.update(changes)
    if name is not None:
        node.name = check_name(new, name, node_id)
    return new


def remove_layer(graph: Graph, node_id: str) -> Graph:
    """Remove a layer; its consumers are reconnected to its input when it had one."""
    new = graph.copy_deep()
    node = new.node(node_id)
    for consumer in new.consumers(node_id):
        replaced: list[str] = []
        for i in consumer.inputs:
            if i != node_id:
                replaced.append(i)
            elif len(node.inputs) == 1 and node.inputs[0] not in consumer.inputs:
                replaced.append(node.inputs[0])
        consumer.inputs = replaced
    new.nodes = [n for n in new.nodes if n.id != node_id]
    return new


def move_layer(graph: Graph, node_id: str, direction: str) -> Graph:
    """Swap a layer with the one before ("up") or after ("down") it in its chain."""
    if direction not in ("up", "down"):
        raise invalid_value("direction", "up or down", direction, layer_id=node_id)
    new = graph.copy_deep()
    node = new.node(node_id)
    if direction == "down":
        consumers = new.consumers(node_id)
        if len(consumers) != 1:
            raise UserError(f"{node.name} is already last in its chain." if not consumers else
                            f"{node.name} feeds several layers, so it has no single layer to swap with.",
                            layer_id=node_id)
        return move_layer(new, consumers[0].id, "up")
    if len(node.inputs) != 1:
        raise UserError(f"{node.name} has no single layer before it to swap with.", layer_id=node_id)
    before = new.node(node.inputs[0])
    if CATALOG[before.type].is_input:
        raise UserError(f"{node.name} is already first after the Input layer.", layer_id=node_id)
    if CATALOG[node.type].is_input or len(before.inputs) != 1 or len(new.consumers(before.id)) != 1:
        raise UserError(f"{before.name} joins or splits branches; rewire the inputs instead of moving.",
                        layer_id=node_id)
    for consumer in new.consumers(node_id):
        consumer.inputs = [before.id if i == node_id else i for i in consumer.inputs]
    node.inputs, before.inputs = list(before.inputs), [node_id]
    order = new.nodes
    a, b = order.index(before), order.index(node)
    order[a], order[b] = order[b], order[a]
    return new


def move_layer_to(graph: Graph, node_id: str, position: int) -> Graph:
    """Move a layer to a position in the display order by repeated swaps (drag and drop)."""
    new = graph
    current = [n.id for n in new.nodes].index(new.node(node_id).id)
    if not 0 <= position < len(new.nodes):
        raise invalid_value("position", f"0 to {len(new.nodes) - 1}", position, layer_id=node_id)
    while current != position:
        direction = "up" if position < current else "down"
        new = move_layer(new, node_id, direction)
        current = [n.id for n in new.nodes].index(node_id)
    return new


def rewire_layer(graph: Graph, node_id: str, inputs: list[str]) -> Graph:
    new = graph.copy_deep()
    node = new.node(node_id)
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        raise invalid_value("inputs", "a list of layer ids", inputs, layer_id=node_id)
    node.inputs = list(inputs)
    _check_input_count(new, node)
    if node_id in inputs:
        raise UserError(f"{node.name} cannot take its own output as input.", layer_id=node_id,
                        field="inputs")
    new.topological_order()
    return new


def graph_from_layers(layers: list[tuple[str, dict[str, Any]]]) -> Graph:
    """Build a plain stack from (type, params) pairs; used for starter models."""
    graph = Graph()
    for type_name, params in layers:
        graph, _ = add_layer(graph, type_name, params)
    return graph


def check_model_name(name: str) -> str:
    """The naming rule shared by models and layers."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name.strip()):
        raise invalid_value("name", NAME_RULE, name)
    return name.strip()
