"""Real Keras training on small data: events, checkpoints, stop, divergence, resume."""

from __future__ import annotations

import json
import shutil
import time

import pytest

pytest.importorskip("keras")

import itertools

from PIL import Image

from app.core.graph import graph_from_layers
from app.core.starters import STARTERS
from app.worker import train as train_module
from app.worker.train import run_training
from tests.training.runs import Recorder, train

pytestmark = pytest.mark.slow

QUICK = {"epochs": 5, "seed": 1}


def test_dense_starter_learns_digits_and_leaves_a_model_a_checkpoint_and_a_report(digits_dir, tmp_path):
    result, rec = train(STARTERS["dense"].graph(), digits_dir, tmp_path, QUICK)

    assert result["state"] == "completed", result["message"]
    assert result["evaluation"]["metrics"]["accuracy"] >= 0.9
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3, 4, 5]
    assert result["history"][-1]["val_loss"] < result["history"][0]["val_loss"]
    # The final word names the best epoch as the epoch events do (the lowest validation loss).
    assert result["best_epoch"] == min(result["history"], key=lambda h: h["val_loss"])["epoch"]

    progress = [(e["type"], e.get("epoch")) for e in rec.events if e["type"] != "batch"]
    assert progress[0] == ("started", None)
    assert [epoch for kind, epoch in progress if kind == "epoch"] == [1, 2, 3, 4, 5]
    checkpoints = [epoch for kind, epoch in progress if kind == "checkpoint"]
    assert checkpoints[0] == 1 and checkpoints[-1] == 5  # short epochs: at most one a second
    for epoch in checkpoints:  # each right after its epoch's event
        assert progress[progress.index(("checkpoint", epoch)) - 1] == ("epoch", epoch)
    started = rec.of("started")[0]
    assert (started["epochs"], started["steps_per_epoch"], started["initial_epoch"]) == (5, 34, 0)
    epoch = rec.of("epoch")[-1]
    assert epoch["epoch"] == 5 and epoch["eta_s"] == 0
    assert all(0 < e["cpu_s"] for e in rec.of("epoch"))  # the process's CPU seconds in the epoch, all threads
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(epoch["logs"])
    batches = rec.of("batch")
    assert batches and all(b["loss"] is not None for b in batches)
    for batch in batches:
        assert 1 <= batch["step"] <= batch["steps"] == 34, batch
        assert batch["global_step"] == (batch["epoch"] - 1) * 34 + batch["step"], batch

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.json", "checkpoint.keras", "epoch-weights.npz", "internals.json", "model.keras",
        "predictions.png"]  # the last two: what was recorded inside (tests/training/test_recording.py)
    assert json.loads((tmp_path / "checkpoint.json").read_text())["epoch"] == 5

    report = result["evaluation"]
    matrix = report["confusion_matrix"]["matrix"]
    assert sum(map(sum, matrix)) == report["test_samples"] == 360
    assert [c["support"] for c in report["per_class"]] == [sum(row) for row in matrix]
    samples = report["samples"]
    mistakes = [s for s in samples if not s["correct"]]
    assert len(samples) == 24 and samples[:len(mistakes)] == mistakes
    assert [s["confidence"] for s in mistakes] == sorted((s["confidence"] for s in mistakes), reverse=True)
    with Image.open(tmp_path / "predictions.png") as grid:
        assert grid.size[0] > 6 * 64 and grid.size[1] > 4 * 64


@pytest.fixture(scope="module")
def cancelled_run(digits_dir, tmp_path_factory):
    """Twenty epochs asked for; stop requested at the first batch of epoch 3.

    Checkpoints are spaced out so that epoch 2 is not saved when it ends (as happens when epochs
    are shorter than a save): the stop must still keep it, since it reports it as kept.
    """
    run_dir = tmp_path_factory.mktemp("cancelled")
    epochs_seen: list[int] = []
    asked: list[float] = []

    def should_stop() -> bool:
        if len(epochs_seen) < 2:
            return False
        asked.append(time.monotonic())
        return len(asked) > 1  # the first ask is at the end of epoch 2; then epoch 3 begins

    rec = Recorder()

    def emit(event):
        rec(event)
        if event["type"] == "epoch":
            epochs_seen.append(event["epoch"])

    request = {"graph": STARTERS["dense"].graph().model_dump(), "dataset_dir": str(digits_dir),
               "config": {"epochs": 20, "seed": 1}, "run_dir": str(run_dir)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "CHECKPOINT_INTERVAL_S", 1e9)  # only epoch 1 is saved as it ends
        result = run_training(request, emit, should_stop)
    return result, rec, time.monotonic() - asked[1], run_dir


