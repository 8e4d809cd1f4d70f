"""Train one model in a worker process: compile, fit with live events, checkpoint, save, test.

run_training(request, emit, should_stop) is the whole job. The request is plain JSON:

    {"graph": <Graph JSON>, "dataset_dir": "<prepared dataset folder>",
     "config": <TrainConfig dict>, "run_dir": "<folder for this run's files>",
     "resume": false, "evaluate": true, "histogram_bins": 30}

Events passed to emit (plain dicts, JSON-safe: NaN becomes None):
    started     epochs, initial_epoch, steps_per_epoch, batch_size, train_samples,
                val_samples, total_params, resumed, warnings
    batch       epoch, step, steps, global_step, loss, metrics  (at most 1 per BATCH_EVENT_INTERVAL_S)
    epoch       epoch, epochs, logs {loss, val_loss, accuracy, ...}, epoch_s, cpu_s (the training process's
                CPU seconds in the epoch, all its threads), elapsed_s, eta_s, best_epoch,
                time (wall clock, seconds since 1970, when the epoch ended)
    checkpoint  epoch, path (relative to run_dir); after the first epoch, then after an epoch once saving
                would take at most CHECKPOINT_SHARE of the time since the last save (yet at least every
                CHECKPOINT_AT_LEAST_EVERY_S), and always after the last one
The returned dict is the final word: see _result(). On completion the run folder holds
model.keras (and predictions.png for images); checkpoint.keras + checkpoint.json always
describe the same finished epoch, from which "resume": true continues.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from app.core.errors import UserError
from app.core.graph import Graph
from app.core.internals import DEFAULT_HISTOGRAM_BINS
from app.core.runs import (
    CHECKPOINT,
    CHECKPOINT_STATE,
    FINAL_MODEL,
    INITIAL_WEIGHTS,
    INITIAL_WEIGHTS_KEYS,
    RunState,
    best_epoch,
)
from app.core.text import plural
from app.core.training import TrainConfig, check_training, output_head, uses_logits
from app.data.prepared import DatasetMeta, read_arrays, read_meta
from app.worker.build import build_model
from app.worker.evaluate import clean, evaluate_model, split_targets
from app.worker.files import write_json
from app.worker.recording import InternalsRecorder

BATCH_EVENT_INTERVAL_S = 0.25  # at most 4 batch events a second: enough for a live curve
# Saving costs about 50 ms even for a tiny model, more than a whole epoch of a playground dataset: epochs are
# checkpointed so that saving takes at most 1% of the training time (and at most once a second), yet at least
# once a minute, and always after the last one. A crash loses the epochs since; a stop loses nothing.
CHECKPOINT_INTERVAL_S = 1.0
CHECKPOINT_SHARE = 0.01
CHECKPOINT_AT_LEAST_EVERY_S = 60.0
# Free disk space a run needs beside its checkpoint's size, for the server's records of the epochs to come:
# below it the run stops, saying why, while the database can still record that.
DISK_HEADROOM_BYTES = 4 * 2**20
SHUFFLE_BUFFER_BYTES = 256 * 2**20

Emit = Callable[[dict[str, Any]], None]
ShouldStop = Callable[[], bool]

COMPILED_SETTINGS = ("loss", "optimizer", "learning_rate", "momentum", "metrics",
                     "steps_per_execution")
# A usual learning rate per optimizer, for the advice after a diverged run.
USUAL_LEARNING_RATE = {"sgd": 0.01, "adagrad": 0.01}


class _StopTraining(Exception):
    """Raised from a callback to leave model.fit at once (Keras would otherwise still validate)."""

    def __init__(self, state: str, message: str, **detail: Any):
        super().__init__(message)
        self.state, self.message, self.detail = state, message, detail


def run_training(request: dict[str, Any], emit: Emit, should_stop: ShouldStop) -> dict[str, Any]:
    started = time.monotonic()
    run_dir = Path(request["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    config = TrainConfig.model_validate(request.get("config") or {})
    state = _read_checkpoint_state(run_dir) if request.get("resume") else None
    if state is not None:
        # The checkpoint was compiled with its own loss, optimizer and metrics: those stay, while
        # epochs, batch size and early stopping may change (for example "train 10 more epochs").
        config = config.model_copy(update={k: state["config"][k] for k in COMPILED_SETTINGS})
    dataset_dir = Path(request["dataset_dir"])
    meta, arrays = read_meta(dataset_dir), read_arrays(dataset_dir)
    graph = Graph.model_validate(request["graph"])

    issues = check_training(graph, meta, config)
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        return _result(RunState.FAILED, errors[0].message, config, [], started,
                       issues=[i.as_dict() for i in errors])
    if config.seed is not None:
        keras.utils.set_random_seed(config.seed)

    history: list[dict[str, Any]] = []
    started_from: list[str] = []  # layers given an imported model's trained weights
    if state is not None:
        # Our own file, written by this worker (never an upload), so loading it is safe.
        model = keras.models.load_model(run_dir / CHECKPOINT)
        history = state["history"][:state["epoch"]]
    else:
        try:
            model = build_model(graph)
        except UserError as exc:
            return _result(RunState.FAILED, exc.message, config, [], started, layer_id=exc.layer_id)
        if request.get("initial_weights"):
            started_from = start_from_imported_weights(model, run_dir)
        head = output_head(graph)
        compile_model(model, config, uses_logits(config.loss, head.activation if head else ""))
    initial_epoch = len(history)

    x_train = arrays["x_train"]
    if state is None:
        adapt_normalization(model, x_train, keep=set(started_from))
    train_data = _batches(x_train, split_targets(arrays, "train", meta, config), config, shuffle=True)
    validation = None
    if len(arrays["y_val"]):
        validation = _batches(arrays["x_val"], split_targets(arrays, "val", meta, config), config, shuffle=False)
    steps_per_epoch = math.ceil(len(x_train) / config.batch_size)
    emit({"type": "started", "epochs": config.epochs, "initial_epoch": initial_epoch,
          "steps_per_epoch": steps_per_epoch, "batch_size": config.batch_size,
          "train_samples": len(x_train), "val_samples": len(arrays["y_val"]),
          "total_params": int(model.count_params()), "resumed": state is not None,
          "initial_weights": started_from, "device": request.get("device", "CPU"),
          "warnings": [i.as_dict() for i in issues]})

    progress = _Progress(emit, should_stop, run_dir, config, steps_per_epoch, history, started)
    progress.checkpoint_epoch = initial_epoch or None
    callbacks: list[keras.callbacks.Callback] = []
    recorder = None
    if config.record_internals:
        # First: it records the last epoch when training ends, before early stopping restores the best weights.
        recorder = InternalsRecorder(run_dir, graph, arrays, meta, config,
                                     bins=int(request.get("histogram_bins", DEFAULT_HISTOGRAM_BINS)),
                                     initial_epoch=initial_epoch)
        callbacks.append(recorder)
    stopper = None
    if config.early_stopping:
        stopper = keras.callbacks.EarlyStopping(
            monitor=config.early_stopping_monitor, patience=config.early_stopping_patience,
            restore_best_weights=config.restore_best_weights)
        callbacks.append(stopper)
    callbacks.append(progress)
    try:
        if should_stop():
            raise _StopTraining(RunState.CANCELLED, "Stopped on request before training began.")
        model.fit(train_data, epochs=config.epochs, initial_epoch=initial_epoch,
                  validation_data=validation, callbacks=callbacks, shuffle=False, verbose=0,
                  class_weight=class_weights(arrays["y_train"], meta) if config.class_weight == "balanced" else None)
    except _StopTraining as stop:
        return _result(stop.state, stop.message, config, history, started,
                       checkpoint_epoch=progress.checkpoint_epoch, **stop.detail)
    finally:
        if recorder is not None:
            recorder.flush()

    early = _early_stopping_detail(stopper)
    try:
        if progress.checkpoint_epoch == len(history) and not early.get("restored_best_weights"):
            _copy_atomically(run_dir / CHECKPOINT, run_dir / FINAL_MODEL)  # the same weights: no second save
        else:
            _save_model(model, run_dir / FINAL_MODEL)
    except OSError as exc:
        return _result(RunState.FAILED, _not_saved("the trained model", exc, progress.checkpoint_epoch), config,
                       history, started, checkpoint_epoch=progress.checkpoint_epoch)
    evaluation = None
    if request.get("evaluate", True):
        evaluation = evaluate_model(model, arrays, meta, config, run_dir=run_dir)
    done = len(history)
    message = f"Trained {plural(done, 'epoch')}."
    if early["stopped_early"]:
        message = (f"Early stopping ended training after epoch {done}: "
                   f"{config.early_stopping_monitor} had not improved for "
                   f"{plural(config.early_stopping_patience, 'epoch')}.")
    return _result(RunState.COMPLETED, message, config, history, started, model=FINAL_MODEL,
                   checkpoint_epoch=progress.checkpoint_epoch, evaluation=evaluation, **early)


def start_from_imported_weights(model: keras.Model, run_dir: Path) -> list[str]:
    """Give the layers whose name and shapes are unchanged the weights the model was imported with (this
    run's own copy, written by LayerLab from the checked import, never the uploaded file)."""
    from app.worker.importing import apply_stored_weights

    keys = json.loads((run_dir / INITIAL_WEIGHTS_KEYS).read_text())
    return apply_stored_weights(model, run_dir / INITIAL_WEIGHTS, keys)


def adapt_normalization(model: keras.Model, x_train: np.ndarray, keep: set[str]) -> None:
    """Each Normalization layer measures the mean and variance of what reaches it from the training split, the
    first ones first (a later one sees the earlier ones' output); layers in `keep` hold imported statistics."""
    from app.worker.internals import single_input

    for layer in model.layers:
        if type(layer).__name__ != "Normalization" or layer.name in keep:
            continue
        reaching = keras.Model(single_input(model), layer.input).predict(x_train, batch_size=256, verbose=0)
        layer.adapt(reaching)


def class_weights(y_train: np.ndarray, meta: DatasetMeta) -> dict[int, float]:
    """"balanced": n_samples / (n_classes * samples of the class), as scikit-learn defines it; a class
    missing from the training split gets weight 1."""
    counts = np.bincount(y_train.astype("int64").reshape(-1), minlength=meta.num_classes)
    total, classes = float(counts.sum()), len(counts)
    return {i: (total / (classes * int(c)) if c else 1.0) for i, c in enumerate(counts)}


def _batches(x: np.ndarray, y: np.ndarray, config: TrainConfig, shuffle: bool) -> tf.data.Dataset:
    """A tf.data pipeline built once: Keras' own numpy path costs ~0.1 s more per epoch."""
    data = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        # A full buffer shuffles perfectly; past SHUFFLE_BUFFER_BYTES it caps the extra memory.
        sample_bytes = max(1, x.nbytes // max(1, len(x)))
        buffer = min(len(x), max(1024, SHUFFLE_BUFFER_BYTES // sample_bytes))
        data = data.shuffle(buffer, seed=config.seed, reshuffle_each_iteration=True)
    return data.batch(config.batch_size).prefetch(tf.data.AUTOTUNE)


def compile_model(model: keras.Model, config: TrainConfig, logits: bool) -> None:
    model.compile(optimizer=make_optimizer(config), loss=make_loss(config.loss, logits),
                  metrics=make_metrics(config, logits),
                  steps_per_execution=config.steps_per_execution)


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=config.learning_rate, momentum=config.momentum)
    optimizer_class = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
                       "rmsprop": keras.optimizers.RMSprop, "adagrad": keras.optimizers.Adagrad,
                       "nadam": keras.optimizers.Nadam}[config.optimizer]
    return optimizer_class(learning_rate=config.learning_rate)


def make_loss(name: str, logits: bool) -> keras.losses.Loss:
    if name == "sparse_categorical_crossentropy":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=logits)
    if name == "categorical_crossentropy":
        return keras.losses.CategoricalCrossentropy(from_logits=logits)
    if name == "binary_crossentropy":
        return keras.losses.BinaryCrossentropy(from_logits=logits)
    return {"mean_squared_error": keras.losses.MeanSquaredError,
            "mean_absolute_error": keras.losses.MeanAbsoluteError,
            "huber": keras.losses.Huber}[name]()


def make_metrics(config: TrainConfig, logits: bool) -> list[keras.metrics.Metric]:
    """Named explicitly, so the logs say `accuracy` whatever form the labels take."""
    metrics: list[keras.metrics.Metric] = []
    for name in config.metrics:
        if name == "accuracy":
            if config.loss == "sparse_categorical_crossentropy":
                metrics.append(keras.metrics.SparseCategoricalAccuracy(name="accuracy"))
            elif config.loss == "categorical_crossentropy":
                metrics.append(keras.metrics.CategoricalAccuracy(name="accuracy"))
            else:  # one output unit: a probability, or a logit whose threshold is 0
                metrics.append(keras.metrics.BinaryAccuracy(name="accuracy",
                                                            threshold=0.0 if logits else 0.5))
        elif name == "mae":
            metrics.append(keras.metrics.MeanAbsoluteError(name="mae"))
        elif name == "mse":
            metrics.append(keras.metrics.MeanSquaredError(name="mse"))
        elif name == "rmse":
            metrics.append(keras.metrics.RootMeanSquaredError(name="rmse"))
    return metrics


class _Progress(keras.callbacks.Callback):
    """Streams events, checks for stop requests and divergence, and checkpoints each epoch."""

    def __init__(self, emit: Emit, should_stop: ShouldStop, run_dir: Path, config: TrainConfig,
                 steps_per_epoch: int, history: list[dict[str, Any]], started: float):
        super().__init__()
        self.emit, self.should_stop, self.run_dir, self.config = emit, should_stop, run_dir, config
        self.steps_per_epoch, self.history, self.started = steps_per_epoch, history, started
        self.epoch = 0
        self.epoch_started = self.epoch_cpu_started = self.last_batch_event = 0.0
        self.last_checkpoint = -math.inf
        self.last_save_s = 0.0
        self.checkpoint_bytes = 0
        self.checkpoint_epoch: int | None = None
        self.epoch_times: list[float] = []
        # The weights and optimizer state after the last finished epoch, kept in memory when its
        # checkpoint was skipped (short epochs), so that a stop mid-epoch can still save that epoch.
        self.unsaved: tuple[int, list[np.ndarray], list[np.ndarray]] | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch, self.epoch_started, self.epoch_cpu_started = epoch, time.monotonic(), time.process_time()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        # With steps_per_execution, Keras names the last step of the chunk, which can run past
        # the end of the epoch (step 40 of 34); the chunk really stopped at the last batch.
        step = min(batch + 1, self.steps_per_epoch)
        self._check_finite(logs, step=step)
        self._check_stop()
        now = time.monotonic()
        if now - self.last_batch_event >= BATCH_EVENT_INTERVAL_S:
            self.last_batch_event = now
            self.emit({"type": "batch", "epoch": self.epoch + 1, "step": step,
                       "steps": self.steps_per_epoch,
                       "global_step": self.epoch * self.steps_per_epoch + step,
                       "loss": clean(logs.get("loss", float("nan"))),
                       "metrics": {k: clean(v) for k, v in logs.items() if k != "loss"}})

    def _typical_epoch_s(self) -> float:
        # The first epoch also pays for tracing the graph (seconds): leave it out once others exist.
        recent = self.epoch_times[1:] if len(self.epoch_times) > 1 else self.epoch_times
        return sum(recent[-5:]) / len(recent[-5:])

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._check_stop()  # validation of a large split must not delay a stop either

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items()}
        self._check_finite(logs, step=None)
        now = time.monotonic()
        took = now - self.epoch_started
        self.epoch_times.append(took)
        done = epoch + 1
        self.history.append({"epoch": done, **{k: clean(v) for k, v in logs.items()},
                             "time_s": round(took, 3)})
        remaining = self.config.epochs - done
        self.emit({"type": "epoch", "epoch": done, "epochs": self.config.epochs,
                   "logs": {k: clean(v) for k, v in logs.items()}, "epoch_s": round(took, 3),
                   "cpu_s": round(time.process_time() - self.epoch_cpu_started, 3),
                   "elapsed_s": round(now - self.started, 3),
                   "eta_s": round(self._typical_epoch_s() * remaining, 1),
                   "best_epoch": best_epoch(self.history), "time": round(time.time(), 3)})
        self._check_disk(done)
        stop_now = self.should_stop()
        last = done >= self.config.epochs or self.model.stop_training or stop_now
        # A save costs tens of milliseconds or more: keep saving to a small share of training time, yet save
        # at least once a minute. A stop in between still saves the last epoch, from `unsaved`.
        interval = min(max(CHECKPOINT_INTERVAL_S, self.last_save_s / CHECKPOINT_SHARE), CHECKPOINT_AT_LEAST_EVERY_S)
        if last or now - self.last_checkpoint >= interval:
            self._checkpoint(done)
        else:
            self.unsaved = (done, [v.numpy() for v in self.model.weights],
                            [v.numpy() for v in self.model.optimizer.variables])
        if stop_now:
            raise _StopTraining(RunState.CANCELLED, f"Stopped on request after epoch {done}; "
                                f"{plural(len(self.history), 'completed epoch')} kept.")

    def _checkpoint(self, done: int) -> None:
        self.unsaved = None
        saving = time.monotonic()
        try:
            _save_model(self.model, self.run_dir / CHECKPOINT)
            # Written second, so the epoch it names is always the one in checkpoint.keras or older.
            write_json(self.run_dir / CHECKPOINT_STATE,
                       {"epoch": done, "epochs": self.config.epochs, "history": self.history,
                        "config": self.config.get_config(), "saved_at": time.time()})
        except OSError as exc:  # a full disk, most likely: the earlier checkpoint is still whole
            raise _StopTraining(RunState.FAILED,
                                _not_saved(f"the checkpoint of epoch {done}", exc, self.checkpoint_epoch)) from exc
        self.last_save_s = time.monotonic() - saving
        self.checkpoint_bytes = (self.run_dir / CHECKPOINT).stat().st_size
        self.last_checkpoint, self.checkpoint_epoch = time.monotonic(), done
        self.emit({"type": "checkpoint", "epoch": done, "path": CHECKPOINT})

    def _check_disk(self, done: int) -> None:
        """A disk too full for the next checkpoint ends the run now, with the reason, rather than at that
        checkpoint: by then the server's records of the epochs between may have filled it."""
        if shutil.disk_usage(self.run_dir).free < self.checkpoint_bytes + DISK_HEADROOM_BYTES:
            full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            raise _StopTraining(RunState.FAILED, _not_saved(f"the checkpoint of epoch {done}", full,
                                                            self.checkpoint_epoch))

    def _check_stop(self) -> None:
        if self.should_stop():
            self._save_last_finished_epoch()
            raise _StopTraining(RunState.CANCELLED, f"Stopped on request during epoch {self.epoch + 1}; "
                                f"{plural(self.checkpoint_epoch or 0, 'completed epoch')} kept.")

    def _save_last_finished_epoch(self) -> None:
        """Checkpoint the epoch kept in memory: the model goes back to its state at that epoch's end."""
        if self.unsaved is None:
            return
        done, weights, optimizer_state = self.unsaved
        for variable, value in zip(self.model.weights, weights, strict=True):
            variable.assign(value)
        for variable, value in zip(self.model.optimizer.variables, optimizer_state, strict=True):
            variable.assign(value)
        self._checkpoint(done)

    def _check_finite(self, logs: dict, step: int | None) -> None:
        for key in ("loss", "val_loss"):
            value = logs.get(key)
            if value is None or math.isfinite(float(value)):
                continue
            where = f"epoch {self.epoch + 1}" + (f", step {step}" if step else "")
            config = self.config
            usual = USUAL_LEARNING_RATE.get(config.optimizer, 0.001)
            raise _StopTraining(
                RunState.DIVERGED,
                f"The {'validation ' if key == 'val_loss' else ''}loss became {float(value)} at "
                f"{where}: training diverged, so it was stopped. Lower the learning rate (it is "
                f"{config.learning_rate:g}; {usual:g} is usual for {config.optimizer}), or check "
                "that the inputs are scaled to small numbers.",
                diverged_at={"epoch": self.epoch + 1, "step": step, "value": str(float(value))})


