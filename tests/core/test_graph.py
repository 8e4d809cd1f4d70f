import pytest

from app.core.errors import UserError
from app.core.graph import Graph, add_layer, move_layer, move_layer_to, remove_layer, rewire_layer, update_layer
from app.core.starters import STARTERS
from tests.factories import stack


def names(graph: Graph) -> list[str]:
    return [n.name for n in graph.nodes]


def chain(graph: Graph) -> list[str]:
    """Follow the wiring from the input to the output."""
    node = next(n for n in graph.nodes if not n.inputs)
    result = [node.name]
    while consumers := graph.consumers(node.id):
        node = consumers[0]
        result.append(node.name)
    return result


def test_adding_after_a_layer_inserts_it_into_the_stack():
    graph = stack(("Input", {"shape": [8]}), ("Dense", {"units": 4}), ("Dense", {"units": 1}))
    graph, new_id = add_layer(graph, "Dropout", after="n2")
    assert names(graph) == ["input", "dense", "dropout", "dense_1"]
    assert chain(graph) == names(graph)
    assert graph.node(new_id).inputs == ["n2"]


def test_layers_get_keras_style_unique_names():
    graph = stack(("Input", {"shape": [8, 8, 1]}), ("MaxPooling2D", {}), ("MaxPooling2D", {}))
    assert names(graph) == ["input", "max_pooling2d", "max_pooling2d_1"]


def test_a_refused_edit_leaves_the_original_graph_untouched():
    graph = STARTERS["dense"].graph()
    before = graph.model_dump()
    with pytest.raises(UserError) as info:
        update_layer(graph, "n3", {"units": -1})
    assert info.value.layer_id == "n3" and info.value.field == "units"
    assert graph.model_dump() == before


def test_names_with_html_or_quotes_are_refused():
    graph = STARTERS["dense"].graph()
    for bad in ["<script>alert(1)</script>", 'a"b', "it's", "", "x" * 65]:
        with pytest.raises(UserError, match="Invalid value received for `name`"):
            update_layer(graph, "n3", name=bad)
    with pytest.raises(UserError, match="already named"):
        update_layer(graph, "n3", name="flatten")


def test_remove_reconnects_the_stack():
    graph = remove_layer(STARTERS["convnet"].graph(), "n3")
    assert chain(graph)[:3] == ["input", "conv2d", "conv2d_1"]


def test_move_up_and_down_swap_neighbours_and_wiring():
    graph = stack(("Input", {"shape": [8]}), ("Dense", {"units": 4}), ("Dropout", {}), ("Dense", {"units": 1}))
    moved = move_layer(graph, "n3", "up")
    assert names(moved) == ["input", "dropout", "dense", "dense_1"] == chain(moved)
    assert move_layer(moved, "n3", "down").model_dump()["nodes"] == graph.model_dump()["nodes"]
    with pytest.raises(UserError, match="already first"):
        move_layer(moved, "n3", "up")
    dragged = move_layer_to(graph, "n4", 1)
    assert chain(dragged) == ["input", "dense_1", "dense", "dropout"]


def test_branches_and_merges_need_their_inputs():
    graph = stack(("Input", {"shape": [8]}), ("Dense", {"units": 8}))
    graph, side = add_layer(graph, "Dense", {"units": 8}, inputs=["n1"])
    with pytest.raises(UserError, match="joins two or more layers"):
        add_layer(graph, "Add", inputs=["n2"])
    graph, merge = add_layer(graph, "Add", inputs=["n2", side])
    assert graph.node(merge).inputs == ["n2", side]
    assert [n.id for n in graph.outputs()] == [merge]


def test_rewiring_into_a_cycle_is_refused():
    graph = stack(("Input", {"shape": [8]}), ("Dense", {"units": 8}), ("Dense", {"units": 8}))
    with pytest.raises(UserError, match="loop"):
        rewire_layer(graph, "n2", ["n3"])
    with pytest.raises(UserError, match="no layer with id"):
        rewire_layer(graph, "n2", ["n99"])
    with pytest.raises(UserError, match="takes exactly one input"):
        rewire_layer(graph, "n2", ["n1", "n3"])


def test_a_new_input_layer_feeds_layers_left_without_one():
    graph = remove_layer(STARTERS["dense"].graph(), "n1")
    graph, new_input = add_layer(graph, "Input", {"shape": [28, 28, 1]})
    assert graph.nodes[0].id == new_input
    assert graph.node("n2").inputs == [new_input]
