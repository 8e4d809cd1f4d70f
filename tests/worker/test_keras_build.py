"""Keras is the final judge: the catalog builds, and our inference agrees with Keras."""

import pytest

pytestmark = pytest.mark.slow

keras = pytest.importorskip("keras")

from app.core.catalog import CATALOG  # noqa: E402
from app.core.errors import UserError  # noqa: E402
from app.core.graph import add_layer  # noqa: E402
from app.core.keras_args import keras_layer  # noqa: E402
from app.core.starters import STARTERS  # noqa: E402
from app.core.validation import validate  # noqa: E402
from app.worker.build import build_model, make_layer  # noqa: E402
from app.worker.inspect import summarize_graph  # noqa: E402
from tests.factories import single_layer_graph, stack  # noqa: E402


def assert_inference_matches_keras(graph):
    report = validate(graph)
    assert report.ok, report.issues
    summary = summarize_graph(graph)
    for row in summary["layers"]:
        inferred = report.shapes[row["id"]]
        assert tuple(row["output_shape"][1:]) == inferred.output, row["name"]
        assert row["params"] == inferred.params, row["name"]
    assert summary["total_params"] == report.total_params
    return summary


@pytest.mark.parametrize("type_name", sorted(t for t in CATALOG if t != "Input"))
def test_every_catalog_entry_builds_with_defaults_and_its_config_round_trips(type_name):
    graph = single_layer_graph(type_name)
    assert_inference_matches_keras(graph)
    node = graph.nodes[-1]
    layer = make_layer(keras_layer(node), "probe")
    config = layer.get_config()
    assert type(layer).from_config(dict(config)).get_config() == config  # wrappers pop "layer"


@pytest.mark.parametrize("type_name,params,input_shape", [
    ("Conv2D", {"strides": [2, 2], "padding": "same", "filters": 7}, [9, 9, 3]),
    ("Conv2D", {"kernel_size": [5, 3], "use_bias": False}, [9, 9, 2]),
    ("MaxPooling2D", {"pool_size": [3, 3], "strides": [2, 2]}, [9, 9, 3]),
    ("AveragePooling2D", {"padding": "same"}, [7, 7, 3]),
    ("MaxPooling1D", {"pool_size": 3, "strides": 1}, [10, 4]),
    ("Conv1D", {"strides": 2, "padding": "same"}, [11, 4]),
    ("LSTM", {"return_sequences": True, "units": 5}, [6, 3]),
    ("GRU", {"units": 7}, [6, 3]),
    ("BatchNormalization", {}, [5, 5, 6]),
    ("Concatenate", {"axis": 1}, [8]),
])
def test_inference_matches_keras_for_non_default_settings(type_name, params, input_shape):
    assert_inference_matches_keras(single_layer_graph(type_name, params, input_shape))


def test_convnet_starter_summary_is_exactly_keras():
    summary = assert_inference_matches_keras(STARTERS["convnet"].graph())
    shapes = [tuple(row["output_shape"]) for row in summary["layers"]]
    assert shapes[1:6] == [(None, 26, 26, 32), (None, 13, 13, 32), (None, 11, 11, 64), (None, 5, 5, 64),
                           (None, 3, 3, 64)]
    assert summary["total_params"] == 93_322 == summary["trainable_params"]


def test_batch_norm_statistics_are_non_trainable():
    summary = summarize_graph(single_layer_graph("BatchNormalization", input_shape=[8]))
    assert summary["trainable_params"] == 16 and summary["non_trainable_params"] == 16


def test_residual_branch_builds():
    graph = stack(("Input", {"shape": [16]}), ("Dense", {"units": 16}))
    graph, side = add_layer(graph, "Dense", {"units": 16, "activation": "tanh"}, inputs=["n1"])
    graph, _ = add_layer(graph, "Add", inputs=["n2", side])
    graph, _ = add_layer(graph, "Dense", {"units": 1, "activation": "sigmoid"})
    assert assert_inference_matches_keras(graph)["total_params"] == 2 * (16 * 16 + 16) + 17


def test_keras_errors_are_translated_at_the_layer_at_fault():
    # Bypass our own inference to see how a Keras refusal reads.
    graph = stack(("Input", {"shape": [28, 28, 1]}), ("Flatten", {}), ("Conv2D", {}))
    with pytest.raises(UserError) as info:
        build_model(graph)
    assert info.value.layer_id == "n3"
    assert "Conv2D expects at least a 4-D input but got a 2-D input (None, 784)" in info.value.message


def test_a_regularizer_with_its_own_factor_adds_exactly_that_penalty_and_exports_as_written():
    from app.core.codegen import layer_call

    graph = single_layer_graph("Dense", {"units": 3, "kernel_regularizer": "l1_l2", "kernel_regularizer_factor": 0.1})
    model = build_model(graph)
    kernel = model.get_layer("dense").kernel.numpy()
    penalty = sum(float(loss) for loss in model.losses)
    assert abs(penalty - 0.1 * (abs(kernel).sum() + (kernel ** 2).sum())) < 1e-4
    assert "kernel_regularizer=keras.regularizers.L1L2(l1=0.1, l2=0.1)" in layer_call(graph.nodes[-1])
    default = single_layer_graph("Dense", {"kernel_regularizer": "l2"}).nodes[-1]
    assert "kernel_regularizer='l2'" in layer_call(default)  # Keras' own factor: its name will do
