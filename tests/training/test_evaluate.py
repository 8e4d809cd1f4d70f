"""Testing on the held-out split: reports per task, the playground grid, and the numbers behind them."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("keras")

from app.core.graph import graph_from_layers
from app.core.starters import STARTERS
from app.core.training import TrainConfig
from app.data.prepared import read_arrays, read_meta
from app.worker.build import build_model
from app.worker.evaluate import _classification_report, class_probabilities, evaluate_model
from app.worker.train import compile_model
from tests.training.datasets import write_blobs, write_regression
from tests.training.runs import train

pytestmark = pytest.mark.slow


def _points_model(units: int, activation: str):
    return graph_from_layers([("Input", {"shape": [2]}), ("Dense", {"units": 16, "activation": "relu"}),
                              ("Dense", {"units": units, "activation": activation})])


def test_points2d_classification_gets_a_decision_boundary_grid(blobs_dir, tmp_path):
    result, _ = train(_points_model(3, "softmax"), blobs_dir, tmp_path,
                      {"epochs": 8, "batch_size": 16, "learning_rate": 0.03})
    assert result["state"] == "completed"
    report = result["evaluation"]
    assert report["accuracy"] >= 0.9
    grid = report["decision_boundary"]
    assert len(grid["predicted"]) == 50 and all(len(row) == 50 for row in grid["predicted"])
    assert {c for row in grid["predicted"] for c in row} == {0, 1, 2}  # three regions
    x = np.concatenate([read_arrays(blobs_dir)[f"x_{s}"] for s in ("train", "val", "test")])
    assert grid["x"][0] < x[:, 0].min() and grid["x"][-1] > x[:, 0].max()
    assert grid["y"][0] < x[:, 1].min() and grid["y"][-1] > x[:, 1].max()
    assert len(grid["test_points"]["predicted"]) == report["test_samples"] == 60
    assert "samples_image" not in report  # points, not images


def test_two_classes_with_one_sigmoid_unit_train_with_binary_cross_entropy(tmp_path):
    data = write_blobs(tmp_path / "data", classes=2)
    config = {"loss": "binary_crossentropy", "epochs": 5, "batch_size": 16, "learning_rate": 0.03}
    result, _ = train(_points_model(1, "sigmoid"), data, tmp_path / "run", config)
    report = result["evaluation"]
    assert result["state"] == "completed" and report["metrics"]["accuracy"] >= 0.9
    assert len(report["confusion_matrix"]["matrix"]) == 2
    assert len(report["decision_boundary"]["probability"]) == 50


def test_categorical_cross_entropy_on_logits_is_one_hot_encoded_and_from_logits(blobs_dir, tmp_path):
    config = {"loss": "categorical_crossentropy", "epochs": 8, "batch_size": 16, "learning_rate": 0.03}
    result, rec = train(_points_model(3, "linear"), blobs_dir, tmp_path, config)
    assert result["state"] == "completed", result["message"]
    assert {w["field"] for w in rec.of("started")[0]["warnings"]} == {"loss", "activation"}
    report = result["evaluation"]
    assert report["metrics"]["accuracy"] >= 0.9 and report["accuracy"] == report["metrics"]["accuracy"]
    # Logits were turned into probabilities for the report.
    assert all(0 <= s["confidence"] <= 1 for s in report["samples"])


def test_regression_reports_residuals_and_predicted_versus_true(regression_dir, tmp_path):
    config = {"loss": "mean_squared_error", "metrics": ["mae"], "epochs": 12, "learning_rate": 0.02}
    result, _ = train(STARTERS["regression"].graph(), regression_dir, tmp_path, config)
    assert result["state"] == "completed", result["message"]
    report = result["evaluation"]
    assert set(report["metrics"]) == {"mae"}
    residuals = report["residuals"]
    assert residuals["r2"] > 0.9 and residuals["count"] == 80
    assert abs(residuals["mae"] - report["metrics"]["mae"]) < 1e-3
    assert sum(residuals["histogram"]["counts"]) == 80
    pairs = report["predicted_vs_true"]
    assert len(pairs["true"]) == len(pairs["predicted"]) == 80


def test_large_regression_test_split_is_downsampled_and_2d_regression_gets_a_value_grid(tmp_path):
    data = write_regression(tmp_path, features=2)
    arrays, meta = read_arrays(data), read_meta(data)
    arrays["x_test"] = np.repeat(arrays["x_test"], 20, axis=0)
    arrays["y_test"] = np.repeat(arrays["y_test"], 20, axis=0)
    model = _compiled(_points_model(1, "linear"), TrainConfig(loss="huber", metrics=["rmse"]))
    report = evaluate_model(model, arrays, meta, TrainConfig(loss="huber", metrics=["rmse"]))
    json.dumps(report, allow_nan=False)
    assert report["test_samples"] == 1600 and len(report["predicted_vs_true"]["true"]) == 500
    assert report["predicted_vs_true"]["indices"][-1] == 1599
    assert len(report["decision_boundary"]["values"]) == 50


def test_no_test_split_says_so(digits_dir):
    arrays, meta = read_arrays(digits_dir), read_meta(digits_dir)
    arrays["x_test"], arrays["y_test"] = arrays["x_test"][:0], arrays["y_test"][:0]
    model = _compiled(STARTERS["dense"].graph(), TrainConfig())
    report = evaluate_model(model, arrays, meta, TrainConfig())
    assert report == {"available": False,
                      "message": "digits has no test split, so nothing was held out to test on."}


def _compiled(graph, config: TrainConfig):
    model = build_model(graph)
    compile_model(model, config, logits=False)
    return model


def test_per_class_precision_recall_and_f1_are_exact():
    # true:      0  0  0  1  1  2
    # predicted: 0  0  1  1  1  0   (class 2 never predicted)
    probs = np.array([[.9, .05, .05], [.8, .1, .1], [.3, .6, .1], [.1, .8, .1], [.2, .7, .1],
                      [.5, .1, .4]])
    report = _classification_report(probs, np.array([0, 0, 0, 1, 1, 2]), ["a", "b", "c"])
    assert report["confusion_matrix"]["matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    a, b, c = report["per_class"]
    assert (a["precision"], a["recall"], a["f1"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3),
                                                      pytest.approx(2 / 3))
    assert (b["precision"], b["recall"], b["f1"]) == (pytest.approx(2 / 3), 1.0, pytest.approx(0.8))
    assert (c["precision"], c["recall"], c["f1"], c["support"]) == (None, 0.0, None, 1)
    assert report["accuracy"] == pytest.approx(4 / 6) and report["mistakes"] == 2
    # Mistakes first, most confident first; then right answers, least confident first.
    assert [s["index"] for s in report["samples"]] == [2, 5, 4, 1, 3, 0]


def test_raw_outputs_become_probabilities():
    one_unit = class_probabilities(np.array([[0.0], [100.0], [-100.0]]), logits=True)
    assert one_unit.tolist() == [[0.5, 0.5], [0.0, 1.0], [1.0, 0.0]]
    softmaxed = class_probabilities(np.array([[1.0, 1.0], [0.0, 1000.0]]), logits=True)
    assert np.allclose(softmaxed, [[0.5, 0.5], [0.0, 1.0]])
    sigmoids = class_probabilities(np.array([[0.2, 0.6], [0.0, 0.0], [np.nan, 1.0]]), logits=False)
    assert np.allclose(sigmoids, [[0.25, 0.75], [0.5, 0.5], [0.0, 1.0]])
