"""The generated sequence set: token sequences labelled by whether a short motif occurs in them.

Order is the whole point: a sequence without the motif still holds each of its tokens, so a model that only
counts tokens (an Embedding followed by an average) stays near chance, while one that reads the order (a
recurrent layer, or a Conv1D) finds it. Drawn from a `numpy.random.Generator` seeded by the caller, so the
same (n_samples, seed) always gives the same sequences.
"""

from __future__ import annotations

import numpy as np

from app.data.catalog import MOTIF, SEQUENCE_LENGTH, VOCABULARY


def contains_motif(sequence: np.ndarray) -> bool:
    """Whether the motif occurs in the sequence as consecutive tokens."""
    width = len(MOTIF)
    windows = np.lib.stride_tricks.sliding_window_view(sequence, width)
    return bool((windows == np.array(MOTIF)).all(axis=1).any())


def motif_sequences(n_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, SEQUENCE_LENGTH) int64 tokens and (n,) int64 labels, alternately 0 (no motif) and 1 (motif)."""
    rng = np.random.default_rng(seed)
    x = np.empty((n_samples, SEQUENCE_LENGTH), dtype=np.int64)
    y = np.arange(n_samples, dtype=np.int64) % 2
    for i in range(n_samples):
        x[i] = _with_motif(rng) if y[i] else _without_motif(rng)
    return x, y


def _with_motif(rng: np.random.Generator) -> np.ndarray:
    sequence = rng.integers(1, VOCABULARY, SEQUENCE_LENGTH)
    start = rng.integers(0, SEQUENCE_LENGTH - len(MOTIF) + 1)
    sequence[start:start + len(MOTIF)] = MOTIF
    return sequence


def _without_motif(rng: np.random.Generator) -> np.ndarray:
    """Random tokens holding each token of the motif somewhere, never in the motif's order."""
    while True:
        sequence = rng.integers(1, VOCABULARY, SEQUENCE_LENGTH)
        for token in MOTIF:
            if token not in sequence:
                sequence[rng.integers(0, SEQUENCE_LENGTH)] = token
        if all(token in sequence for token in MOTIF) and not contains_motif(sequence):
            return sequence
