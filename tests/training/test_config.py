"""Training settings and fit checks: pure Python, what the web process sees before any worker."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from app.core.errors import UserError
from app.core.graph import add_layer
from app.core.starters import STARTERS
from app.core.training import (
    GROUPS,
    TRAIN_PARAMS,
    TrainConfig,
    check_fit,
    check_training,
    coerce_setting,
    default_config,
    output_head,
    settings_schema,
)
from app.data.prepared import DatasetMeta

DIGITS = DatasetMeta(name="digits", kind="image", task="classification", input_shape=[28, 28, 1],
                     class_names=[str(i) for i in range(10)],
                     split_sizes={"train": 1078, "val": 359, "test": 360})
YESNO = DatasetMeta(name="moons", kind="points2d", task="classification", input_shape=[2],
                    class_names=["no", "yes"])
PRICES = DatasetMeta(name="prices", kind="table", task="regression", input_shape=[8],
                     target_name="price")


def test_every_setting_has_help_a_group_and_a_default_within_its_bounds():
    grouped = [name for names in GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(p.name for p in TRAIN_PARAMS)
    for param in TRAIN_PARAMS:
        assert param.help and param.help.endswith("."), param.name
        assert coerce_setting(param.name, param.default) == param.default
    schema = settings_schema()
    assert all(entry["allowed"] and entry["group"] for entry in schema)
    assert {"loss", "optimizer", "learning_rate", "batch_size", "epochs", "early_stopping",
            "metrics", "seed", "steps_per_execution", "momentum"} <= {e["name"] for e in schema}
    json.dumps(schema)


def test_config_round_trips_through_get_config_and_json():
    config = TrainConfig(loss="huber", optimizer="sgd", momentum=0.9, metrics=["mae", "rmse"],
                         early_stopping=True, seed=None)
    assert TrainConfig.from_config(config.get_config()) == config
    assert TrainConfig.model_validate_json(config.model_dump_json()) == config
    assert TrainConfig.from_config(config.get_config()).get_config() == config.get_config()


def test_form_strings_are_coerced():
    config = TrainConfig.from_values({"learning_rate": "0.01", "epochs": "3", "early_stopping": "on",
                                      "metrics": "accuracy, mae, accuracy", "seed": ""})
    assert (config.learning_rate, config.epochs, config.early_stopping) == (0.01, 3, True)
    assert config.metrics == ["accuracy", "mae"] and config.seed is None


@pytest.mark.parametrize("name,value,expected", [
    ("learning_rate", 0, "Invalid value received for `learning_rate`. Expected a number from 1e-07 up "
                         "to 1000000. Received: learning_rate=0"),
    ("batch_size", 5000, "Invalid value received for `batch_size`. Expected an integer between 1 and "
                         "4096. Received: batch_size=5000"),
    ("epochs", "many", "Invalid value received for `epochs`. Expected an integer between 1 and 1000. "
                       "Received: epochs='many'"),
    ("optimizer", "lbfgs", "Invalid value received for `optimizer`. Expected one of adam, adamw, sgd, "
                           "rmsprop, adagrad, nadam. Received: optimizer='lbfgs'"),
    ("metrics", ["accuracy", "f1"], "Invalid value received for `metrics`. Expected a list of any of "
                                    "accuracy, mae, mse, rmse. Received: metrics=['accuracy', 'f1']"),
    ("steps_per_execution", 0, "Invalid value received for `steps_per_execution`. Expected an integer "
                               "between 1 and 256. Received: steps_per_execution=0"),
    ("lr", 0.1, "Training has no setting `lr`. Its settings are: target, loss, optimizer, learning_rate,"),
])
def test_bad_settings_are_refused_in_keras_wording(name, value, expected):
    with pytest.raises(UserError) as info:
        TrainConfig.from_values({name: value})
    assert info.value.message.startswith(expected)
    assert info.value.field == name


def test_json_body_errors_name_the_field():
    with pytest.raises(ValidationError) as info:
        TrainConfig.model_validate({"batch_size": 0, "learning_rate": 1e7, "shuffle": True})
    locations = {error["loc"][0] for error in info.value.errors()}
    assert locations == {"batch_size", "learning_rate", "shuffle"}
    assert "Expected an integer between 1 and 4096" in str(info.value)


def test_default_config_follows_the_task_and_the_output():
    assert default_config(DIGITS).loss == "sparse_categorical_crossentropy"
    assert default_config(DIGITS).metrics == ["accuracy"]
    assert default_config(YESNO, output_units=1).loss == "binary_crossentropy"
    assert default_config(YESNO, output_units=2).loss == "sparse_categorical_crossentropy"
    regression = default_config(PRICES)
    assert (regression.loss, regression.metrics) == ("mean_squared_error", ["mae"])
    assert check_fit(10, "softmax", DIGITS, default_config(DIGITS)) == []
    assert check_fit(1, "sigmoid", YESNO, default_config(YESNO, 1)) == []
    assert check_fit(1, "linear", PRICES, regression) == []


def _only(issues, severity, field):
    assert len(issues) == 1, [i.message for i in issues]
    assert (issues[0].severity, issues[0].field) == (severity, field), issues[0].message
    return issues[0].message


def test_output_units_must_match_the_classes():
    message = _only(check_fit(8, "softmax", DIGITS, TrainConfig(), layer_id="n5"), "error", "units")
    assert "has 8 units, but digits has 10 classes (0, 1, 2, 3, 4, ...)" in message
    assert "Set its units to 10" in message
    issue = check_fit(8, "softmax", DIGITS, TrainConfig(), layer_id="n5")[0]
    assert issue.layer_id == "n5"


def test_one_unit_with_sparse_cross_entropy_on_two_classes_points_to_binary():
    message = _only(check_fit(1, "sigmoid", YESNO, TrainConfig()), "error", "loss")
    assert "needs one output unit per class (2); the output layer has 1" in message
    assert "binary_crossentropy" in message


def test_softmax_with_a_regression_loss_on_class_labels_is_refused():
    message = _only(check_fit(10, "softmax", DIGITS, TrainConfig(loss="mean_squared_error")),
                    "error", "loss")
    assert "mean_squared_error" in message and "class labels (0 to 9)" in message
    assert "sparse_categorical_crossentropy with 10 softmax units" in message


def test_binary_cross_entropy_with_more_than_two_classes_is_refused():
    message = _only(check_fit(1, "sigmoid", DIGITS, TrainConfig(loss="binary_crossentropy")),
                    "error", "loss")
    assert "binary_crossentropy is for two classes, but digits has 10 classes" in message


def test_binary_cross_entropy_needs_one_unit_and_not_softmax():
    config = TrainConfig(loss="binary_crossentropy")
    assert "one output unit (the probability of 'yes'); the output layer has 2" in \
        _only(check_fit(2, "softmax", YESNO, config), "error", "units")
    assert "softmax over a single unit always outputs 1" in \
        _only(check_fit(1, "softmax", YESNO, config), "error", "activation")


def test_sigmoid_over_many_classes_is_a_warning():
    message = _only(check_fit(10, "sigmoid", DIGITS, TrainConfig()), "warning", "activation")
    assert "sigmoid scores each of the 10 classes on its own" in message and "softmax" in message


def test_categorical_cross_entropy_on_class_numbers_is_one_hot_encoded_with_a_warning():
    message = _only(check_fit(10, "softmax", DIGITS, TrainConfig(loss="categorical_crossentropy")),
                    "warning", "loss")
    assert "one-hot encodes them for you" in message


@pytest.mark.parametrize("loss,meta,units", [("sparse_categorical_crossentropy", DIGITS, 10),
                                             ("binary_crossentropy", YESNO, 1)])
def test_linear_output_with_cross_entropy_warns_about_logits(loss, meta, units):
    message = _only(check_fit(units, "linear", meta, TrainConfig(loss=loss)), "warning", "activation")
    assert "from_logits=True" in message


def test_regression_refuses_cross_entropy_softmax_and_many_units():
    assert "target (price) is a number" in _only(check_fit(1, "linear", PRICES, TrainConfig(
        loss="sparse_categorical_crossentropy", metrics=[])), "error", "loss")
    assert "Use linear on the output layer" in _only(check_fit(1, "softmax", PRICES, TrainConfig(
        loss="mean_squared_error", metrics=[])), "error", "activation")
    assert "gives 3 numbers per sample" in _only(check_fit(3, "linear", PRICES, TrainConfig(
        loss="huber", metrics=[])), "error", "units")
    assert "between 0 and 1" in _only(check_fit(1, "sigmoid", PRICES, TrainConfig(
        loss="huber", metrics=[])), "warning", "activation")
    assert "Remove accuracy" in _only(check_fit(1, "linear", PRICES, TrainConfig(
        loss="huber", metrics=["accuracy"])), "error", "metrics")


def test_settings_that_do_not_fit_together():
    watch_accuracy = TrainConfig(early_stopping=True, early_stopping_monitor="val_accuracy", metrics=[])
    assert "accuracy is not among the metrics" in \
        _only(check_fit(10, "softmax", DIGITS, watch_accuracy), "error", "early_stopping_monitor")
    assert "far above the usual range" in \
        _only(check_fit(10, "softmax", DIGITS, TrainConfig(learning_rate=1e6)), "warning", "learning_rate")
    assert "momentum applies to sgd only" in \
        _only(check_fit(10, "softmax", DIGITS, TrainConfig(momentum=0.9)), "warning", "momentum")
    assert "larger than the 1078 training samples" in \
        _only(check_fit(10, "softmax", DIGITS, TrainConfig(batch_size=2048)), "warning", "batch_size")
    assert "mae compares the target with the output" in _only(check_fit(
        10, "softmax", DIGITS, TrainConfig(metrics=["accuracy", "mae"])), "error", "metrics")


def test_output_head_and_input_checks_read_the_graph():
    graph = STARTERS["dense"].graph()
    head = output_head(graph)
    assert (head.units, head.activation) == (10, "softmax")
    graph, _ = add_layer(graph, "Dropout", {"rate": 0.2})
    assert output_head(graph).activation == "softmax"  # Dropout passes the softmax through
    assert check_training(graph, DIGITS, TrainConfig()) == []
    issues = check_training(STARTERS["regression"].graph(), DIGITS, TrainConfig())
    shape = [i for i in issues if i.field == "shape"]
    assert shape and "Set the Input shape to 28,28,1" in shape[0].message
    assert any(i.field == "units" for i in issues)


def test_the_web_process_can_import_training_settings_without_numpy_or_tensorflow():
    code = ("import sys, app.core.training; "
            "print(sorted(m for m in ('numpy', 'tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_balanced_class_weights_count_rare_classes_more():
    import numpy as np

    from app.data.prepared import DatasetMeta
    from app.worker.train import class_weights

    meta = DatasetMeta(name="three", kind="table", task="classification", input_shape=[2],
                       class_names=["a", "b", "c"])
    weights = class_weights(np.array([0, 0, 0, 1]), meta)
    assert weights == {0: 4 / (3 * 3), 1: 4 / (3 * 1), 2: 1.0}  # c is missing from the split: weight 1
