"""The generated 2-D sets, after the classic in-browser neural network playgrounds.

Each generator draws from its own `numpy.random.Generator` seeded by the caller, so the
same (n_samples, noise, seed) always gives the same points. As in the playgrounds, noise
moves the point used to decide the label rather than the point itself, so noise shows up
as labels on the "wrong" side of a clean boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.data.catalog import DATASETS


@dataclass
class Points:
    x: np.ndarray          # (n, 2) float32
    y: np.ndarray          # (n,) int64 class indices, or float32 targets
    class_names: list[str]


def _split_counts(n: int) -> tuple[int, int]:
    return n // 2, n - n // 2


def _circle(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    radius = 5.0
    n_in, n_out = _split_counts(n)
    r = np.concatenate([rng.uniform(0, radius * 0.5, n_in), rng.uniform(radius * 0.7, radius, n_out)])
    angle = rng.uniform(0, 2 * np.pi, n)
    xy = np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1)
    jitter = rng.uniform(-radius, radius, (n, 2)) * noise
    inside = np.linalg.norm(xy + jitter, axis=1) < radius * 0.5
    return xy, inside.astype(np.int64)


def _xor(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    padding = 0.3  # keeps points off the axes, where the label would be a coin toss
    xy = rng.uniform(-5, 5, (n, 2))
    xy += np.where(xy > 0, padding, -padding)
    jittered = xy + rng.uniform(-5, 5, (n, 2)) * noise
    same_sign = jittered[:, 0] * jittered[:, 1] >= 0
    return xy, same_sign.astype(np.int64)


def _gaussian(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    spread = np.sqrt(0.5 + 3.5 * noise)  # the playground scales the variance, not the deviation
    n_low, n_high = _split_counts(n)
    low = rng.normal(-2.0, spread, (n_low, 2))
    high = rng.normal(2.0, spread, (n_high, 2))
    return np.concatenate([low, high]), np.repeat(np.array([0, 1], dtype=np.int64), [n_low, n_high])


def _spiral(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    parts, labels = [], []
    for label, (count, turn) in enumerate(zip(_split_counts(n), (0.0, np.pi))):
        step = np.arange(count) / max(count, 1)
        r = step * 5
        t = 1.75 * step * 2 * np.pi + turn
        xy = np.stack([r * np.sin(t), r * np.cos(t)], axis=1) + rng.uniform(-1, 1, (count, 2)) * noise
        parts.append(xy)
        labels.append(np.full(count, label, dtype=np.int64))
    return np.concatenate(parts), np.concatenate(labels)


def _plane(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    radius = 6.0
    xy = rng.uniform(-radius, radius, (n, 2))
    jittered = xy + rng.uniform(-radius, radius, (n, 2)) * noise
    # x + y spans -12..12 at most; the playground maps -10..10 onto -1..1.
    return xy, (jittered.sum(axis=1) / 10).astype(np.float32)


# (centre x, centre y, sign) of each bump; the label is the bump of largest magnitude.
_BUMPS = np.array([[-4, 2.5, 1], [0, 2.5, -1], [4, 2.5, 1], [-4, -2.5, -1], [0, -2.5, 1], [4, -2.5, -1]])


def _multi_gaussian(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    radius = 6.0
    xy = rng.uniform(-radius, radius, (n, 2))
    jittered = xy + rng.uniform(-radius, radius, (n, 2)) * noise
    distance = np.linalg.norm(jittered[:, None, :] - _BUMPS[None, :, :2], axis=2)
    heights = _BUMPS[None, :, 2] * np.clip(1 - distance / 2, 0, 1)  # 1 at a centre, 0 from distance 2
    strongest = np.abs(heights).argmax(axis=1)
    return xy, heights[np.arange(n), strongest].astype(np.float32)


GENERATORS: dict[str, Callable[[np.random.Generator, int, float], tuple[np.ndarray, np.ndarray]]] = {
    "circle": _circle, "xor": _xor, "gaussian": _gaussian, "spiral": _spiral,
    "plane": _plane, "multi_gaussian": _multi_gaussian,
}


def generate_points(key: str, n_samples: int, noise: float, seed: int) -> Points:
    """Draw one generated set; the caller validates the parameters against the catalog."""
    rng = np.random.default_rng(seed)
    xy, labels = GENERATORS[key](rng, n_samples, noise)
    return Points(xy.astype(np.float32), labels, list(DATASETS[key].class_names))
