"""A labelled dataset as loaded, before it is split: what loaders hand to `prepare`.

Tables have their own form (`tables.RawTable`) because their features can only be
encoded once the split is known; everything else arrives as arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class LabeledArrays:
    kind: str                          # "image", "table", "points2d" or "sequence" (token ids)
    task: str                          # "classification" or "regression"
    x: np.ndarray                      # images: (n, h, w, c), uint8 or floats already in 0..1
    y: np.ndarray                      # int64 class indices, or float32 targets
    class_names: list[str] = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)
    target_name: str = ""
    x_test: np.ndarray | None = None   # a test split of the data's own, kept as it is
    y_test: np.ndarray | None = None
    notes: dict[str, Any] = field(default_factory=dict)  # shown with the preview

    @property
    def has_own_test(self) -> bool:
        return self.x_test is not None
