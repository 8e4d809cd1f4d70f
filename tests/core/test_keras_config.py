"""A Keras config read as data: mapped onto the catalog, or refused with the layer named."""

from __future__ import annotations

import base64
import json
import marshal
from pathlib import Path
from typing import Any

import pytest

from app.core.errors import TooLarge, UserError
from app.core.graph import MAX_NODES
from app.core.keras_config import keras_snake_case, parse_config, plan_import
from app.core.validation import Limits

DTYPE = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}


def initializer(class_name: str, **config: Any) -> dict[str, Any]:
    seed = {} if class_name in ("Zeros", "Ones") else {"seed": None}
    return {"module": "keras.initializers", "class_name": class_name, "config": {**seed, **config},
            "registered_name": None}


def tensor(name: str) -> dict[str, Any]:
    return {"class_name": "__keras_tensor__", "config": {"shape": [None, 8], "dtype": "float32",
                                                         "keras_history": [name, 0, 0]}}


def layer(class_name: str, name: str, config: dict[str, Any] | None = None, inputs: tuple[str, ...] = (),
          **entry: Any) -> dict[str, Any]:
    """A layer as Keras 3 writes it in a functional model's config."""
    nodes = []
    if inputs:
        args = [tensor(inputs[0])] if len(inputs) == 1 else [[tensor(i) for i in inputs]]
        nodes = [{"args": args, "kwargs": {}}]
    return {"module": "keras.layers", "class_name": class_name,
            "config": {"name": name, "trainable": True, "dtype": DTYPE, **(config or {})},
            "registered_name": None, "name": name, "inbound_nodes": nodes, **entry}


def input_layer(name: str = "input", shape: tuple[int, ...] = (8,)) -> dict[str, Any]:
    return {"module": "keras.layers", "class_name": "InputLayer",
            "config": {"batch_shape": [None, *shape], "dtype": "float32", "sparse": False, "ragged": False,
                       "name": name, "optional": False},
            "registered_name": None, "name": name, "inbound_nodes": []}


def dense(name: str, source: str, units: int = 4, activation: str = "relu", **config: Any) -> dict[str, Any]:
    return layer("Dense", name, {"units": units, "activation": activation, "use_bias": True,
                                 "kernel_initializer": initializer("GlorotUniform", input_axes=None, output_axes=None),
                                 "bias_initializer": initializer("Zeros"), "kernel_regularizer": None,
                                 "bias_regularizer": None, "kernel_constraint": None, "bias_constraint": None,
                                 "quantization_config": None, **config}, (source,))


def functional(*layers: dict[str, Any], output: str | None = None, **top: Any) -> dict[str, Any]:
    first, last = layers[0]["name"], output or layers[-1]["name"]
    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "config": {"name": "functional", "trainable": True, "layers": list(layers),
                       "input_layers": [first, 0, 0], "output_layers": [last, 0, 0]},
            "registered_name": "Functional", "build_config": {"input_shape": None}, **top}


def small_model(*between: dict[str, Any]) -> dict[str, Any]:
    """Input -> the given layers (each reading the one before) -> Dense(2)."""
    chain = [input_layer()]
    for item in between:
        item = json.loads(json.dumps(item))
        item["inbound_nodes"] = [{"args": [tensor(chain[-1]["name"])], "kwargs": {}}]
        chain.append(item)
    return functional(*chain, dense("out", chain[-1]["name"], units=2, activation="softmax"))


def lambda_layer(marker: Path, name: str = "lambda") -> dict[str, Any]:
    """A Lambda layer whose function writes `marker`: what Keras writes for such a layer (marshalled bytecode)."""
    source = f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('pwned'), x)[1]"
    code = next(c for c in compile(source, "<upload>", "eval").co_consts if hasattr(c, "co_code"))
    dumped = base64.encodebytes(marshal.dumps(code)).decode("ascii")
    return layer("Lambda", name, {"function": {"class_name": "__lambda__",
                                               "config": {"code": dumped, "defaults": None, "closure": None}},
                                  "arguments": {}})


def refusal(config: dict[str, Any], limits: Limits = Limits()) -> UserError:
    with pytest.raises(UserError) as caught:
        plan_import(config, limits)
    return caught.value


# --- what is imported ---------------------------------------------------------------------------

