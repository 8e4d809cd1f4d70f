"""Server-rendered SVG charts for previews and evaluations (no JavaScript needed).

Numbers come from our own workers; labels pass through `escape`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

from app.core.palette import LIGHT, PALETTE


def colour(index: int, light: bool = False) -> str:
    return (LIGHT if light else PALETTE)[int(index) % len(PALETTE)]


class _Frame:
    """Maps data coordinates into an SVG box with a margin."""

    def __init__(self, xs: Sequence[float], ys: Sequence[float], width: int, height: int, margin: int = 28):
        self.width, self.height, self.margin = width, height, margin
        self.x0, self.x1 = min(xs), max(xs)
        self.y0, self.y1 = min(ys), max(ys)
        if self.x1 == self.x0:
            self.x1 = self.x0 + 1
        if self.y1 == self.y0:
            self.y1 = self.y0 + 1

    def sx(self, x: float) -> float:
        return self.margin + (x - self.x0) / (self.x1 - self.x0) * (self.width - 2 * self.margin)

    def sy(self, y: float) -> float:
        return self.height - self.margin - (y - self.y0) / (self.y1 - self.y0) * (self.height - 2 * self.margin)

    def open(self, label: str) -> str:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.width} {self.height}" '
                f'class="chart" role="img" aria-label="{escape(label)}">'
                f'<rect x="{self.margin}" y="{self.margin}" width="{self.width - 2 * self.margin}" '
                f'height="{self.height - 2 * self.margin}" class="plot-area"/>')

    def axes_labels(self, x_label: str, y_label: str) -> str:
        m = self.margin
        return (f'<text x="{m}" y="{self.height - 8}" class="tick">{self.x0:.3g}</text>'
                f'<text x="{self.width - m}" y="{self.height - 8}" class="tick" text-anchor="end">{self.x1:.3g}</text>'
                f'<text x="{self.width / 2}" y="{self.height - 8}" class="axis-label" text-anchor="middle">'
                f'{escape(x_label)}</text>'
                f'<text x="4" y="{m + 4}" class="tick">{self.y1:.3g}</text>'
                f'<text x="4" y="{self.height - m}" class="tick">{self.y0:.3g}</text>'
                f'<text x="12" y="{self.height / 2}" class="axis-label" text-anchor="middle" '
                f'transform="rotate(-90 12 {self.height / 2})">{escape(y_label)}</text>')


def scatter_2d(points: list[list[float]], class_names: list[str], boundary: dict[str, Any] | None = None,
               width: int = 360, height: int = 320) -> Markup:
    """Points of a 2-D dataset coloured by class; with a boundary grid, the model's regions behind them."""
    if boundary and boundary.get("test_points"):
        tp = boundary["test_points"]
        points = [[x, y, t] for x, y, t in zip(tp["x"], tp["y"], tp["true"])]
    if not points:
        return Markup("")
    xs = [p[0] for p in points] + (boundary["x"] if boundary else [])
    ys = [p[1] for p in points] + (boundary["y"] if boundary else [])
    frame = _Frame(xs, ys, width, height)
    parts = [frame.open("Scatter plot of the two features, coloured by class")]
    if boundary and ("predicted" in boundary or "values" in boundary):
        parts.append(_boundary_cells(frame, boundary))
    regression = not class_names
    labels = [p[2] for p in points]
    low, high = (min(labels), max(labels)) if regression else (0, 1)
    for x, y, label in points:
        fill = _ramp(label, low, high) if regression else colour(int(label))
        parts.append(f'<circle cx="{frame.sx(x):.1f}" cy="{frame.sy(y):.1f}" r="3.2" fill="{fill}" class="dot"/>')
    parts.append(frame.axes_labels("x", "y"))
    parts.append("</svg>")
    return Markup("".join(parts))


def _boundary_cells(frame: _Frame, boundary: dict[str, Any]) -> str:
    xs, ys = boundary["x"], boundary["y"]
    dx = (xs[-1] - xs[0]) / max(1, len(xs) - 1)
    dy = (ys[-1] - ys[0]) / max(1, len(ys) - 1)
    cells = []
    grid = boundary.get("predicted")
    values = boundary.get("values")
    if values is not None:
        flat = [v for row in values for v in row]
        low, high = min(flat), max(flat)
    for row_index, y in enumerate(ys):
        for column_index, x in enumerate(xs):
            if grid is not None:
                fill = colour(grid[row_index][column_index], light=True)
            elif values is not None:
                fill = _ramp(values[row_index][column_index], low, high, light=True)
            else:
                continue
            left, top = frame.sx(x - dx / 2), frame.sy(y + dy / 2)
            cells.append(f'<rect x="{left:.1f}" y="{top:.1f}" width="{frame.sx(x + dx / 2) - left + 0.6:.1f}" '
                         f'height="{frame.sy(y - dy / 2) - top + 0.6:.1f}" fill="{fill}"/>')
    return "".join(cells)


