"""Internals recorded during real training: the records match what plain Keras computes, known-dead and
known-saturated layers are measured as such, the weights kept per epoch replay to the same records, a
resumed run keeps what it had, and the 2-D pictures are drawn from the kept weights."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from app.core.errors import UserError
from app.core.internals import PROBE_SAMPLES, kept_epochs, read_internals
from app.core.runs import EPOCH_WEIGHTS, INTERNALS, REPLAYED_INTERNALS
from app.core.training import TrainConfig
from app.data.prepared import read_arrays, read_meta
from app.worker import recording
from app.worker.build import build_model
from app.worker.evaluate import prepare_targets
from app.worker.internals import single_input
from app.worker.plane import plane_png
from app.worker.recording import Probe, read_snapshot, replay
from app.worker.train import compile_model
from tests.factories import stack
from tests.training.runs import train

pytestmark = pytest.mark.slow


def playground(first_activation: str = "relu", initializer: str = "glorot_uniform"):
    return stack(("Input", {"shape": [2]}),
                 ("Dense", {"units": 8, "activation": first_activation, "kernel_initializer": initializer}),
                 ("Dense", {"units": 6, "activation": "tanh"}),
                 ("Dense", {"units": 3, "activation": "softmax"}))


@pytest.fixture(scope="module")
def blobs_run(blobs_dir, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("blobs-run")
    result, _ = train(playground(), blobs_dir, run_dir, {"epochs": 6, "seed": 3})
    assert result["state"] == "completed", result["message"]
    return run_dir, read_internals(run_dir / INTERNALS)


def test_a_run_records_its_start_and_its_last_epoch_for_every_layer_with_weights(blobs_run, blobs_dir):
    run_dir, data = blobs_run
    epochs = [r["epoch"] for r in data["records"]]
    assert epochs[0] == 0 and epochs[-1] == 6 and epochs == sorted(set(epochs))
    assert [(layer["id"], layer["activation"], layer["watch"], layer["hidden"]) for layer in data["layers"]] == [
        ("n2", "relu", "dead", True), ("n3", "tanh", "saturated", True), ("n4", "softmax", None, False)]
    probe_size = min(PROBE_SAMPLES, len(read_arrays(blobs_dir)["y_val"]))
    assert data["probe"] == {"split": "validation", "samples": probe_size} and data["bins"] == 30
    first = data["records"][0]["layers"]
    assert sum(first["n2"]["weights"]["counts"]) == 2 * 8  # the kernel, every value binned once
    assert sum(first["n2"]["activations"]["counts"]) == probe_size * 8
    assert {"dead", "gradient_norm"} <= set(first["n2"]) and "saturated" in first["n3"]
    assert "gradient_norm" in first["n4"] and "dead" not in first["n4"]
    assert kept_epochs(run_dir) == list(range(7))  # a tiny model keeps every epoch


def test_the_first_record_equals_plain_keras_on_the_same_weights_and_samples(blobs_run, blobs_dir):
    run_dir, data = blobs_run
    graph = playground()
    config = TrainConfig(epochs=6, seed=3)
    model = build_model(graph)
    compile_model(model, config, logits=False)
    model.set_weights(read_snapshot(run_dir, 0))
    arrays, meta = read_arrays(blobs_dir), read_meta(blobs_dir)
    x = arrays["x_val"][:PROBE_SAMPLES]
    y = prepare_targets(arrays["y_val"][:PROBE_SAMPLES], meta, config)
    with tf.GradientTape() as tape:
        predicted = keras.Model(single_input(model), model.output)(x, training=False)
        loss = keras.losses.SparseCategoricalCrossentropy()(y, predicted)
    gradients = dict(zip([v.path for v in model.trainable_weights],
                         tape.gradient(loss, model.trainable_weights), strict=True))
    first = data["records"][0]["layers"]
    for node_id, name in (("n2", "dense"), ("n3", "dense_1"), ("n4", "dense_2")):
        expected = np.sqrt(sum(float(np.sum(np.square(g))) for path, g in gradients.items()
                               if path.startswith(name + "/")))
        assert first[node_id]["gradient_norm"] == pytest.approx(expected, rel=1e-4), node_id
    relu_out = np.asarray(keras.Model(single_input(model), model.get_layer("dense").output)(x))
    assert first["n2"]["dead"] == pytest.approx(1 - (relu_out > 0).any(axis=0).mean())
    assert first["n2"]["activations"]["high"] == pytest.approx(relu_out.max(), rel=1e-5)
    kernel = model.get_layer("dense").kernel.numpy()
    assert first["n2"]["weights"]["mean"] == pytest.approx(kernel.mean(), abs=1e-6)


def test_replayed_records_equal_the_ones_taken_during_training(blobs_run, blobs_dir):
    run_dir, data = blobs_run
    last = data["records"][-1]
    replayed = replay({"run_dir": str(run_dir), "dataset_dir": str(blobs_dir),
                       "graph": playground().model_dump(), "config": {"epochs": 6, "seed": 3}, "bins": 30,
                       "epochs": [last["epoch"], 99]})
    assert [r["epoch"] for r in replayed] == [last["epoch"]]  # epoch 99 was never kept: skipped
    for node_id, live in last["layers"].items():
        again = replayed[0]["layers"][node_id]
        assert again["weights"]["counts"] == live["weights"]["counts"], node_id
        assert again["activations"]["counts"] == live["activations"]["counts"], node_id
        assert again["activations"]["mean"] == pytest.approx(live["activations"]["mean"], abs=1e-5)
    assert (run_dir / REPLAYED_INTERNALS).exists() and read_internals(run_dir / INTERNALS) == data


def test_zero_weights_make_every_relu_unit_dead_and_large_inputs_saturate_tanh(blobs_dir, tmp_path):
    graph = stack(("Input", {"shape": [2]}),
                  ("Dense", {"units": 8, "activation": "relu", "kernel_initializer": "zeros"}),
                  ("Dense", {"units": 8, "activation": "tanh", "kernel_initializer": "ones"}),
                  ("Dense", {"units": 3, "activation": "softmax"}))
    stacked = stack(("Input", {"shape": [2]}), ("Dense", {"units": 8, "activation": "tanh",
                                                          "kernel_initializer": "ones"}),
                    ("Dense", {"units": 3, "activation": "softmax"}))
    result, _ = train(graph, blobs_dir, tmp_path / "dead", {"epochs": 1, "seed": 1, "learning_rate": 1e-7})
    assert result["state"] == "completed"
    first = read_internals(tmp_path / "dead" / INTERNALS)["records"][0]["layers"]
    assert first["n2"]["dead"] == 1.0  # zero weights and zero bias: every output is 0
    result, _ = train(stacked, blobs_dir, tmp_path / "tanh", {"epochs": 1, "seed": 1})  # blobs lie within +-10
    x = read_arrays(blobs_dir)["x_val"][:PROBE_SAMPLES]
    expected = float((np.abs(np.tanh(x.sum(axis=1))) >= 0.96).mean())  # ones and zero bias: tanh(x + y)
    first = read_internals(tmp_path / "tanh" / INTERNALS)["records"][0]["layers"]
    assert first["n2"]["saturated"] == pytest.approx(expected) and expected > 0.5


def test_recording_off_writes_nothing_and_a_resumed_run_keeps_its_earlier_records(blobs_dir, tmp_path, monkeypatch):
    # Every epoch's weights fit the budget, whatever the host's speed: what is kept depends on the resume alone
    monkeypatch.setattr(recording, "SNAPSHOT_BUDGET", 1.0)
    result, _ = train(playground(), blobs_dir, tmp_path / "off", {"epochs": 2, "record_internals": False})
    assert result["state"] == "completed"
    assert not (tmp_path / "off" / INTERNALS).exists() and not (tmp_path / "off" / EPOCH_WEIGHTS).exists()

    run_dir = tmp_path / "resumed"
    train(playground(), blobs_dir, run_dir, {"epochs": 3, "seed": 2})
    before = read_internals(run_dir / INTERNALS)["records"]
    result, _ = train(playground(), blobs_dir, run_dir, {"epochs": 5, "seed": 2}, resume=True)
    assert result["state"] == "completed"
    after = read_internals(run_dir / INTERNALS)["records"]
    assert after[:len(before)] == before and after[-1]["epoch"] == 5
    assert kept_epochs(run_dir) == list(range(6))


def test_the_decision_boundary_and_the_units_are_drawn_at_any_kept_epoch(blobs_run, blobs_dir):
    run_dir, _ = blobs_run
    payload = {"query": "boundary", "run_dir": str(run_dir), "dataset_dir": str(blobs_dir),
               "graph": playground().model_dump(), "model": "model.keras", "epoch": 0,
               "task": "classification", "logits": False, "max_channels": 4}
    start = plane_png(payload)
    end = plane_png({**payload, "epoch": None})
    assert start["epoch"] == "0" and end["epoch"] == "6" and start["path"] != end["path"]
    with Image.open(start["path"]) as first, Image.open(end["path"]) as last:
        assert first.size == (300, 300) and np.asarray(first).tolist() != np.asarray(last).tolist()
    again = plane_png(payload)
    assert again == start  # drawn once, then read from the cache
    units = plane_png({**payload, "query": "units", "layer_id": "n2", "layer_name": "dense"})
    assert (units["shown"], units["total"], units["epoch"]) == ("4", "8", "0")
    with pytest.raises(UserError, match="no weights of epoch 40"):
        plane_png({**payload, "epoch": 40})


def test_the_recorded_file_is_strict_json(blobs_run):
    run_dir, _ = blobs_run
    json.loads((run_dir / INTERNALS).read_text(), parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))


def test_weights_that_are_not_numbers_still_give_a_strict_json_record(blobs_dir):
    graph, config = playground(), TrainConfig()
    model = build_model(graph)
    compile_model(model, config, logits=False)
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])  # as after a diverged step
    probe = Probe(model, graph, read_arrays(blobs_dir), read_meta(blobs_dir), config, bins=10)
    record = probe.record(0)
    json.dumps(record, allow_nan=False)
    first = record["layers"]["n2"]
    assert first["gradient_norm"] is None and first["weights"]["nonfinite"] == 16
    assert first["weights"]["counts"] == [0] * 10 and first["weights"]["mean"] is None


def test_a_frozen_layer_shows_its_weights_without_a_gradient(blobs_dir, tmp_path):
    graph = stack(("Input", {"shape": [2]}), ("Dense", {"units": 8, "activation": "relu", "trainable": False}),
                  ("Dense", {"units": 6, "activation": "tanh"}), ("Dense", {"units": 3, "activation": "softmax"}))
    result, _ = train(graph, blobs_dir, tmp_path / "frozen", {"epochs": 2, "seed": 5})
    assert result["state"] == "completed"
    data = read_internals(tmp_path / "frozen" / INTERNALS)
    first, last = data["records"][0]["layers"], data["records"][-1]["layers"]
    assert "weights" in first["n2"] and "gradient_norm" not in first["n2"] and "gradient_norm" in first["n3"]
    assert first["n2"]["weights"] == last["n2"]["weights"]  # frozen: the same histogram at the end
