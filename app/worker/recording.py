"""Record what happens inside a model while it trains (see app.core.internals for the files it writes).

InternalsRecorder is a Keras callback. It records at the start of training and after an epoch
whenever recording so far has taken less than RECORD_BUDGET of the training time (and always
once the last epoch has ended), so that training epochs are slowed by 1% at most. Copying the
weights (below) has a budget of its own, SNAPSHOT_BUDGET: the two together stay under 3%. A record (a
Probe) runs the model once, eagerly, on the same batch of validation samples, with a gradient tape
for the per-layer gradient norms in the first epochs.

A small model also keeps its weights after the epochs (every k-th for long runs) in memory, written
to the run's `epoch-weights.npz` once training ends however it ends (flush): a copy of at most a few
hundred thousand numbers per epoch, which costs far less than a record. From them the data worker
later computes the records training had no time for (`replay`, on request, once the run has ended)
and, on 2-D data, draws the decision boundary and each unit's output at any epoch (app.worker.plane):
none of that costs training anything.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from app.core.graph import Graph
from app.core.internals import (
    FORMAT_VERSION,
    GRADIENT_EPOCHS,
    MAX_HISTOGRAM_VALUES,
    MAX_RECORDS,
    MAX_SNAPSHOTS,
    PROBE_SAMPLES,
    RECORD_BUDGET,
    SATURATION_BOUNDS,
    SNAPSHOT_BUDGET,
    SNAPSHOT_BYTES,
    kept_epochs,
    read_internals,
    watched_effect,
)
from app.core.runs import EPOCH_WEIGHTS, INTERNALS, REPLAYED_INTERNALS
from app.core.training import TrainConfig
from app.data.prepared import DatasetMeta
from app.worker.evaluate import split_targets
from app.worker.files import write_json
from app.worker.internals import single_input

ACTIVATION_LAYERS = frozenset({"Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax"})


def activation_of(layer: keras.layers.Layer) -> str | None:
    if type(layer).__name__ == "ReLU":
        return "relu"
    function = getattr(layer, "activation", None)
    return getattr(function, "__name__", None) if function is not None else None


def histogram(values: np.ndarray, bins: int) -> dict[str, Any]:
    """A histogram of the finite values over their own range, with their mean and spread."""
    flat = np.asarray(values, dtype="float32").reshape(-1)
    if flat.size > MAX_HISTOGRAM_VALUES:
        flat = flat[:: math.ceil(flat.size / MAX_HISTOGRAM_VALUES)]
    finite = flat[np.isfinite(flat)].astype("float64")
    if finite.size == 0:
        return {"low": 0.0, "high": 0.0, "counts": [0] * bins, "mean": None, "std": None,
                "nonfinite": int(flat.size)}
    low, high = float(finite.min()), float(finite.max())
    counts, _ = np.histogram(finite, bins=bins, range=(low, high) if high > low else (low - 0.5, low + 0.5))
    return {"low": round(low, 6), "high": round(high, 6), "counts": counts.tolist(),
            "mean": round(float(finite.mean()), 6), "std": round(float(finite.std()), 6),
            "nonfinite": int(flat.size - finite.size)}


def dead_share(outputs: np.ndarray) -> float:
    """The share of units (last axis) that gave zero or less for every sample and position."""
    alive = (outputs.reshape(-1, outputs.shape[-1]) > 0).any(axis=0)
    return round(1.0 - float(alive.mean()), 6)


def saturated_share(outputs: np.ndarray, activation: str) -> float:
    low, high = SATURATION_BOUNDS[activation]
    return round(float(((outputs <= low) | (outputs >= high)).mean()), 6)


class Probe:
    """Records one model's insides on a fixed batch: which layers, their description, and a record of
    their weights, outputs, dead or saturated share and gradient norms at the model's current weights."""

    def __init__(self, model: keras.Model, graph: Graph, arrays: dict[str, np.ndarray], meta: DatasetMeta,
                 config: TrainConfig, bins: int):
        split = "val" if len(arrays["y_val"]) else "train"
        self.model, self.bins = model, bins
        self.x = tf.convert_to_tensor(arrays[f"x_{split}"][:PROBE_SAMPLES])
        self.y = tf.convert_to_tensor(split_targets(arrays, split, meta, config, PROBE_SAMPLES))
        output_ids = {node.id for node in graph.outputs()}
        self.layers = recorded_layers(model, graph)
        self.described = [describe(node_id, layer, hidden=node_id not in output_ids) for node_id, layer in self.layers]
        self.header: dict[str, Any] = {
            "version": FORMAT_VERSION, "bins": bins,
            "probe": {"split": "validation" if split == "val" else "training", "samples": len(self.x)},
            "layers": self.described}
        outputs = [*(layer.output for _, layer in self.layers), model.output]
        self.outputs_model = keras.Model(single_input(model), outputs)
        self.owner = {id(v): index for index, (_, layer) in enumerate(self.layers) for v in layer.trainable_weights}

    def record(self, epoch: int) -> dict[str, Any]:
        squares: list[float] | None = None
        if epoch <= GRADIENT_EPOCHS:
            with tf.GradientTape() as tape:
                *outputs, prediction = self.outputs_model(self.x, training=False)
                loss = self.model.compute_loss(x=self.x, y=self.y, y_pred=prediction, training=False)
            squares = self._squared_gradients(tape.gradient(loss, self.model.trainable_weights))
        else:
            *outputs, _ = self.outputs_model(self.x, training=False)
        layers: dict[str, Any] = {}
        for index, ((node_id, layer), output) in enumerate(zip(self.layers, outputs, strict=True)):
            described = self.described[index]
            values = np.asarray(output)
            entry: dict[str, Any] = {"activations": histogram(values, self.bins)}
            if layer.weights:  # a frozen layer's weights are shown too; only trainable ones have a gradient
                kernel = getattr(layer, "kernel", None)
                weights = np.asarray(kernel) if kernel is not None else np.concatenate(
                    [np.asarray(w).reshape(-1) for w in (layer.trainable_weights or layer.weights)])
                entry["weights"] = histogram(weights, self.bins)
                if squares is not None and layer.trainable_weights:  # squares: None after epoch GRADIENT_EPOCHS
                    norm = math.sqrt(squares[index])
                    entry["gradient_norm"] = round(norm, 9) if math.isfinite(norm) else None  # NaN: diverged
            if described["watch"] == "dead":
                entry["dead"] = dead_share(values)
            elif described["watch"] == "saturated":
                entry["saturated"] = saturated_share(values, described["activation"])
            layers[node_id] = entry
        return {"epoch": epoch, "layers": layers}

    def _squared_gradients(self, gradients: list[Any]) -> list[float]:
        """Each recorded layer's squared gradient norm, summed over its trainable weights."""
        squares = [0.0] * len(self.layers)
        for variable, gradient in zip(self.model.trainable_weights, gradients, strict=True):
            index = self.owner.get(id(variable))
            if index is not None and gradient is not None:
                if isinstance(gradient, tf.IndexedSlices):  # an Embedding's: only the rows of the ids it saw
                    gradient = tf.convert_to_tensor(gradient)  # dense, rows of repeated ids summed
                squares[index] += float(np.square(np.asarray(gradient, dtype="float64")).sum())
        return squares


