"""The sheet of test predictions: one tile per sample, its caption readable and kept within its tile."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.worker.evaluate import BORDER, CAPTION, CAPTION_FONT_PX, COLUMNS, TILE, _fitted, write_sample_grid


def test_a_long_caption_is_shortened_to_its_tile_and_a_short_one_kept():
    draw = ImageDraw.Draw(Image.new("RGB", (10, 10)))
    font = ImageFont.load_default(size=CAPTION_FONT_PX)
    assert _fitted(draw, "7", font, TILE) == "7"
    long = _fitted(draw, "T-shirt/top (Ankle boot)", font, TILE)
    assert long.endswith("…") and long.startswith("T-shirt") and draw.textlength(long, font=font) <= TILE


def test_the_sheet_has_a_tile_per_sample(tmp_path):
    images = np.random.default_rng(0).random((8, 28, 28, 1))
    samples = [{"index": i, "correct": i % 2 == 0, "predicted_name": "sneaker", "true_name": "Ankle boot"}
               for i in range(8)]
    write_sample_grid(tmp_path / "predictions.png", images, samples)
    sheet = Image.open(tmp_path / "predictions.png")
    assert sheet.size == (COLUMNS * (TILE + 2 * BORDER), 2 * (TILE + 2 * BORDER + CAPTION))  # 8 samples: 2 rows
    wrong_frame, right_frame = sheet.getpixel((TILE + 2 * BORDER + 1, 1)), sheet.getpixel((1, 1))
    assert wrong_frame == (200, 40, 40) and right_frame == (30, 140, 60)
