"""Training with target input (an autoencoder): suggested for a model whose output is shaped like the data, and
refused with the reason when the output shape, the loss, the metrics or the class weights cannot fit it."""

from __future__ import annotations

import json

from app.core.compare import settings_changes
from app.core.graph import graph_from_layers
from app.core.starters import STARTERS
from app.core.training import TrainConfig, check_training, stored_config, suggested_for
from app.data.prepared import DatasetMeta

DIGITS = DatasetMeta(name="digits", kind="image", task="classification", input_shape=[28, 28, 1],
                     class_names=[str(i) for i in range(10)], split_sizes={"train": 1078, "val": 359, "test": 360})
RECONSTRUCT = TrainConfig(target="input", loss="mean_squared_error", metrics=["mae"])


def errors(graph, config):
    return [(i.field, i.layer_id, i.message) for i in check_training(graph, DIGITS, config) if i.severity == "error"]


def test_the_autoencoder_starter_is_suggested_target_input_and_fits():
    graph = STARTERS["autoencoder"].graph()
    suggested = suggested_for(graph, DIGITS)
    assert (suggested.target, suggested.loss, suggested.metrics) == ("input", "mean_squared_error", ["mae"])
    assert errors(graph, suggested) == []
    assert suggested_for(STARTERS["convnet"].graph(), DIGITS).target == "labels"
    # Dense layers ending in one unit keep a one-channel image's shape, but squeeze nothing: not an autoencoder
    dense_on_pixels = graph_from_layers([("Input", {"shape": [28, 28, 1]}), ("Dense", {"units": 32}),
                                         ("Dense", {"units": 1})])
    assert suggested_for(dense_on_pixels, DIGITS).target == "labels"


def test_an_output_of_another_shape_is_refused_at_the_output_layer():
    graph = graph_from_layers([("Input", {"shape": [28, 28, 1]}), ("Conv2D", {"filters": 1}),
                               ("Activation", {"activation": "sigmoid"})])
    ((field, layer_id, message),) = errors(graph, RECONSTRUCT)
    assert (field, layer_id) == ("target", "n3")
    assert "must have the input's shape (None, 28, 28, 1); activation gives (None, 26, 26, 1)" in message


def test_label_losses_accuracy_class_weights_and_val_accuracy_are_refused_by_name():
    graph = STARTERS["autoencoder"].graph()
    config = TrainConfig(target="input", loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                         class_weight="balanced", early_stopping=True, early_stopping_monitor="val_accuracy")
    assert [field for field, _, _ in errors(graph, config)] == ["loss", "metrics", "class_weight",
                                                               "early_stopping_monitor"]
    assert "binary_crossentropy for values between 0 and 1" in errors(graph, config)[0][2]


def test_an_image_shaped_output_trained_on_labels_is_told_about_target_input():
    graph = STARTERS["autoencoder"].graph()
    ((_, _, message),) = [e for e in errors(graph, TrainConfig()) if e[1]]
    assert "set the training setting target to input" in message


def test_a_run_stored_before_target_existed_reads_as_labels_and_nothing_changed():
    old = json.dumps({k: v for k, v in TrainConfig().get_config().items() if k != "target"})
    assert stored_config(old)["target"] == "labels"
    assert settings_changes(stored_config(old), TrainConfig().get_config()) == []