def recorded_layers(model: keras.Model, graph: Graph) -> list[tuple[str, keras.layers.Layer]]:
    """Layers with weights, and activation layers, in the graph's order, with their node ids."""
    found = []
    for node in graph.topological_order():
        try:
            layer = model.get_layer(node.name)
        except ValueError:
            continue
        if layer.weights or type(layer).__name__ in ACTIVATION_LAYERS:
            found.append((node.id, layer))
    return found


def describe(node_id: str, layer: keras.layers.Layer, hidden: bool) -> dict[str, Any]:
    activation = activation_of(layer)
    return {"id": node_id, "name": layer.name, "type": type(layer).__name__, "activation": activation,
            "watch": watched_effect(activation), "hidden": hidden, "has_weights": bool(layer.weights),
            "output_shape": list(layer.output.shape[1:])}


class InternalsRecorder(keras.callbacks.Callback):
    def __init__(self, run_dir: Path, graph: Graph, arrays: dict[str, np.ndarray], meta: DatasetMeta,
                 config: TrainConfig, bins: int, initial_epoch: int = 0):
        super().__init__()
        self.run_dir = run_dir
        self.graph, self.arrays, self.meta, self.config, self.bins = graph, arrays, meta, config, bins
        self.initial_epoch = initial_epoch
        self.every = max(1, math.ceil((config.epochs - initial_epoch) / MAX_RECORDS))
        self.spent = self.copying_spent = 0.0        # seconds spent recording, and copying weights
        self.snapshot_cost = self.record_cost = 0.0  # the last of each, to see whether the next one fits
        self.train_started = 0.0
        self.done: int | None = None  # the last epoch finished in this fit
        self.records: list[dict[str, Any]] = []
        self.snapshot_every = 0  # keep the weights of every k-th epoch; 0: the model is too large to keep any
        self.snapshots: dict[int, list[np.ndarray]] = {}  # epoch: the weights after it, written by flush()

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.train_started = began = time.monotonic()
        self.probe = Probe(self.model, self.graph, self.arrays, self.meta, self.config, self.bins)
        self.snapshot_every = snapshot_interval(self.model.count_params(), self.config.epochs)
        if self.initial_epoch:
            self._keep_earlier_records()
        else:
            (self.run_dir / EPOCH_WEIGHTS).unlink(missing_ok=True)
        if self.snapshot_every:
            copying = time.monotonic()
            self._keep_weights(self.initial_epoch)
            self.snapshot_cost = self.copying_spent = time.monotonic() - copying
        if not self.records:
            recording = time.monotonic()
            self._record(self.initial_epoch)
            self.record_cost = time.monotonic() - recording
        self.spent += time.monotonic() - began - self.copying_spent

    def _keep_earlier_records(self) -> None:
        """A resumed run keeps what it recorded up to the epoch its checkpoint holds; the later epochs are
        trained again, so their records and weights go (and so do records replayed from them)."""
        earlier = read_internals(self.run_dir / INTERNALS)
        if earlier and [layer["id"] for layer in earlier["layers"]] == [layer["id"] for layer in self.probe.described]:
            self.records = [r for r in earlier["records"] if r["epoch"] <= self.initial_epoch]
        (self.run_dir / REPLAYED_INTERNALS).unlink(missing_ok=True)
        if self.snapshot_every:
            self.snapshots = {e: read_snapshot(self.run_dir, e) for e in kept_epochs(self.run_dir)
                              if e <= self.initial_epoch}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Keep the weights, then record, each when it fits its time budget: copying a small model's weights
        costs about a millisecond, a record tens of them."""
        self.done = done = epoch + 1
        began = time.monotonic()
        training = began - self.train_started
        if self.snapshot_every and done % self.snapshot_every == 0 and \
                self.copying_spent + self.snapshot_cost <= SNAPSHOT_BUDGET * training:
            self._keep_weights(done)
            self.snapshot_cost = time.monotonic() - began
            self.copying_spent += self.snapshot_cost
        recording = time.monotonic()
        if done % self.every == 0 and self.spent + self.record_cost <= RECORD_BUDGET * training:
            self._record(done)
            self.record_cost = time.monotonic() - recording
            self.spent += self.record_cost

    def on_train_end(self, logs: dict | None = None) -> None:
        """The last epoch is always kept and recorded: here, once its news is out (the curves update first),
        and before early stopping puts the best epoch's weights back (this callback comes before it)."""
        if self.done is None:
            return
        if self.snapshot_every and self.done not in self.snapshots:
            self._keep_weights(self.done)
        if not self.records or self.records[-1]["epoch"] != self.done:
            self._record(self.done)

    def _keep_weights(self, epoch: int) -> None:
        self.snapshots[epoch] = self.model.get_weights()

    def _record(self, epoch: int) -> None:
        self.records.append(self.probe.record(epoch))
        try:
            write_json(self.run_dir / INTERNALS, {**self.probe.header, "records": self.records})
        except OSError:
            pass  # a full disk: the next record writes them all again; the checkpoint reports the disk

    def flush(self) -> None:
        """Write the weights kept per epoch, in one file: called once training has ended, however it ended
        (one write is cheaper than one per epoch, and the weights are only read after the run)."""
        if self.snapshots:
            try:
                write_snapshots(self.run_dir, self.snapshots)
            except OSError:
                pass  # a full disk: the run's own result matters more than these extra views