def test_stop_request_cancels_within_a_second_and_keeps_finished_epochs(cancelled_run):
    result, rec, latency, run_dir = cancelled_run
    assert result["state"] == "cancelled"
    assert latency < 1.0
    assert result["epochs_done"] == 2 and [h["epoch"] for h in result["history"]] == [1, 2]
    assert "during epoch 3; 2 completed epochs kept" in result["message"]
    assert rec.of("epoch")[-1]["epoch"] == 2 and rec.of("batch")[-1]["epoch"] <= 3
    assert not (run_dir / "model.keras").exists()
    # Every epoch it reports as kept is saved, although its checkpoint was skipped when it ended.
    assert result["checkpoint_epoch"] == 2 and result["checkpoint"] == "checkpoint.keras"
    assert json.loads((run_dir / "checkpoint.json").read_text())["epoch"] == 2
    assert [e["epoch"] for e in rec.of("checkpoint")] == [1, 2]


def test_a_stop_mid_epoch_saves_the_weights_of_the_last_finished_epoch(cancelled_run, digits_dir):
    """Not the half-trained weights of epoch 3: the checkpoint scores epoch 2's validation loss."""
    import keras

    from app.data.prepared import read_arrays

    result, _, _, run_dir = cancelled_run
    arrays = read_arrays(digits_dir)
    model = keras.models.load_model(run_dir / "checkpoint.keras")
    val_loss = model.evaluate(arrays["x_val"], arrays["y_val"], verbose=0, return_dict=True)["loss"]
    assert val_loss == pytest.approx(result["history"][1]["val_loss"], rel=1e-4)


def test_stop_at_the_end_of_an_epoch_checkpoints_that_epoch(blobs_dir, tmp_path):
    stop_after_three = {"epochs": 0}

    def should_stop() -> bool:
        return stop_after_three["epochs"] >= 3

    rec = Recorder()

    def emit(event):
        rec(event)
        if event["type"] == "epoch":
            stop_after_three["epochs"] = event["epoch"]

    request = {"graph": _blobs_model().model_dump(), "dataset_dir": str(blobs_dir),
               "config": {"epochs": 50}, "run_dir": str(tmp_path)}
    result = run_training(request, emit, should_stop)
    assert (result["state"], result["epochs_done"], result["checkpoint_epoch"]) == ("cancelled", 3, 3)
    assert "after epoch 3" in result["message"]
    assert rec.events[-1] == {"type": "checkpoint", "epoch": 3, "path": "checkpoint.keras"}


def test_resume_continues_from_the_checkpoint_at_the_next_epoch(cancelled_run, digits_dir, tmp_path):
    first, _, _, cancelled_dir = cancelled_run
    saved = first["checkpoint_epoch"]
    run_dir = tmp_path / "run"
    shutil.copytree(cancelled_dir, run_dir)
    result, rec = train(STARTERS["dense"].graph(), digits_dir, run_dir, {"epochs": 4, "seed": 1},
                        resume=True)
    assert result["state"] == "completed", result["message"]
    started = rec.of("started")[0]
    assert saved == first["epochs_done"] == 2  # it continues right after the last epoch it reported
    assert started["resumed"] and started["initial_epoch"] == saved
    assert [e["epoch"] for e in rec.of("epoch")] == list(range(saved + 1, 5))
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3, 4]
    assert result["history"][:saved] == first["history"][:saved]
    # The optimizer state came back with the weights: the loss keeps falling after the checkpoint.
    assert result["history"][saved]["loss"] < first["history"][saved - 1]["loss"]
    assert result["evaluation"]["metrics"]["accuracy"] >= 0.9


