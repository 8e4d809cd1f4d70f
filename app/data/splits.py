"""Seeded train/validation/test splits, stratified by class when there are classes.

Stratifying means each split holds every class in (nearly) the same proportion as the
whole set, so a rare class is not missing from validation by bad luck. Sizes per class
are apportioned by largest remainder, which works for any class sizes, even a class of
one sample (it goes to training), so no fallback to an unstratified split is needed.
"""

from __future__ import annotations

import numpy as np


def _apportion(sizes: np.ndarray, total: int) -> np.ndarray:
    """Share `total` among groups in proportion to their sizes, in whole numbers."""
    if total <= 0 or sizes.sum() == 0:
        return np.zeros_like(sizes)
    quotas = sizes * total / sizes.sum()
    counts = np.floor(quotas).astype(np.int64)
    remainder = int(total - counts.sum())
    order = np.argsort(-(quotas - counts), kind="stable")
    counts[order[:remainder]] += 1
    return counts


def _split_size(n: int, fraction: float) -> int:
    if fraction <= 0:
        return 0
    return max(1, round(n * fraction)) if n >= 3 else 0


def split_indices(n: int, labels: np.ndarray | None, validation_fraction: float, test_fraction: float,
                  seed: int) -> dict[str, np.ndarray]:
    """Row indices of each split ("train", "val", "test"); each split in shuffled order.

    `labels` (class indices, one per row) makes the split stratified; None for regression.
    A `test_fraction` of 0 leaves the test split empty (for data with its own test set).
    """
    rng = np.random.default_rng(seed)
    if labels is None:
        groups = [np.arange(n)]
    else:
        labels = np.asarray(labels)
        groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    sizes = np.array([len(g) for g in groups], dtype=np.int64)
    n_test = _split_size(n, test_fraction)
    n_val = min(_split_size(n, validation_fraction), max(n - n_test - 1, 0))
    test_counts = _apportion(sizes, n_test)
    val_counts = _apportion(sizes - test_counts, n_val)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for group, n_group_test, n_group_val in zip(groups, test_counts, val_counts):
        shuffled = rng.permutation(group)
        parts["test"].append(shuffled[:n_group_test])
        parts["val"].append(shuffled[n_group_test:n_group_test + n_group_val])
        parts["train"].append(shuffled[n_group_test + n_group_val:])
    return {name: rng.permutation(np.concatenate(chunks)).astype(np.int64) for name, chunks in parts.items()}