def test_a_functional_stack_becomes_a_graph_with_the_catalog_parameters():
    config = functional(input_layer(shape=(28, 28, 1)),
                        layer("Conv2D", "conv", {"filters": 8, "kernel_size": [3, 3], "strides": [1, 1],
                                                 "padding": "same", "data_format": "channels_last",
                                                 "dilation_rate": [1, 1], "groups": 1, "activation": "silu",
                                                 "use_bias": True, "kernel_initializer": initializer("HeNormal")},
                              ("input",)),
                        layer("MaxPooling2D", "pool", {"pool_size": [2, 2], "strides": [2, 2], "padding": "valid",
                                                       "data_format": "channels_last"}, ("conv",)),
                        layer("Flatten", "flat", {"data_format": "channels_last"}, ("pool",)),
                        layer("Dropout", "drop", {"rate": 0.25, "seed": None, "noise_shape": None}, ("flat",)),
                        dense("out", "drop", units=10, activation="softmax"))
    plan = plan_import(config)
    nodes = {n.name: n for n in plan.graph.nodes}
    assert [n.type for n in plan.graph.nodes] == ["Input", "Conv2D", "MaxPooling2D", "Flatten", "Dropout", "Dense"]
    assert nodes["input"].params == {"shape": [28, 28, 1]}
    assert nodes["conv"].params == {"filters": 8, "kernel_size": [3, 3], "strides": [1, 1], "padding": "same",
                                    "activation": "swish", "kernel_initializer": "he_normal", "use_bias": True,
                                    "trainable": True, **{key: "none" for key in (
                                        "kernel_regularizer", "bias_regularizer", "kernel_constraint",
                                        "bias_constraint")}, "kernel_regularizer_factor": 0.01,
                                    "bias_regularizer_factor": 0.01}
    assert nodes["pool"].params["strides"] is None  # Keras writes the default (the pool size) out
    assert nodes["out"].params["units"] == 10 and nodes["out"].inputs == [nodes["drop"].id]
    assert plan.weight_keys == {"input": "input_layer", "conv": "conv2d", "pool": "max_pooling2d",
                                "flat": "flatten", "drop": "dropout", "out": "dense"}
    assert plan.imported[0].startswith("6 layers: Input, Conv2D")
    assert plan.not_imported == []


def test_a_sequential_model_without_an_input_layer_takes_its_built_shape():
    config = {"module": "keras", "class_name": "Sequential", "registered_name": None,
              "config": {"name": "seq", "layers": [dense("a", "-"), dense("b", "-", units=1, activation="linear")],
                         "build_input_shape": [None, 5]}}
    plan = plan_import(config)
    assert [(n.type, n.name) for n in plan.graph.nodes] == [("Input", "input_layer"), ("Dense", "a"), ("Dense", "b")]
    assert plan.graph.nodes[0].params["shape"] == [5]
    assert plan.weight_keys == {"a": "dense", "b": "dense_1"}  # a Sequential model's weights leave the Input out


def test_branches_and_merges_keep_their_wiring():
    config = functional(input_layer(), dense("left", "input"), dense("right", "input"),
                        layer("Add", "add", {}, ("left", "right")), dense("skip", "input"),
                        layer("Concatenate", "cat", {"axis": -1}, ("add", "skip")),
                        dense("out", "cat", units=1, activation="sigmoid"))
    plan = plan_import(config)
    by_name = {n.name: n for n in plan.graph.nodes}
    assert [by_name[plan.graph.node(i).name].name for i in by_name["cat"].inputs] == ["add", "skip"]
    assert len(by_name["add"].inputs) == 2
    assert plan.graph.outputs()[0].name == "out"