def test_resume_without_a_checkpoint_starts_from_the_first_epoch(blobs_dir, tmp_path):
    result, rec = train(_blobs_model(), blobs_dir, tmp_path, {"epochs": 1}, resume=True)
    assert result["state"] == "completed"
    assert not rec.of("started")[0]["resumed"] and result["epochs_done"] == 1


def test_huge_learning_rate_diverges_at_once_and_says_what_to_change(digits_dir, tmp_path):
    config = {"optimizer": "sgd", "learning_rate": 1e6, "epochs": 5, "seed": 1}
    result, rec = train(STARTERS["dense"].graph(), digits_dir, tmp_path, config)
    assert result["state"] == "diverged"
    assert result["epochs_done"] == 0 and result["diverged_at"]["epoch"] == 1
    assert "Lower the learning rate (it is 1e+06; 0.01 is usual for sgd)" in result["message"]
    assert rec.of("epoch") == [] and not (tmp_path / "model.keras").exists()
    warnings = rec.of("started")[0]["warnings"]
    assert [w["field"] for w in warnings] == ["learning_rate"]


def test_batch_events_are_throttled_but_keep_coming(digits_dir, tmp_path):
    config = {"epochs": 2, "batch_size": 4, "steps_per_execution": 1, "seed": 1}
    result, rec = train(STARTERS["dense"].graph(), digits_dir, tmp_path, config)
    assert result["state"] == "completed"
    batch_times = [t for t, e in zip(rec.times, rec.events) if e["type"] == "batch"]
    gaps = [b - a for a, b in itertools.pairwise(batch_times)]
    assert min(gaps) >= 0.25  # at most four a second, although 270 steps run in a second or two
    second_epoch = [e for e in rec.of("batch") if e["epoch"] == 2]
    steps = [e["step"] for e in second_epoch]
    assert steps == sorted(steps) and all(e["steps"] == 270 for e in second_epoch)
    assert [e["global_step"] for e in rec.of("batch")] == sorted(e["global_step"] for e in rec.of("batch"))
    assert second_epoch  # and they keep coming (their rate on a loaded machine is no test)


def test_a_mismatched_model_is_refused_before_training(regression_dir, tmp_path):
    result, rec = train(STARTERS["dense"].graph(), regression_dir, tmp_path, {"loss": "huber",
                                                                              "metrics": ["mae"]})
    assert result["state"] == "failed"
    assert "Set the Input shape to 8" in result["message"]
    assert rec.events == [] and list(tmp_path.iterdir()) == []


def test_early_stopping_ends_the_run_and_reports_the_best_epoch(blobs_dir, tmp_path):
    # Patience 0 on the training loss of a tiny, noisy run stops at the first epoch that is no better.
    config = {"epochs": 60, "early_stopping": True, "early_stopping_monitor": "loss",
              "early_stopping_patience": 0, "optimizer": "sgd", "learning_rate": 0.5, "batch_size": 8}
    result, _ = train(_blobs_model(), blobs_dir, tmp_path, config)
    assert result["state"] == "completed" and result["stopped_early"]
    assert result["epochs_done"] < 60 and "Early stopping ended training" in result["message"]
    assert 1 <= result["best_epoch"] < result["epochs_done"]


def _blobs_model():
    return graph_from_layers([("Input", {"shape": [2]}), ("Dense", {"units": 16, "activation": "relu"}),
                              ("Dense", {"units": 3, "activation": "softmax"})])


def test_a_chunk_of_steps_that_ends_the_epoch_reports_the_last_step(tmp_path):
    # 34 steps in chunks of 8: Keras names step 40 as the end of the fifth chunk.
    from app.core.training import TrainConfig
    from app.worker.train import _Progress

    rec = Recorder()
    progress = _Progress(rec, lambda: False, tmp_path, TrainConfig(), 34, [], time.monotonic())
    progress.on_epoch_begin(1)
    progress.on_train_batch_end(39, {"loss": 0.5, "accuracy": 0.75})
    assert rec.events == [{"type": "batch", "epoch": 2, "step": 34, "steps": 34, "global_step": 68,
                           "loss": 0.5, "metrics": {"accuracy": 0.75}}]