# --- weights per epoch -----------------------------------------------------------------------------------

def snapshot_interval(params: int, epochs: int) -> int:
    """Keep every k-th epoch's weights so that at most MAX_SNAPSHOTS of them, SNAPSHOT_BYTES in all, are
    kept; 0 when even the first and the last would not fit."""
    fitting = min(MAX_SNAPSHOTS, SNAPSHOT_BYTES // max(1, 4 * params))
    if fitting < 2:
        return 0
    return max(1, math.ceil(epochs / (fitting - 1)))


def write_snapshots(run_dir: Path, snapshots: dict[int, list[np.ndarray]]) -> None:
    """Each kept epoch's weights, in the order of model.get_weights(), as arrays `e<epoch>_<position>`."""
    arrays = {f"e{epoch}_{i}": w for epoch, weights in snapshots.items() for i, w in enumerate(weights)}
    path = run_dir / EPOCH_WEIGHTS
    tmp = path.with_name(f"tmp-{path.name}")
    try:
        np.savez(tmp, **arrays)  # type: ignore[arg-type]  # numpy's stub types the keywords as allow_pickle
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a partial file would only take the space that is missing
        raise


def read_snapshot(run_dir: Path, epoch: int) -> list[np.ndarray]:
    with np.load(run_dir / EPOCH_WEIGHTS, allow_pickle=False) as data:
        count = sum(1 for name in data.files if name.startswith(f"e{epoch}_"))
        return [data[f"e{epoch}_{i}"] for i in range(count)]


# --- records computed later from the kept weights -----------------------------------------------------------

def replay(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Records for the given epochs (payload["epochs"]), computed in the data worker from the weights
    kept of each, with the model built from the run's graph and compiled with its loss; added to the run's
    replayed records (a file of their own: training's own records are never rewritten). Returns every
    replayed record. payload: run_dir, dataset_dir, graph, config, bins, epochs."""
    from app.core.training import output_head, uses_logits
    from app.data.prepared import read_arrays, read_meta
    from app.worker.build import build_model
    from app.worker.train import compile_model

    run_dir, dataset_dir = Path(payload["run_dir"]), Path(payload["dataset_dir"])
    replayed_path = run_dir / REPLAYED_INTERNALS
    replayed = {r["epoch"]: r for r in (read_internals(replayed_path) or {}).get("records", [])}
    kept = kept_epochs(run_dir)
    wanted = [e for e in payload["epochs"] if e in kept and e not in replayed]
    if wanted:
        graph = Graph.model_validate(payload["graph"])
        config = TrainConfig.model_validate(payload["config"])
        model = build_model(graph)
        head = output_head(graph)
        compile_model(model, config, uses_logits(config.loss, head.activation if head else ""))
        probe = Probe(model, graph, read_arrays(dataset_dir), read_meta(dataset_dir), config, int(payload["bins"]))
        for epoch in wanted:
            model.set_weights(read_snapshot(run_dir, epoch))
            replayed[epoch] = probe.record(epoch)
        write_json(replayed_path, {**probe.header, "records": [replayed[e] for e in sorted(replayed)]})
    return [replayed[e] for e in sorted(replayed)]