def test_1d_sizes_and_recurrent_layers_map_onto_the_catalog():
    lstm = {"units": 16, "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True,
            "return_sequences": True, "return_state": False, "go_backwards": False, "stateful": False,
            "unroll": False, "dropout": 0.1, "recurrent_dropout": 0.0, "unit_forget_bias": True,
            "kernel_initializer": initializer("GlorotUniform"), "recurrent_initializer": initializer("Orthogonal")}
    config = small_model(
        layer("Conv1D", "c", {"filters": 4, "kernel_size": [3], "strides": [1], "padding": "valid",
                              "data_format": "channels_last", "dilation_rate": [1], "groups": 1, "activation": "relu",
                              "use_bias": True, "kernel_initializer": initializer("GlorotUniform")}),
        layer("MaxPooling1D", "p", {"pool_size": [2], "strides": [2], "padding": "valid"}),
        layer("LSTM", "l", lstm), layer("GRU", "g", {**lstm, "reset_after": True, "return_sequences": False}))
    config["config"]["layers"][0]["config"]["batch_shape"] = [None, 20, 3]
    del config["config"]["layers"][4]["config"]["unit_forget_bias"]
    plan = plan_import(config)
    nodes = {n.name: n.params for n in plan.graph.nodes}
    assert nodes["c"]["kernel_size"] == 3 and nodes["c"]["strides"] == 1 and nodes["p"]["strides"] is None
    assert nodes["l"] == {"units": 16, "activation": "tanh", "return_sequences": True, "dropout": 0.1,
                          "trainable": True}


def test_settings_that_only_matter_in_training_are_listed_as_not_imported():
    l2 = {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.01}, "registered_name": None}
    config = small_model(dense("d", "-", kernel_regularizer=l2, trainable=False))
    config["config"]["layers"][1]["config"]["trainable"] = False
    config["compile_config"] = {"optimizer": "adam", "loss": {"module": "builtins", "class_name": "function",
                                                              "config": "my_loss", "registered_name": "function"}}
    plan = plan_import(config)
    text = " | ".join(plan.not_imported)
    assert "compile settings" in text
    imported = plan.graph.nodes[1].params
    assert imported["kernel_regularizer"] == "l2" and "kernel_regularizer" not in text  # l2(0.01) is offered by name
    assert imported["trainable"] is False and "trainable" not in text  # a frozen layer stays frozen


def regularizer(class_name: str, **config: float) -> dict[str, Any]:
    return {"module": "keras.regularizers", "class_name": class_name, "config": config, "registered_name": None}


def test_regularizers_import_with_their_factor_and_l1_l2_with_one_factor():
    cases = [(regularizer("L1", l1=0.20000000298023224), ("l1", 0.2)),  # Keras keeps float32
             (regularizer("L2", l2=0.001), ("l2", 0.001)),
             (regularizer("L1L2", l1=0.05, l2=0.05), ("l1_l2", 0.05)),
             (regularizer("L1L2", l1=0.03, l2=0.0), ("l1", 0.03)),
             (regularizer("L1L2", l1=0.0, l2=0.0), ("none", 0.01))]
    for keras_value, (name, factor) in cases:
        params = plan_import(small_model(dense("d", "-", kernel_regularizer=keras_value))).graph.nodes[1].params
        assert (params["kernel_regularizer"], params["kernel_regularizer_factor"]) == (name, factor), keras_value


def test_an_l1_l2_regularizer_with_two_factors_is_refused_naming_them():
    error = refusal(small_model(dense("d", "-", bias_regularizer=regularizer("L1L2", l1=0.01, l2=0.02))))
    assert "Layer 'd' (Dense)" in error.message and "L1L2(l1=0.01, l2=0.02)" in error.message
    assert "none, l1, l2, l1_l2" in error.message


def test_a_kernel_initializer_with_its_own_settings_keeps_the_kind_and_says_so():
    plan = plan_import(small_model(dense("d", "-", kernel_initializer=initializer("RandomNormal", stddev=0.5))))
    assert plan.graph.nodes[1].params["kernel_initializer"] == "random_normal"
    assert any("stddev=0.5" in note for note in plan.not_imported)


# --- what is refused, naming the layer ----------------------------------------------------------

def test_a_lambda_layer_is_refused_by_name(tmp_path):
    error = refusal(small_model(lambda_layer(tmp_path / "pwned", name="double_it")))
    assert "Layer 'double_it' (Lambda)" in error.message and "Python code" in error.message
    assert error.details["layer"] == "double_it"
    assert not (tmp_path / "pwned").exists()


def test_a_lambda_hidden_inside_another_layers_settings_is_refused(tmp_path):
    hidden = dense("d", "-", activation={"class_name": "__lambda__", "config": {"code": "AAAA"}})
    error = refusal(small_model(hidden))
    assert "Layer 'd' (Dense)" in error.message and "`config.activation`" in error.message


