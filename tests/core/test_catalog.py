import pytest

from app.core.activations import ACTIVATIONS, curve_points
from app.core.catalog import CATALOG, coerce_param, coerce_params, get_layer_type
from app.core.errors import UserError
from app.core.initializers import INITIALIZERS

REQUIRED_LAYERS = {"Input", "Dense", "Activation", "Dropout", "Flatten", "Reshape", "Rescaling", "Conv1D",
                   "Conv2D", "MaxPooling1D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
                   "BatchNormalization", "LayerNormalization", "Embedding", "LSTM", "GRU", "Add", "Concatenate"}


def test_catalog_has_every_required_layer_activation_and_initializer():
    assert REQUIRED_LAYERS <= set(CATALOG)
    assert {"linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "gelu", "swish",
            "leaky_relu"} <= set(ACTIVATIONS)
    assert {"glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal",
            "random_normal", "random_uniform", "zeros", "ones"} <= set(INITIALIZERS)


@pytest.mark.parametrize("type_name", sorted(CATALOG))
def test_every_parameter_has_help_and_a_default_within_its_bounds(type_name):
    layer_type = CATALOG[type_name]
    assert layer_type.help
    for param in layer_type.params:
        assert param.help and param.help.endswith(".")
        assert coerce_param(param, param.default) == param.default
        described = layer_type.as_dict()
        assert all("allowed" in p for p in described["params"])


def test_out_of_range_value_is_refused_in_keras_wording():
    units = CATALOG["Dense"].by_name["units"]
    with pytest.raises(UserError) as info:
        coerce_param(units, 0)
    assert info.value.message == ("Invalid value received for `units`. Expected an integer between 1 and "
                                  "1000000. Received: units=0")


@pytest.mark.parametrize("value", ["abc", 1.5, True, None, [1, 2], "1e3"])
def test_wrong_types_are_refused(value):
    with pytest.raises(UserError, match="Expected an integer"):
        coerce_param(CATALOG["Dense"].by_name["units"], value)


def test_values_from_forms_are_normalized():
    conv = CATALOG["Conv2D"]
    assert coerce_params(conv, {"kernel_size": "5", "strides": "2,1", "filters": "16"}) == {
        "kernel_size": [5, 5], "strides": [2, 1], "filters": 16}
    assert coerce_param(CATALOG["Input"].by_name["shape"], "28, 28, 1") == [28, 28, 1]
    assert coerce_param(CATALOG["Dense"].by_name["use_bias"], "false") is False
    assert coerce_param(CATALOG["MaxPooling2D"].by_name["strides"], "") is None
    assert coerce_param(CATALOG["Dropout"].by_name["rate"], "0.25") == 0.25


@pytest.mark.parametrize("type_name,params,message", [
    ("Dropout", {"rate": 1.0}, "Expected a number from 0 below 1"),
    ("Dense", {"activation": "magic"}, "Expected one of linear, relu"),
    ("Input", {"shape": "0,3"}, "positive integers"),
    ("Dense", {"neurons": 3}, "Dense has no parameter `neurons`"),
    ("Conv2D", {"kernel_size": "1,2,3"}, "one integer or two integers"),
    ("Rescaling", {"scale": "nan"}, "Expected a number"),
])
def test_bad_parameters_say_what_is_allowed(type_name, params, message):
    with pytest.raises(UserError, match=message):
        coerce_params(CATALOG[type_name], params)


def test_unknown_layer_type_lists_the_known_ones():
    with pytest.raises(UserError, match="Unknown layer type 'Dense3D'. Expected one of: Input, Dense"):
        get_layer_type("Dense3D")


def test_activation_curves_have_the_shapes_learners_expect():
    sigmoid = dict(curve_points("sigmoid"))
    assert 0 < min(sigmoid.values()) and max(sigmoid.values()) < 1
    relu = curve_points("relu")
    assert relu[0][1] == 0 and relu[-1][1] == 5
    tanh = [y for _, y in curve_points("tanh")]
    assert -1 < min(tanh) < -0.99 and 0.99 < max(tanh) < 1
