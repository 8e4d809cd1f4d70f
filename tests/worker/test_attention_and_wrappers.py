"""MultiHeadAttention with one input (self-attention) and two (cross-attention), the wrappers Bidirectional and
TimeDistributed, and Dot: built, counted, exported and imported as Keras does, and refused where Keras would fail."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.core.catalog import CATALOG, coerce_params
from app.core.codegen import build_model_code
from app.core.errors import UserError
from app.core.graph import add_layer, graph_from_layers
from app.core.keras_config import plan_import
from app.core.validation import validate

pytestmark = pytest.mark.slow

keras = pytest.importorskip("keras")

from app.worker.build import build_model  # noqa: E402
from app.worker.inspect import summarize_graph  # noqa: E402


def cross_attention():
    """A sequence of 10 steps asks (the query) a sequence of 6 steps (the value)."""
    graph = graph_from_layers([("Input", {"shape": [10, 3]}), ("Dense", {"units": 8})])
    graph, other = add_layer(graph, "Conv1D", {"filters": 5, "kernel_size": 5}, inputs=["n1"])
    graph, attention = add_layer(graph, "MultiHeadAttention", {"num_heads": 2, "key_dim": 4}, inputs=["n2", other])
    graph, _ = add_layer(graph, "GlobalAveragePooling1D", {}, inputs=[attention])
    return graph


def test_cross_attention_takes_the_query_first_and_counts_as_keras_does():
    graph = cross_attention()
    report = validate(graph)
    assert report.ok, report.issues
    summary = summarize_graph(graph)
    row = next(r for r in summary["layers"] if r["keras_class"] == "MultiHeadAttention")
    assert tuple(row["output_shape"][1:]) == report.shapes["n4"].output == (10, 8)  # the query's shape
    assert row["params"] == report.shapes["n4"].params
    value = keras.Input((6, 5))
    plain = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    plain(keras.Input((10, 8)), value)
    assert plain.count_params() == row["params"]


def test_cross_attention_exports_and_imports_with_both_inputs_in_order():
    graph = cross_attention()
    code = build_model_code(graph, "cross")
    assert "layers.MultiHeadAttention(num_heads=2, key_dim=4, name='multi_head_attention')(dense, conv1d)" in code
    namespace: dict = {}
    exec("import keras\nfrom keras import layers\n" + code, namespace)
    assert namespace["build_model"]().count_params() == build_model(graph).count_params()
    plan = plan_import(json.loads(build_model(graph).to_json()))
    attention = next(n for n in plan.graph.nodes if n.type == "MultiHeadAttention")
    names = {n.id: n.name for n in plan.graph.nodes}
    assert [names[i] for i in attention.inputs] == ["dense", "conv1d"]


def test_self_attention_is_one_input_and_a_third_input_is_refused():
    graph = graph_from_layers([("Input", {"shape": [10, 3]}), ("MultiHeadAttention", {})])
    assert graph.nodes[-1].inputs == ["n1"] and validate(graph).ok
    branched = graph_from_layers([("Input", {"shape": [10, 3]}), ("Dense", {"units": 3})])
    branched, other = add_layer(branched, "Dense", {"units": 3}, inputs=["n1"])
    with pytest.raises(UserError, match="takes 1 to 2 inputs; it received 3"):
        add_layer(branched, "MultiHeadAttention", {}, inputs=["n1", "n2", other])


def test_key_dim_zero_and_a_bidirectional_dense_are_refused_at_their_field():
    with pytest.raises(UserError) as refused:
        coerce_params(CATALOG["MultiHeadAttention"], {"key_dim": 0})
    assert refused.value.field == "key_dim" and "between 1 and" in refused.value.message
    with pytest.raises(UserError) as refused:
        coerce_params(CATALOG["Bidirectional"], {"layer": "Dense"})
    assert refused.value.field == "layer" and "LSTM, GRU, SimpleRNN" in refused.value.message


def test_a_keras_bidirectional_around_anything_but_a_recurrent_layer_is_refused_on_import():
    graph = graph_from_layers([("Input", {"shape": [10, 3]}), ("Bidirectional", {"layer": "GRU", "units": 4})])
    config = json.loads(build_model(graph).to_json())
    wrapper = next(entry for entry in config["config"]["layers"] if entry["class_name"] == "Bidirectional")
    wrapper["config"]["layer"]["class_name"] = "Dense"
    with pytest.raises(UserError, match="LayerLab's Bidirectional wraps LSTM, GRU or SimpleRNN. Received: "
                                        "layer='Dense'"):
        plan_import(config)
    wrapper["config"]["layer"]["class_name"] = "GRU"
    wrapper["config"]["backward_layer"]["config"]["units"] = 7
    with pytest.raises(UserError, match="its backward layer has settings of its own"):
        plan_import(config)


def test_frozen_attention_and_wrappers_keep_their_weights_through_training():
    graph = graph_from_layers([
        ("Input", {"shape": [6, 3]}), ("MultiHeadAttention", {"key_dim": 4, "trainable": False}),
        ("Bidirectional", {"layer": "GRU", "units": 4, "return_sequences": True, "trainable": False}),
        ("TimeDistributed", {"units": 2, "trainable": False}), ("TimeDistributed", {"units": 1}),
        ("Flatten", {}), ("Dense", {"units": 1, "activation": "linear"})])  # a relu output may start dead
    assert validate(graph).shapes["n2"].trainable == 0
    model = build_model(graph)
    model.compile(optimizer="adam", loss="mse")
    before = [w.numpy().copy() for w in model.weights]  # a copy: numpy() may share the variable's memory
    rng = np.random.default_rng(0)
    model.fit(rng.random((32, 6, 3), dtype="float32"), rng.random((32, 1), dtype="float32"), epochs=1, verbose=0)
    changed = [not np.array_equal(b, w.numpy()) for b, w in zip(before, model.weights, strict=True)]
    frozen = sum(len(model.get_layer(name).weights) for name in ("multi_head_attention", "bidirectional",
                                                                  "time_distributed"))
    assert not any(changed[:frozen]) and all(changed[frozen:])


def test_the_exported_code_freezes_attention_and_wrappers_as_the_app_does():
    graph = graph_from_layers([
        ("Input", {"shape": [6, 3]}), ("MultiHeadAttention", {"key_dim": 4, "trainable": False}),
        ("Bidirectional", {"layer": "SimpleRNN", "units": 3, "trainable": False}), ("Dense", {"units": 1})])
    code = build_model_code(graph, "frozen")
    namespace: dict = {}
    exec("import keras\nfrom keras import layers\n" + code, namespace)
    exported, built = namespace["build_model"](), build_model(graph)
    assert exported.count_params() == built.count_params()
    assert len(exported.trainable_weights) == len(built.trainable_weights) == 2  # the last Dense's kernel and bias


def test_a_wrapped_layer_never_takes_the_name_of_another_layer_of_the_model():
    # Keras would name the wrapped Dense "dense" when it is the first Dense made, the name of the last layer here
    graph = graph_from_layers([("Input", {"shape": [6, 3]}), ("TimeDistributed", {"units": 2}), ("Flatten", {}),
                               ("Dense", {"units": 1})])
    model = build_model(graph)
    paths = [w.path for w in model.weights]
    assert len(paths) == len(set(paths)) and "time_distributed/time_distributed_dense/kernel" in paths
