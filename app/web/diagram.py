"""Server-rendered SVG: the network diagram and the activation-curve plots.

Every text that comes from a user goes through `escape`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from app.core.activations import ACTIVATIONS, curve_points
from app.core.catalog import CATALOG
from app.core.shapes import describe

if TYPE_CHECKING:
    from app.services.editing import ModelState

BOX_W, BOX_H, GAP_Y, GAP_X, PAD = 236, 58, 30, 28, 16
MAX_TITLE = 28  # characters that fit in a box at the title's font size


def node_shapes(state: ModelState) -> dict[str, tuple]:
    """Each layer's output shape without the batch axis: Keras' when it built, else inferred."""
    if state.summary:
        return {row["id"]: tuple(row["output_shape"][1:]) for row in state.summary["layers"]}
    return {node_id: shape.output for node_id, shape in state.report.shapes.items()}


def _layout(state: ModelState) -> dict[str, tuple[int, int]]:
    graph = state.graph
    try:
        order = graph.topological_order()
    except ValueError:
        order = list(graph.nodes)
    depth: dict[str, int] = {}
    for node in order:
        depth[node.id] = 1 + max((depth.get(i, 0) for i in node.inputs), default=-1)
    rows: dict[int, list[str]] = {}
    for node in graph.nodes:  # display order decides left-to-right
        rows.setdefault(depth[node.id], []).append(node.id)
    return {node_id: (column, row) for row, ids in rows.items() for column, node_id in enumerate(ids)}


def render_svg(state: ModelState, selected: str | None, select_url: str) -> Markup:
    """The diagram; each box is a link to `select_url?layer=<id>`, so it can be chosen by click or keyboard."""
    graph = state.graph
    if not graph.nodes:
        return Markup('<p class="muted">The diagram appears once the model has layers.</p>')
    positions = _layout(state)
    shapes = node_shapes(state)
    columns = max(c for c, _ in positions.values()) + 1
    rows = max(r for _, r in positions.values()) + 1
    width = PAD * 2 + columns * BOX_W + (columns - 1) * GAP_X
    height = PAD * 2 + rows * BOX_H + (rows - 1) * GAP_Y
    largest = max((math.prod(s) for s in shapes.values() if s), default=1)
    severity = {i.layer_id: i.severity for i in state.issues if i.layer_id and i.severity == "error"}
    severity.update({i.layer_id: "warning" for i in state.issues
                     if i.layer_id and i.severity == "warning" and i.layer_id not in severity})

    def corner(node_id: str) -> tuple[int, int]:
        column, row = positions[node_id]
        return PAD + column * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-labelledby="diagram-title" class="diagram">',
             '<title id="diagram-title">Network diagram: each box is a layer with its output shape</title>',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
             'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
             'class="arrow-head"/></marker></defs>']
    for node in graph.nodes:
        x2, y2 = corner(node.id)
        for input_id in node.inputs:
            if input_id not in positions:
                continue
            x1, y1 = corner(input_id)
            parts.append(f'<path class="edge" d="M {x1 + BOX_W / 2} {y1 + BOX_H} C {x1 + BOX_W / 2} '
                         f'{y1 + BOX_H + GAP_Y / 2}, {x2 + BOX_W / 2} {y2 - GAP_Y / 2}, {x2 + BOX_W / 2} '
                         f'{y2 - 2}" marker-end="url(#arrow)"/>')
    for node in graph.nodes:
        x, y = corner(node.id)
        shape = shapes.get(node.id)
        classes = ["layer-box", f"cat-{CATALOG[node.type].category.lower()}"]
        if node.id == selected:
            classes.append("selected")
        if node.id in severity:
            classes.append(severity[node.id])
        shape_label = describe(shape) if shape else "shape unknown"
        title = node.name if len(node.name) <= MAX_TITLE else node.name[:MAX_TITLE - 1] + "…"
        type_label = f" {node.type}" if len(title) + len(node.type) < MAX_TITLE else ""
        bar = 0 if not shape else max(6, (BOX_W - 24) * math.log1p(math.prod(shape)) / math.log1p(largest))
        parts.append(
            f'<a href="{escape(select_url)}?layer={escape(node.id)}" class="layer-link" '
            f'aria-label="{escape(node.name)}, {node.type}, output {escape(shape_label)}: select">'
            f'<g class="{" ".join(classes)}" data-layer-id="{escape(node.id)}">'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8"/>'
            f'<text x="{x + 12}" y="{y + 20}" class="box-title"><title>{escape(node.name)} ({node.type})</title>'
            f'{escape(title)}<tspan class="box-type">{escape(type_label)}</tspan></text>'
            f'<text x="{x + 12}" y="{y + 38}" class="box-shape">{escape(shape_label)}</text>'
            f'<rect x="{x + 12}" y="{y + 45}" width="{bar:.1f}" height="5" rx="2" class="size-bar">'
            f'<title>{math.prod(shape) if shape else 0:,} values per sample</title></rect></g></a>')
    parts.append("</svg>")
    return Markup("".join(parts))


def activation_plot_svg(name: str, width: int = 160, height: int = 96) -> Markup:
    """A small plot of an activation function over -5..5."""
    if name not in ACTIVATIONS:
        return Markup("")
    points = curve_points(name)
    ys = [y for _, y in points]
    lo, hi = min(min(ys), -1.0), max(max(ys), 1.0)
    margin = 6

    def sx(x: float) -> float:
        return margin + (x + 5) / 10 * (width - 2 * margin)

    def sy(y: float) -> float:
        return height - margin - (y - lo) / (hi - lo) * (height - 2 * margin)

    path = " ".join(f"{'M' if k == 0 else 'L'} {sx(x):.1f} {sy(y):.1f}" for k, (x, y) in enumerate(points))
    label: Any = escape(name)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" class="activation-plot" role="img" aria-label="Plot of {label} from -5 to 5">'
        f'<line x1="{margin}" y1="{sy(0):.1f}" x2="{width - margin}" y2="{sy(0):.1f}" class="axis"/>'
        f'<line x1="{sx(0):.1f}" y1="{margin}" x2="{sx(0):.1f}" y2="{height - margin}" class="axis"/>'
        f'<path d="{path}" class="curve"/>'
        f'<text x="{width - margin}" y="{height - margin - 2}" text-anchor="end" class="plot-label">{label}</text>'
        "</svg>")
