"""What a training run is in words: its states, its best epoch, and its architecture in one line.

Pure Python, shared by the worker (which reports epochs), the scheduler (which records
states) and the pages and API (which describe runs), so each fact lives here once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from app.core.catalog import CATALOG
from app.core.errors import UserError
from app.core.graph import Graph, Node


def run_folder(data_dir: Path, run_id: int) -> Path:
    """Where a run's files live, under the server's data directory."""
    return data_dir / "runs" / str(run_id)


# The files of a run's folder, written by the worker and read by the pages and the API.
FINAL_MODEL = "model.keras"
CHECKPOINT = "checkpoint.keras"       # the model after the last saved epoch
INITIAL_WEIGHTS = "initial.weights.h5"    # an imported model's trained weights, which training starts from
INITIAL_WEIGHTS_KEYS = "initial.weights.json"  # each layer's group in that file
CHECKPOINT_STATE = "checkpoint.json"  # which epoch that is, with the history up to it
INTERNALS = "internals.json"          # what each layer did during training (app.core.internals)
REPLAYED_INTERNALS = "internals-replayed.json"  # the same, computed later from the weights kept per epoch
RECONSTRUCTIONS = "reconstructions.png"  # an autoencoder's test samples above what it gave back
EPOCH_WEIGHTS = "epoch-weights.npz"   # small models: the weights after each epoch, arrays e<epoch>_<i>


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"          # the worker failed or died; finished epochs are kept
    DIVERGED = "diverged"      # the loss became NaN or infinite
    CANCELLED = "cancelled"    # stopped on request
    INTERRUPTED = "interrupted"  # the server stopped while it trained

    @property
    def active(self) -> bool:
        return self in ACTIVE_STATES

    @property
    def resumable(self) -> bool:
        """Whether it may continue from its last saved epoch (when it has one)."""
        return self in RESUMABLE_STATES


ACTIVE_STATES = frozenset({RunState.QUEUED, RunState.RUNNING})
# A finished run's state never changes, except that a resumable one can be queued again.
ENDED_STATES = frozenset(RunState) - ACTIVE_STATES
RESUMABLE_STATES = frozenset({RunState.INTERRUPTED, RunState.CANCELLED, RunState.FAILED})


def best_epoch(epochs: Iterable[Mapping[str, Any]]) -> int | None:
    """The epoch with the lowest validation loss (training loss when there is no validation).

    Each record holds `epoch` and either `logs` (as events carry them) or the values themselves.
    """
    best: tuple[float, int] | None = None
    for record in epochs:
        logs = record.get("logs", record)
        value = logs.get("val_loss", logs.get("loss"))
        if isinstance(value, (int, float)) and (best is None or value < best[0]):
            best = (float(value), int(record["epoch"]))
    return best[1] if best else None


def describe_layer(node: Node) -> str:
    """One layer in a few words: `conv2d: Conv2D 32 3x3, relu, he_normal`."""
    params = node.params
    parts = [node.type]
    size = params.get("units") or params.get("filters")
    if size:
        parts.append(str(size))
    if node.type == "Input":
        parts.append("x".join(str(v) for v in params.get("shape", [])))
    for window in ("kernel_size", "pool_size"):
        value = params.get(window)
        if isinstance(value, list):
            parts.append("x".join(str(v) for v in value))
        elif isinstance(value, int):
            parts.append(str(value))
    details = [" ".join(parts)]
    if "activation" in CATALOG[node.type].by_name and node.type != "Activation":
        details.append(str(params.get("activation")))
    elif node.type == "Activation":
        details = [f"Activation {params.get('activation')}"]
    if "kernel_initializer" in params:
        details.append(str(params["kernel_initializer"]))
    if "rate" in params:
        details.append(f"rate {params['rate']:g}")
    return f"{node.name}: {', '.join(details)}"


def architecture_line(graph: Graph) -> str:
    """The whole model in one line, in wiring order, with activations and initializers."""
    try:
        nodes = graph.topological_order()
    except UserError:  # a loop: list the layers as they are shown
        nodes = list(graph.nodes)
    return " → ".join(describe_layer(node) for node in nodes)


def test_metrics(evaluation: Mapping[str, Any] | None) -> dict[str, float]:
    """A run's test scores by name (accuracy, macro_f1, loss, mae, rmse, r2), those it has."""
    if not evaluation or not evaluation.get("available", True):
        return {}
    found: dict[str, Any] = {"accuracy": evaluation.get("accuracy"), "macro_f1": evaluation.get("macro_f1"),
                             "loss": evaluation.get("loss")}
    residuals = evaluation.get("residuals") or {}
    found.update({name: residuals.get(name) for name in ("mae", "rmse", "r2")})
    return {name: float(value) for name, value in found.items() if isinstance(value, (int, float))}


def validation_metric(epochs: Iterable[Mapping[str, Any]]) -> str | None:
    """The validation value a run is ranked by: val_accuracy when it was measured, else val_loss."""
    names = {name for record in epochs for name in record.get("logs", record)}
    for name in ("val_accuracy", "val_loss", "accuracy", "loss"):
        if name in names:
            return name
    return None


def at_best_epoch(epochs: Iterable[Mapping[str, Any]], metric: str) -> tuple[float, int] | None:
    """A metric's value at the run's best epoch (`best_epoch`: the lowest validation loss), and that epoch:
    the epoch that pages mark as best and that early stopping keeps, whichever metric is shown."""
    records = list(epochs)
    epoch = best_epoch(records)
    for record in records:
        value = record.get("logs", record).get(metric)
        if int(record["epoch"]) == epoch and isinstance(value, (int, float)) and value == value:
            return float(value), epoch
    return None


def best_of(epochs: Iterable[Mapping[str, Any]], metric: str) -> tuple[float, int] | None:
    """The best value of a metric over the epochs and the epoch it came at (accuracy: highest)."""
    higher = "accuracy" in metric
    best: tuple[float, int] | None = None
    for record in epochs:
        value = record.get("logs", record).get(metric)
        if not isinstance(value, (int, float)) or value != value:  # missing or NaN
            continue
        if best is None or (value > best[0] if higher else value < best[0]):
            best = (float(value), int(record["epoch"]))
    return best
