"""What training records inside a model, and what the records say.

While a run trains, the worker (app.worker.recording) takes a fixed batch of validation samples
and, at the start and then after epochs as its time budget allows, records for each layer with
weights (and each activation layer): a histogram of its weights, a histogram of its outputs on
that batch, the share of dead relu units or saturated sigmoid/tanh values, and the norm of the
loss's gradient with respect to its weights (in the first epochs). The records go to the run folder's `internals.json`:

    {"version": 1, "probe": {"split": "validation", "samples": 64}, "bins": 30,
     "layers": [{"id", "name", "type", "activation", "watch": "dead"|"saturated"|null, "hidden",
                 "has_weights", "output_shape"}],
     "records": [{"epoch": 0, "layers": {"<id>": {"weights": Histogram, "activations": Histogram,
                                                   "gradient_norm": float, "dead": share,
                                                   "saturated": share}}}]}

    Histogram: {"low", "high", "counts": [...], "mean", "std", "nonfinite"}

Pure Python: the pages, the API and the suggestions read this; the thresholds live here once.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.runs import EPOCH_WEIGHTS

FORMAT_VERSION = 1
DEFAULT_HISTOGRAM_BINS = 30  # the server's setting LAYERLAB_HISTOGRAM_BINS may change it
PROBE_SAMPLES = 64         # validation samples every record looks at (the same ones each time)
RECORD_BUDGET = 0.01       # recording may take at most this share of the training time so far...
SNAPSHOT_BUDGET = 0.02     # ...and copying the weights of each epoch this share: 3% at most together
GRADIENT_EPOCHS = 5        # gradient norms are recorded up to this epoch, where a bad start shows
MAX_RECORDS = 60           # records kept at most; long runs record every k-th epoch
SNAPSHOT_BYTES = 16 * 2**20    # the weights kept per epoch take at most this much space in all...
MAX_SNAPSHOTS = 100            # ...in at most this many files (every k-th epoch, the first and last always)
REPLAYED_EPOCHS = 30           # records computed afterwards from the kept weights, at most
MAX_HISTOGRAM_VALUES = 200_000  # a layer's values are thinned to this many before binning

RELU_ACTIVATIONS = frozenset({"relu", "relu6"})
# Where each saturating activation's slope is under a tenth of its largest: its outputs there
# hardly pass a gradient back. sigmoid: below 0.02 or above 0.98; tanh = 2*sigmoid(2x) - 1.
SATURATION_BOUNDS: dict[str, tuple[float, float]] = {
    "sigmoid": (0.02, 0.98), "tanh": (-0.96, 0.96), "hard_sigmoid": (0.0, 1.0)}
ALERT_SHARE = 0.5          # half a layer's relu units dead, or half its values saturated, is flagged
VANISHING_RATIO = 0.01     # the first layer's gradient under 1% of the last layer's: vanishing
EXPLODING_RATIO = 100.0    # the first layer's gradient over 100 times the last layer's: exploding


def watched_effect(activation: str | None) -> str | None:
    """What to watch in a layer's outputs: dead units for relu, saturation for sigmoid and tanh."""
    if activation in RELU_ACTIVATIONS:
        return "dead"
    if activation in SATURATION_BOUNDS:
        return "saturated"
    return None


def read_internals(path: Path) -> dict[str, Any] | None:
    """The recorded internals, or None when the run recorded none (or the file is unreadable)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("version") == FORMAT_VERSION else None


def kept_epochs(run_folder: Path) -> list[int]:
    """The epochs whose weights training kept (small models), read from the weights file's index alone."""
    try:
        with zipfile.ZipFile(run_folder / EPOCH_WEIGHTS) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return []
    return sorted({int(name[1:].split("_")[0]) for name in names if name.startswith("e") and "_" in name})


@dataclass(frozen=True)
class Finding:
    """One thing the records show about a layer: `kind` is dead, saturated, vanishing or exploding."""

    kind: str
    layer_id: str
    layer_name: str
    share: float          # of units dead or values saturated; for gradients, first / last layer's norm
    epoch: int
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "layer_id": self.layer_id, "layer_name": self.layer_name,
                "share": round(self.share, 6), "epoch": self.epoch, "text": self.text}


def findings(internals: Mapping[str, Any] | None) -> list[Finding]:
    """Dead relu and saturated hidden layers at the last record, and vanishing or exploding gradients at
    the first record that has gradients (the start of training, where a bad initializer shows)."""
    if not internals or not internals.get("records"):
        return []
    layers = [layer for layer in internals.get("layers", []) if isinstance(layer, Mapping)]
    records = internals["records"]
    last = records[-1]
    found: list[Finding] = []
    for layer in layers:
        watch = str(layer.get("watch") or "")
        values = last.get("layers", {}).get(layer["id"], {})
        share = values.get(watch) if watch and layer.get("hidden") else None
        if isinstance(share, (int, float)) and share >= ALERT_SHARE:
            what = ("of its relu units are dead (zero for every probe sample): they no longer learn"
                    if watch == "dead" else
                    f"of its {layer.get('activation')} outputs are saturated (at the flat ends of the curve), where "
                    "almost no gradient passes back")
            found.append(Finding(watch, layer["id"], layer["name"], float(share), int(last["epoch"]),
                                 f"{layer['name']}: {100 * share:.0f}% {what}, at epoch {last['epoch']}."))
    gradient = _gradient_finding(layers, records)
    if gradient is not None:
        found.append(gradient)
    return found


def _gradient_finding(layers: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]]) -> Finding | None:
    """At the first record with gradients: the first layer's gradient norm against the last one's, among the
    layers that learn (frozen layers and Normalization have none)."""
    for record in records:
        values = record.get("layers", {})
        learning = [layer for layer in layers
                    if isinstance(values.get(layer["id"], {}).get("gradient_norm"), (int, float))]
        if not learning:
            continue
        if len(learning) < 3:
            return None  # with one or two layers, there is no depth for a gradient to vanish through
        first_layer, last_layer = learning[0], learning[-1]
        first, last = values[first_layer["id"]]["gradient_norm"], values[last_layer["id"]]["gradient_norm"]
        if last <= 0:
            return None
        ratio = first / last
        name, epoch = first_layer["name"], int(record["epoch"])
        when = "at the start of training" if epoch == 0 else f"after epoch {epoch}"
        if ratio < VANISHING_RATIO:
            return Finding("vanishing", first_layer["id"], name, ratio, epoch,
                           f"The gradient reaching {name} is {ratio:.1e} times the one at {last_layer['name']} "
                           f"{when}: it vanishes on its way back, so the first layers barely learn.")
        if ratio > EXPLODING_RATIO:
            return Finding("exploding", first_layer["id"], name, ratio, epoch,
                           f"The gradient reaching {name} is {ratio:.0f} times the one at {last_layer['name']} "
                           f"{when}: it grows on its way back, so the first layers take huge steps.")
        return None
    return None
