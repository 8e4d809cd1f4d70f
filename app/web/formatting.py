"""Small text formatters used by templates."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

from app.core.shapes import format_shape


def shape_text(shape: Sequence[int | None] | None) -> str:
    return "?" if shape is None else format_shape(shape)


def number(value: int | float | None) -> str:
    if value is None:
        return "?"
    return f"{value:,}"


def param_text(value: Any) -> str:
    """A parameter value as the editor's text inputs show it."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def compact_number(value: float) -> str:
    """6.0 -> 6, 0.123456 -> 0.1235: numbers as a person writes them."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def test_result(evaluation: dict[str, Any] | None) -> str:
    """A run's test result in a few characters: "93.7% accuracy", or its test loss."""
    evaluation = evaluation or {}
    if evaluation.get("accuracy") is not None:
        return f"{100 * evaluation['accuracy']:.1f}% accuracy"
    if evaluation.get("loss") is not None:
        return f"loss {evaluation['loss']:.4g}"
    return ""


def metric_value(metric: str | None, value: float | None) -> str:
    """A metric as a table shows it: accuracies as percentages, losses and errors with 4 digits."""
    if value is None:
        return "–"
    return f"{100 * value:.1f}%" if metric and "accuracy" in metric else f"{value:.4g}"


def duration(seconds: float | None) -> str:
    """12.3 -> "12 s"; 184 -> "3 min 4 s"; None -> "–"."""
    if seconds is None:
        return "–"
    whole = round(seconds)
    return f"{whole} s" if whole < 60 else f"{whole // 60} min {whole % 60} s"


def change_value(value: Any) -> str:
    """One side of a "what changed" row: lists joined, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def percent(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.1f}%"


_QUOTED_NAME = re.compile(r"`([^`<>]{1,80})`")


def user_message(text: str) -> Markup:
    """A message to the user, with the names it quotes Keras' way (`units`) shown as code: escaped first,
    so that nothing in it (a value typed in) becomes markup."""
    return Markup(_QUOTED_NAME.sub(r"<code>\1</code>", str(escape(text))))
