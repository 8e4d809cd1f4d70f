"""The server-drawn epoch chart: values marked at round numbers, and labels that keep clear of each other."""

from __future__ import annotations

import re

import pytest

from app.web.charts import epoch_lines, nice_ticks


@pytest.mark.parametrize(("low", "high", "ticks"), [
    (0.526, 2.16, [1.0, 1.5, 2.0]),
    (0.9, 0.93, [0.9, 0.91, 0.92, 0.93]),
    (0.0, 1.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    (1, 300, [100, 200, 300]),
    (0.5, 0.5, [0.5]),
])
def test_ticks_fall_on_round_numbers(low, high, ticks):
    assert nice_ticks(low, high) == pytest.approx(ticks)


def test_the_axis_titles_do_not_sit_on_the_tick_values():
    series = [{"colour": "#2456c7", "label": "first run", "dashed": False,
               "points": [(1, 2.16), (2, 1.34), (3, 0.526)]}]
    svg = str(epoch_lines(series, "loss", width=720, height=320))
    texts = [(float(x), float(y), kind, anchor, text) for x, y, kind, anchor, text in re.findall(
        r'<text x="([\d.]+)" y="([\d.]+)" class="(tick|axis-label)" text-anchor="(\w+)"[^>]*>([^<]*)</text>', svg)]
    epoch_title_y = next(y for x, y, kind, anchor, text in texts if text == "epoch")
    epoch_ticks = [(y, text) for x, y, kind, anchor, text in texts if kind == "tick" and anchor == "middle"]
    assert [text for y, text in epoch_ticks] == ["1", "2", "3"]
    assert all(epoch_title_y - y >= 12 for y, text in epoch_ticks)  # a line of text apart
    value_ticks = [(x, text) for x, y, kind, anchor, text in texts if kind == "tick" and anchor == "end"]
    assert [text for x, text in value_ticks] == ["1", "1.5", "2"]
    assert all(x >= 40 for x, text in value_ticks)  # right-aligned, clear of the vertical title at x=12
