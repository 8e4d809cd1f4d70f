"""Server-rendered SVG of what training recorded inside a model (app.core.internals): one ridgeline of
histograms per layer and quantity, and the gradient norms through the layers.

Every number comes from the run's internals.json, written by our own worker; names pass through escape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

from app.core.palette import PALETTE

MAX_RIDGES = 8     # histograms drawn at most per ridgeline: the first, the last and evenly between
RIDGE_HEIGHT = 16  # pixels between two ridges; each may rise 1.8 times that, over the one behind it


def thinned(records: Sequence[Mapping[str, Any]], most: int = MAX_RIDGES) -> list[Mapping[str, Any]]:
    """At most `most` records, always the first and the last, the others evenly spread."""
    if len(records) <= most:
        return list(records)
    picks = sorted({round(i * (len(records) - 1) / (most - 1)) for i in range(most)})
    return [records[i] for i in picks]


def ridgeline(records: Sequence[Mapping[str, Any]], layer_id: str, quantity: str, label: str,
              width: int = 220) -> Markup:
    """One histogram of `quantity` ("weights" or "activations") per record, the earliest at the top, all on
    one x axis from the smallest to the largest value recorded; each is scaled to its own tallest bin."""
    rows = [(int(r["epoch"]), r["layers"][layer_id][quantity]) for r in thinned(records)
            if quantity in r.get("layers", {}).get(layer_id, {})]
    if not rows:
        return Markup("")
    low = min(float(h["low"]) for _, h in rows)
    high = max(float(h["high"]) for _, h in rows)
    span = (high - low) or 1.0
    left, right, top = 34, 8, 6
    plot = width - left - right
    height = top + RIDGE_HEIGHT * (len(rows) + 1) + 16
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="ridgeline" '
             f'role="img" aria-label="{escape(label)}">']
    for index, (epoch, hist) in enumerate(rows):
        base = top + RIDGE_HEIGHT * (index + 1.8)
        counts = hist["counts"]
        tallest = max(counts) or 1
        bin_low, bin_high = float(hist["low"]), float(hist["high"])
        if bin_high <= bin_low:  # a constant: one narrow spike
            bin_low, bin_high = bin_low - span / 200, bin_low + span / 200
        step = (bin_high - bin_low) / len(counts)
        points = [f"{left + (bin_low - low) / span * plot:.1f},{base:.1f}"]
        for i, count in enumerate(counts):
            x0 = left + (bin_low + i * step - low) / span * plot
            x1 = left + (bin_low + (i + 1) * step - low) / span * plot
            y = base - 1.8 * RIDGE_HEIGHT * count / tallest
            points += [f"{x0:.1f},{y:.1f}", f"{x1:.1f},{y:.1f}"]
        points.append(f"{left + (bin_high - low) / span * plot:.1f},{base:.1f}")
        shade = "ridge-last" if index == len(rows) - 1 else "ridge"
        parts.append(f'<polygon points="{" ".join(points)}" class="{shade}">'
                     f'<title>epoch {epoch}: mean {hist.get("mean")}, spread {hist.get("std")}, '
                     f'{bin_low:.3g} to {bin_high:.3g}</title></polygon>'
                     f'<text x="{left - 4}" y="{base:.1f}" class="tick" text-anchor="end">{epoch}</text>')
    axis = height - 4
    parts.append(f'<text x="{left}" y="{axis}" class="tick">{low:.3g}</text>'
                 f'<text x="{width - right}" y="{axis}" class="tick" text-anchor="end">{high:.3g}</text>'
                 f'<text x="2" y="{top + 8}" class="tick">ep.</text>')
    if low < 0 < high:
        zero = left + (0 - low) / span * plot
        parts.append(f'<line x1="{zero:.1f}" y1="{top}" x2="{zero:.1f}" y2="{axis - 10}" class="zero-line"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def gradient_profile(layers: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]],
                     width: int = 560, height: int = 220) -> Markup:
    """The gradient norm of each layer with weights, from the input side (left) to the output (right), on a
    log scale: one line per recorded epoch that has gradients. A line falling steeply to the left is a
    vanishing gradient; rising to the left, an exploding one."""
    weighted = [layer for layer in layers if layer.get("has_weights")]
    lines = []
    for record in records:
        values = [record["layers"].get(layer["id"], {}).get("gradient_norm") for layer in weighted]
        if any(isinstance(v, (int, float)) for v in values):
            lines.append((int(record["epoch"]), values))
    positive = [v for _, values in lines for v in values if isinstance(v, (int, float)) and v > 0]
    if len(weighted) < 2 or not positive:
        return Markup("")
    low, high = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
    high = max(high, low + 1)
    margin_left, margin, bottom = 48, 16, 40
    plot_w, plot_h = width - margin_left - margin, height - margin - bottom

    def sx(i: int) -> float:
        return margin_left + plot_w * (i / max(1, len(weighted) - 1))

    def sy(v: float) -> float:
        return margin + plot_h * (1 - (math.log10(v) - low) / (high - low))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="chart gradient-profile" '
             f'role="img" aria-label="Gradient norm of each layer, input side on the left, log scale">'
             f'<rect x="{margin_left}" y="{margin}" width="{plot_w}" height="{plot_h}" class="plot-area"/>']
    for power in range(low, high + 1):
        y = sy(10.0 ** power)
        parts.append(f'<line x1="{margin_left}" y1="{y:.1f}" x2="{width - margin}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="4" y="{y + 3:.1f}" class="tick">1e{power}</text>')
    for i, layer in enumerate(weighted):
        anchor = "start" if i == 0 else "end" if i == len(weighted) - 1 else "middle"
        parts.append(f'<text x="{sx(i):.1f}" y="{height - bottom + 14}" class="tick" text-anchor="{anchor}">'
                     f'{escape(layer["name"])}</text>')
    for n, (epoch, values) in enumerate(lines):
        colour = PALETTE[n % len(PALETTE)]
        points = [(sx(i), sy(v)) for i, v in enumerate(values) if isinstance(v, (int, float)) and v > 0]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for (x, y), v in zip(points, [v for v in values if isinstance(v, (int, float)) and v > 0], strict=True):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>epoch {epoch}: '
                         f'{v:.3g}</title></circle>')
        left = margin_left + 70 * n
        parts.append(f'<line x1="{left}" y1="{height - 10}" x2="{left + 12}" y2="{height - 10}" stroke="{colour}" '
                     f'stroke-width="3"/><text x="{left + 16}" y="{height - 6}" class="tick">epoch {epoch}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