def _ramp(value: float, low: float, high: float, light: bool = False) -> str:
    t = 0.0 if high == low else max(0.0, min(1.0, (value - low) / (high - low)))
    start, end = ((201, 216, 247), (248, 220, 194)) if light else ((36, 86, 199), (224, 122, 31))
    rgb = [round(a + (b - a) * t) for a, b in zip(start, end)]
    return f"rgb({rgb[0]},{rgb[1]},{rgb[2]})"


def predicted_vs_true(report: dict[str, Any], width: int = 360, height: int = 320) -> Markup:
    pairs = report.get("predicted_vs_true") or {}
    true, predicted = pairs.get("true") or [], pairs.get("predicted") or []
    points = [(t, p) for t, p in zip(true, predicted) if t is not None and p is not None]
    if not points:
        return Markup("")
    values = [v for pair in points for v in pair]
    frame = _Frame(values, values, width, height)
    low, high = min(values), max(values)
    parts = [frame.open("Predicted against true values"),
             f'<line x1="{frame.sx(low):.1f}" y1="{frame.sy(low):.1f}" x2="{frame.sx(high):.1f}" '
             f'y2="{frame.sy(high):.1f}" class="ideal"/>']
    parts += [f'<circle cx="{frame.sx(t):.1f}" cy="{frame.sy(p):.1f}" r="2.6" class="dot regression"/>'
              for t, p in points]
    parts.append(frame.axes_labels("true value", "predicted"))
    parts.append("</svg>")
    return Markup("".join(parts))


HEAT_LEVELS = 10  # confusion-matrix shades, one CSS class each (the policy allows no inline styles)


def heat(value: int, row_total: int) -> str:
    """The class of a confusion-matrix cell: darker for a larger share of its row."""
    share = value / row_total if row_total else 0.0
    return f"heat-{round(share * HEAT_LEVELS)}"


def bar(fraction: float, label: str = "") -> Markup:
    """A horizontal bar as wide as `fraction` of its box (an SVG shape: no inline style needed)."""
    width = max(0.0, min(1.0, fraction)) * 100
    return Markup(f'<svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" '
                  f'aria-label="{escape(label)}"><rect width="{width:.1f}" height="10" rx="1.5"/></svg>')


def histogram(counts: Sequence[int], titles: Sequence[str] = (), label: str = "Histogram") -> Markup:
    """Bars side by side, each as tall as its share of the largest, with its title on hover."""
    top = max(counts, default=0) or 1
    slot = 100 / max(1, len(counts))
    rects = []
    for index, count in enumerate(counts):
        height = max(0.5, 60 * count / top)
        title = f"<title>{escape(titles[index])}</title>" if index < len(titles) else ""
        rects.append(f'<rect x="{index * slot + slot * 0.06:.2f}" y="{60 - height:.2f}" width="{slot * 0.88:.2f}" '
                     f'height="{height:.2f}">{title}</rect>')
    return Markup(f'<svg class="histogram" viewBox="0 0 100 60" preserveAspectRatio="none" role="img" '
                  f'aria-label="{escape(label)}">{"".join(rects)}</svg>')


def swatch(index: int) -> Markup:
    return Markup(f'<svg class="swatch" viewBox="0 0 10 10" aria-hidden="true">'
                  f'<circle cx="5" cy="5" r="5" fill="{colour(index)}"/></svg>')


MAX_EPOCH_TICKS = 20     # up to this many epochs, each is marked on the axis; beyond, only round numbers
EPOCH_CHART_MARGIN = 52  # room left of the plot for the values and the axis title, and below for the epochs