def _result(state: str, message: str, config: TrainConfig, history: list[dict[str, Any]],
            started: float, **extra: Any) -> dict[str, Any]:
    """The final word on a run. Paths are relative to the run folder."""
    result: dict[str, Any] = {
        "state": state,  # completed, diverged, cancelled or failed
        "message": message,
        "epochs_done": len(history),
        "epochs": config.epochs,
        "history": history,  # one record per finished epoch: epoch, loss, val_loss, ..., time_s
        "elapsed_s": round(time.monotonic() - started, 3),
        "checkpoint_epoch": None,  # the epoch checkpoint.keras holds; resume continues after it
        "model": None,
        "evaluation": None,
        "stopped_early": False,
        "best_epoch": best_epoch(history),  # as the epoch events and the run page name it (early stopping's own)
    }
    result.update(extra)
    result["checkpoint"] = CHECKPOINT if result["checkpoint_epoch"] else None
    return result


def _early_stopping_detail(stopper: keras.callbacks.EarlyStopping | None) -> dict[str, Any]:
    if stopper is None:
        return {"stopped_early": False}
    return {"stopped_early": stopper.stopped_epoch > 0,
            "best_epoch": stopper.best_epoch + 1,
            "restored_best_weights": bool(stopper.restore_best_weights and stopper.best_weights is not None)}


def _read_checkpoint_state(run_dir: Path) -> dict[str, Any] | None:
    state_path = run_dir / CHECKPOINT_STATE
    if not state_path.exists() or not (run_dir / CHECKPOINT).exists():
        return None  # nothing finished yet: a resume starts from the beginning
    return json.loads(state_path.read_text())


def _not_saved(what: str, exc: OSError, kept_epoch: int | None) -> str:
    full = " (the server's disk is full)" if exc.errno == errno.ENOSPC else ""
    kept = f"Epochs up to {kept_epoch} are saved and kept" if kept_epoch else "No epoch could be saved"
    return (f"Could not save {what}: {exc.strerror or exc}{full}. {kept}; once there is space again "
            "(delete old runs or datasets), resume the run.")


def _save_model(model: keras.Model, path: Path) -> None:
    tmp = path.with_name(".tmp-" + path.name)  # Keras insists on the .keras ending
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a partial file would only take the space that is missing
        raise


def _copy_atomically(source: Path, path: Path) -> None:
    tmp = path.with_name(".tmp-" + path.name)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

