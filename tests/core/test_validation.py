import time

from app.core.graph import add_layer
from app.core.starters import STARTERS
from app.core.validation import Limits, validate
from tests.factories import stack


def test_convnet_shapes_and_parameters_match_the_book():
    report = validate(STARTERS["convnet"].graph())
    assert report.ok
    assert [s.output for s in report.shapes.values()] == [
        (28, 28, 1), (26, 26, 32), (13, 13, 32), (11, 11, 64), (5, 5, 64), (3, 3, 64), (576,), (64,), (10,)]
    assert report.total_params == 93_322


def test_a_huge_dense_layer_is_refused_in_milliseconds():
    graph = stack(("Input", {"shape": [28, 28, 1]}), ("Flatten", {}), ("Dense", {"units": 500_000}))
    started = time.perf_counter()
    report = validate(graph)
    assert time.perf_counter() - started < 0.05
    (issue,) = report.errors
    assert issue.too_large and issue.layer_id == "n3"
    assert "392,500,000 parameters; the limit is 20,000,000" in issue.message


def test_limits_are_configurable():
    assert not validate(STARTERS["convnet"].graph(), Limits(max_params=1000)).ok
    assert not validate(STARTERS["convnet"].graph(), Limits(max_activation_values=1000)).ok


def test_conv2d_after_flatten_is_explained_at_the_layer():
    graph = stack(("Input", {"shape": [28, 28, 1]}), ("Flatten", {}), ("Conv2D", {}))
    (issue,) = validate(graph).errors
    assert issue.layer_id == "n3"
    expected = "Conv2D expects a 4-D input (batch, height, width, channels) but got a 2-D input (None, 784)"
    assert expected in issue.message


def test_dense_output_on_images_warns_to_add_flatten():
    graph = stack(("Input", {"shape": [28, 28, 1]}), ("Conv2D", {}), ("Dense", {"units": 10}))
    report = validate(graph)
    assert report.ok
    (warning,) = [i for i in report.issues if i.severity == "warning"]
    assert warning.layer_id == "n3"
    assert "Dense got a 4-D input (None, 26, 26, 32)" in warning.message and "Flatten" in warning.message


def test_window_larger_than_input_is_explained():
    graph = stack(("Input", {"shape": [4, 4, 1]}), ("Conv2D", {"kernel_size": [5, 5]}))
    (issue,) = validate(graph).errors
    assert "kernel_size (5) is larger than the input's height (4)" in issue.message
    assert issue.field == "kernel_size"  # the message goes to the field that caused it


def test_dangling_branch_and_missing_input_are_reported():
    graph = stack(("Input", {"shape": [8]}), ("Dense", {"units": 8}))
    graph, _ = add_layer(graph, "Dense", {"units": 8}, inputs=["n1"])
    messages = [i.message for i in validate(graph).errors]
    assert any("is not used by any layer" in m for m in messages)
    assert validate(stack()).errors[0].message.startswith("This model is empty")
    no_input = STARTERS["dense"].graph()
    no_input.nodes = no_input.nodes[1:]
    assert any("no Input layer" in i.message for i in validate(no_input).errors)


def test_add_with_mismatched_shapes_names_both_shapes():
    graph = stack(("Input", {"shape": [8]}), ("Dense", {"units": 8}))
    graph, side = add_layer(graph, "Dense", {"units": 4}, inputs=["n1"])
    graph, merge = add_layer(graph, "Add", inputs=["n2", side])
    (issue,) = validate(graph).errors
    assert issue.layer_id == merge and "(None, 8) and (None, 4)" in issue.message


def test_zero_initializer_gets_a_warning():
    graph = stack(("Input", {"shape": [8]}), ("Dense", {"units": 8, "kernel_initializer": "zeros"}))
    assert any(i.field == "kernel_initializer" for i in validate(graph).issues)