def nice_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round values (steps of 1, 2, 2.5 or 5 times a power of ten) from `low` to `high`, at most `most` of them."""
    if not high > low:
        return [low]
    rough = (high - low) / (most - 1)
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= rough)
    first = math.ceil(low / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(int((high - first) / step + 1e-9) + 1)]


def epoch_lines(series: Sequence[dict[str, Any]], y_label: str, width: int = 720, height: int = 320) -> Markup:
    """Curves on shared axes, by epoch: each series has `colour`, `label`, `dashed` and `points`
    [(epoch, value)]; every point carries its value as a tooltip. Values are marked at round numbers, right
    of the vertical axis title; epochs below the plot, and the horizontal axis title below them."""
    drawn = [s for s in series if s["points"]]
    if not drawn:
        return Markup("")
    xs = [p[0] for s in drawn for p in s["points"]]
    ys = [p[1] for s in drawn for p in s["points"]]
    frame = _Frame([min(1, min(xs)), *xs], ys, width, height, margin=EPOCH_CHART_MARGIN)
    left, bottom = frame.margin, height - frame.margin
    parts = [frame.open(f"{y_label} by epoch")]
    for value in nice_ticks(frame.y0, frame.y1):
        y = frame.sy(value)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - left}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{value:g}</text>')
    first, last = int(frame.x0), int(frame.x1)
    epochs = range(first, last + 1) if last - first < MAX_EPOCH_TICKS else nice_ticks(first, last)
    parts += [f'<text x="{frame.sx(epoch):.1f}" y="{bottom + 16}" class="tick" text-anchor="middle">{epoch:g}</text>'
              for epoch in epochs]
    for s in drawn:
        path = " ".join(f"{frame.sx(x):.1f},{frame.sy(y):.1f}" for x, y in s["points"])
        dash = ' stroke-dasharray="6 4"' if s.get("dashed") else ""
        parts.append(f'<polyline points="{path}" fill="none" stroke="{escape(s["colour"])}" stroke-width="2"{dash}/>')
        parts += [f'<circle cx="{frame.sx(x):.1f}" cy="{frame.sy(y):.1f}" r="3" fill="{escape(s["colour"])}">'
                  f'<title>{escape(s["label"])}, epoch {x}: {y:.4g}</title></circle>' for x, y in s["points"]]
    parts.append(f'<text x="{width / 2}" y="{height - 6}" class="axis-label" text-anchor="middle">epoch</text>'
                 f'<text x="12" y="{height / 2}" class="axis-label" text-anchor="middle" '
                 f'transform="rotate(-90 12 {height / 2})">{escape(y_label)}</text></svg>')
    return Markup("".join(parts))


def dot(hex_colour: str, label: str = "") -> Markup:
    """A coloured dot that marks a run wherever it appears on a page."""
    hidden = ' aria-hidden="true"' if not label else f' role="img" aria-label="{escape(label)}"'
    return Markup(f'<svg class="swatch" viewBox="0 0 10 10"{hidden}>'
                  f'<circle cx="5" cy="5" r="5" fill="{escape(hex_colour)}"/></svg>')


def line_key(hex_colour: str, dashed: bool) -> Markup:
    """A short line as the chart draws it: solid for training, dashed for validation."""
    dash = ' stroke-dasharray="5 3"' if dashed else ""
    return Markup(f'<svg class="line-key" viewBox="0 0 24 6" aria-hidden="true"><line x1="0" y1="3" x2="24" y2="3" '
                  f'stroke="{escape(hex_colour)}" stroke-width="2"{dash}/></svg>')


def trial_points(points: Sequence[dict[str, Any]], x_label: str, y_label: str,
                 x_ticks: Sequence[str] | None = None, width: int = 360, height: int = 240) -> Markup:
    """A search's trials as dots: `x`, `y`, `label` and `best` each; with `x_ticks`, x is the index of a
    category (an axis value) and the categories are written under the axis."""
    drawn = [p for p in points if isinstance(p.get("y"), (int, float)) and isinstance(p.get("x"), (int, float))]
    if not drawn:
        return Markup("")
    xs = [p["x"] for p in drawn] + ([-0.5, len(x_ticks) - 0.5] if x_ticks else [])
    ys = [p["y"] for p in drawn]
    x_pad = 0 if x_ticks else (max(xs) - min(xs)) * 0.06 or max(1.0, abs(xs[0]) * 0.05)  # one size: centred
    y_pad = (max(ys) - min(ys)) * 0.08  # dots clear of the frame
    frame = _Frame([min(xs) - x_pad, max(xs) + x_pad], [min(ys) - y_pad, max(ys) + y_pad], width, height, margin=36)
    parts = [frame.open(f"{y_label} by {x_label}")]
    if x_ticks:
        parts += [f'<text x="{frame.sx(i):.1f}" y="{height - 20}" class="tick" text-anchor="middle">'
                  f'{escape(tick)}</text>' for i, tick in enumerate(x_ticks)]
    for p in sorted(drawn, key=lambda p: bool(p.get("best"))):  # the best drawn last, on top
        kind, radius = ("trial best", 6) if p.get("best") else ("trial", 4.5)
        parts.append(f'<circle cx="{frame.sx(p["x"]):.1f}" cy="{frame.sy(p["y"]):.1f}" r="{radius}" '
                     f'class="{kind}"><title>{escape(p["label"])}</title></circle>')
    if x_ticks:  # categories: the axis labels without the numeric ends
        parts.append(f'<text x="{width / 2}" y="{height - 4}" class="axis-label" text-anchor="middle">'
                     f'{escape(x_label)}</text>'
                     f'<text x="4" y="{frame.margin + 4}" class="tick">{frame.y1:.3g}</text>'
                     f'<text x="4" y="{height - frame.margin}" class="tick">{frame.y0:.3g}</text>')
    else:
        parts.append(frame.axes_labels(x_label, y_label))
    parts.append("</svg>")
    return Markup("".join(parts))