@pytest.mark.parametrize(("entry", "words"), [
    (layer("TFSMLayer", "saved", {"filepath": "/tmp/x", "call_endpoint": "serve"}), "TFSMLayer loads"),
    ({**dense("d", "-"), "module": "os"}, "module outside Keras"),
    ({**dense("d", "-"), "module": "kerasevil.layers"}, "module outside Keras"),
    ({**dense("d", "-"), "class_name": "MyLayer", "module": "my_pkg", "registered_name": "my_pkg>MyLayer"},
     "custom class"),
    (dense("d", "-", kernel_initializer={"module": "my_pkg", "class_name": "Mine", "config": {},
                                         "registered_name": "my_pkg>Mine"}), "custom class"),
    (layer("ConvLSTM2D", "rnn", {"filters": 3}), "does not offer ConvLSTM2D"),
    (dense("d", "-", activation="relu6"), "Expected one of linear, relu"),
    (dense("d", "-", kernel_initializer=initializer("VarianceScaling", scale=2.0)), "Expected one of glorot_uniform"),
    (dense("d", "-", units=0), "Expected an integer between 1 and 1000000. Received: units=0"),
    (layer("Flatten", "f", {"data_format": "channels_first"}), "Expected data_format='channels_last'"),
    (dense("d", "-", lora_rank=4), "Expected lora_rank=None"),
    (dense("d", "-", some_future_setting=3), "cannot rebuild its setting `some_future_setting`"),
    ({**functional(input_layer("inner_in"), dense("inner", "inner_in")), "name": "inner",
      "inbound_nodes": []}, "model inside the model"),
])
def test_layers_LayerLab_cannot_rebuild_are_refused_by_name(entry, words):
    error = refusal(small_model(entry))
    name = entry.get("name")
    assert f"Layer {name!r}" in error.message, error.message
    assert words in error.message
    assert error.field == "file"


def test_a_custom_model_class_is_refused():
    config = {**functional(input_layer(), dense("d", "input")), "class_name": "MyModel", "module": "my_pkg",
              "registered_name": "my_pkg>MyModel"}
    assert "custom class" in refusal(config).message


def test_a_shared_layer_and_call_arguments_are_refused():
    config = small_model(dense("d", "-"))
    shared = config["config"]["layers"][1]
    shared["inbound_nodes"] = shared["inbound_nodes"] * 2
    assert "used 2 times" in refusal(config).message
    config = small_model(layer("Dropout", "drop", {"rate": 0.5}))
    config["config"]["layers"][1]["inbound_nodes"][0]["kwargs"] = {"training": True}
    error = refusal(config)
    assert "Layer 'drop' (Dropout)" in error.message and "training=True" in error.message


def test_models_LayerLab_cannot_train_are_refused():
    two_outputs = functional(input_layer(), dense("a", "input"), dense("b", "input"))
    assert "2 outputs" in refusal(two_outputs).message
    two_inputs = functional(input_layer("x"), input_layer("y"), dense("a", "x"), dense("b", "y"),
                            layer("Add", "add", {}, ("a", "b")))
    assert "2 inputs" in refusal(two_inputs).message
    too_many = small_model(*[layer("Activation", f"act{i}", {"activation": "relu"}) for i in range(MAX_NODES)])
    assert f"at most {MAX_NODES}" in refusal(too_many).message
    with pytest.raises(TooLarge, match="Layer 'big' .*parameters"):
        plan_import(small_model(dense("big", "-", units=5000)), Limits(max_params=10_000))


def test_a_file_that_is_not_a_models_config_is_refused():
    with pytest.raises(UserError, match="not valid JSON"):
        parse_config(b'{"class_name": ')
    with pytest.raises(UserError, match="nests deeper"):
        parse_config(b"[" * 100 + b"]" * 100)
    with pytest.raises(UserError, match="not a JSON object"):
        parse_config(b"[1, 2]")
    with pytest.raises(TooLarge):
        parse_config(b" " * (9 * 1024 * 1024))
    assert "Expected a Functional or Sequential" in refusal({"class_name": "Dense", "config": {}}).message


def test_keras_names_weight_groups_by_snake_cased_class():
    assert [keras_snake_case(n) for n in ("Conv2D", "MaxPooling2D", "GlobalAveragePooling2D", "LSTM",
                                          "BatchNormalization", "InputLayer")] == [
        "conv2d", "max_pooling2d", "global_average_pooling2d", "lstm", "batch_normalization", "input_layer"]
