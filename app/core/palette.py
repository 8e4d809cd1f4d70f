"""The class colours every chart and picture uses, so a class looks the same everywhere."""

from __future__ import annotations

PALETTE = ("#2456c7", "#e07a1f", "#17803d", "#b42318", "#7a3fb8", "#0f8a8a", "#a35d00", "#c2185b",
           "#5b6575", "#6d8f00")
LIGHT = ("#c9d8f7", "#f8dcc2", "#c6ead2", "#f5c9c5", "#e2d2f3", "#c4eaea", "#f0dcbf", "#f5c6da",
         "#dfe3e9", "#e1ecc0")


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)
