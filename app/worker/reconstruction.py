"""Testing an autoencoder (training target: the input): how far each test sample's reconstruction is from it, and
originals shown next to their reconstructions, from the best reconstructed to the worst."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.core.runs import RECONSTRUCTIONS
from app.data.prepared import DatasetMeta

SHOWN = 10           # samples shown, spread evenly from the best reconstructed to the worst
VALUES_SHOWN = 12    # values of a non-image sample listed
TILE = 56
GAP = 4
CAPTION = 14
PREDICT_BATCH = 256


def reconstruction_report(model: keras.Model, x: np.ndarray, meta: DatasetMeta,
                          run_dir: Path | str | None) -> dict[str, Any]:
    """Per-sample squared error (mean over the sample's values), its spread, and the samples shown."""
    rebuilt = np.asarray(model.predict(x, batch_size=PREDICT_BATCH, verbose=0), dtype="float64").reshape(x.shape)
    errors = np.square(rebuilt - x.astype("float64")).reshape(len(x), -1).mean(axis=1)
    finite = errors[np.isfinite(errors)]
    ranked = np.argsort(np.where(np.isfinite(errors), errors, np.inf), kind="stable")
    shown = ranked[np.unique(np.linspace(0, len(ranked) - 1, min(SHOWN, len(ranked))).round().astype(int))]
    report: dict[str, Any] = {
        "errors": {"mean": _number(finite.mean()) if len(finite) else None,
                   "median": _number(np.median(finite)) if len(finite) else None,
                   "max": _number(finite.max()) if len(finite) else None,
                   "finite": len(finite), "count": len(errors)},
        "samples": [{"index": int(i), "error": _number(errors[i]),
                     "original": [_number(v) for v in x[i].reshape(-1)[:VALUES_SHOWN]],
                     "reconstructed": [_number(v) for v in rebuilt[i].reshape(-1)[:VALUES_SHOWN]]}
                    for i in shown],
    }
    if meta.kind == "image" and x.ndim == 4 and run_dir is not None:
        _write_pairs(Path(run_dir) / RECONSTRUCTIONS, x, rebuilt, report["samples"])
        report["image"] = RECONSTRUCTIONS
    return report


def _number(value: Any) -> float | None:
    number = float(value)
    return round(number, 6) if np.isfinite(number) else None


def _write_pairs(path: Path, originals: np.ndarray, rebuilt: np.ndarray, samples: list[dict[str, Any]]) -> None:
    """Two rows: each shown sample above its reconstruction, with its error under it, on the originals' scale."""
    low, high = float(np.min(originals)), float(np.max(originals))
    width = GAP + len(samples) * (TILE + GAP)
    sheet = Image.new("RGB", (width, GAP + 2 * (TILE + GAP) + CAPTION), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for column, sample in enumerate(samples):
        left = GAP + column * (TILE + GAP)
        for row, images in enumerate((originals, rebuilt)):
            sheet.paste(_tile(images[sample["index"]], low, high), (left, GAP + row * (TILE + GAP)))
        error = sample["error"]
        draw.text((left, GAP + 2 * (TILE + GAP)), "?" if error is None else f"{error:.3g}", fill=(60, 60, 60),
                  font=font)
    tmp = path.with_name(path.name + ".tmp")
    sheet.save(tmp, format="PNG")
    os.replace(tmp, path)


def _tile(image: np.ndarray, low: float, high: float) -> Image.Image:
    pixels = np.asarray(image, dtype="float64")
    pixels = pixels if pixels.shape[-1] == 3 else pixels[..., 0]
    scaled = (pixels - low) / (high - low) * 255 if high > low else np.zeros_like(pixels)
    tile = Image.fromarray(np.nan_to_num(scaled).clip(0, 255).astype("uint8"))
    return tile.convert("RGB").resize((TILE, TILE), Image.Resampling.NEAREST)
