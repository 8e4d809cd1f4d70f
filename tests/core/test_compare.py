"""What changed between runs, and the sentence that states it, on known graphs and settings."""

from __future__ import annotations

from typing import Any

from app.core.compare import RunFacts, graph_changes, run_changes, seed_spread, settings_changes, summary_sentence
from app.core.graph import add_layer, graph_from_layers, remove_layer, rewire_layer, update_layer
from app.core.starters import STARTERS


def convnet():
    return STARTERS["convnet"].graph()


def node_named(graph, name: str) -> str:
    return next(n.id for n in graph.nodes if n.name == name)


def paths(changes) -> list[tuple[str, Any, Any, str]]:
    return [(c.path, c.before, c.after, c.kind) for c in changes]


def test_same_graph_has_no_changes():
    assert graph_changes(convnet(), convnet()) == []


def test_changed_activation_names_layer_parameter_and_both_values():
    first = convnet()
    second = update_layer(first, node_named(first, "conv2d"), {"activation": "tanh"})
    changes = graph_changes(first, second)
    assert paths(changes) == [("layers.conv2d.activation", "relu", "tanh", "changed")]
    assert changes[0].phrase() == "tanh instead of relu in conv2d"
    assert changes[0].as_dict() == {"path": "layers.conv2d.activation", "from": "relu", "to": "tanh",
                                    "kind": "changed", "text": "tanh instead of relu in conv2d"}


def test_added_and_removed_layers_are_described():
    first = convnet()
    dense = node_named(first, "dense")
    second, _ = add_layer(first, "Dropout", {"rate": 0.25}, after=dense)
    second = remove_layer(second, node_named(second, "conv2d_2"))
    changes = graph_changes(first, second)
    kinds = {(c.path, c.kind) for c in changes}
    assert ("layers.conv2d_2", "removed") in kinds
    assert ("layers.dropout", "added") in kinds
    added = next(c for c in changes if c.kind == "added")
    assert added.after == "dropout: Dropout, rate 0.25" and added.phrase() == "dropout added"
    removed = next(c for c in changes if c.kind == "removed")
    assert removed.before.startswith("conv2d_2: Conv2D 64 3x3, relu")
    # Removing conv2d_2 rewires the layer that read from it; adding dropout rewires the one after it.
    assert {c.path for c in changes if c.kind == "rewired"} == {"layers.flatten.inputs", "layers.dense_1.inputs"}


def test_rewired_layer_lists_input_names():
    first = STARTERS["dense"].graph()
    hidden = [n for n in first.nodes if n.type == "Dense"]
    second, _ = add_layer(first, "Dense", {"units": 8}, inputs=[hidden[0].id])
    second = rewire_layer(second, hidden[1].id, [node_named(second, "flatten")])
    change = next(c for c in graph_changes(first, second) if c.kind == "rewired")
    assert (change.path, change.before, change.after) == ("layers.dense_1.inputs", ["dense"], ["flatten"])
    assert change.phrase() == "dense_1 rewired"


def test_renamed_layer_is_a_change_of_name_not_a_new_layer():
    first = convnet()
    second = update_layer(first, node_named(first, "dense"), {"units": 128}, name="hidden")
    assert paths(graph_changes(first, second)) == [("layers.dense.name", "dense", "hidden", "changed"),
                                                   ("layers.dense.units", 64, 128, "changed")]


def test_layers_of_a_restored_copy_match_by_name_when_ids_differ():
    first = convnet()
    second = convnet()
    for node in second.nodes:
        node.id = "x" + node.id
        node.inputs = ["x" + i for i in node.inputs]
    assert graph_changes(first, second) == []


def test_settings_changes_leave_out_reporting_only_settings():
    first = {"optimizer": "adam", "learning_rate": 0.001, "steps_per_execution": 8, "seed": 42}
    second = {"optimizer": "rmsprop", "learning_rate": 0.001, "steps_per_execution": 32, "seed": 42}
    changes = settings_changes(first, second)
    assert paths(changes) == [("settings.optimizer", "adam", "rmsprop", "changed")]
    assert changes[0].phrase() == "optimizer adam → rmsprop"


def facts(run_id: int, graph=None, config=None, test=None, best_epoch=5, params=93_322,
          dataset_id=1) -> RunFacts:
    return RunFacts(id=run_id, graph=graph or convnet(), config=config or {"optimizer": "adam", "seed": 42},
                    dataset_id=dataset_id, dataset_name=f"data {dataset_id}", params=params,
                    best_epoch=best_epoch, best_value=None, test=test or {})


def test_dataset_change_comes_first():
    changes = run_changes(facts(1), facts(2, dataset_id=2))
    assert paths(changes) == [("dataset", "data 1", "data 2", "changed")]


def test_sentence_states_change_and_effect_from_numbers():
    first_graph = convnet()
    second_graph = update_layer(first_graph, node_named(first_graph, "conv2d"), {"activation": "tanh"})
    first = facts(1, first_graph, test={"accuracy": 0.937, "loss": 0.2})
    second = facts(2, second_graph, test={"accuracy": 0.952, "loss": 0.18}, best_epoch=4)
    sentence = summary_sentence(first, second, run_changes(first, second))
    assert sentence == {"text": "Tanh instead of relu in conv2d: test accuracy +1.5 points, best epoch 4 instead of 5.",
                        "within_noise": False}


def test_small_difference_is_flagged_as_possibly_luck():
    first = facts(1, test={"accuracy": 0.937})
    second = facts(2, config={"optimizer": "rmsprop", "seed": 42}, test={"accuracy": 0.941})
    sentence = summary_sentence(first, second, run_changes(first, second))
    assert sentence["within_noise"] is True
    assert sentence["text"] == ("Optimizer adam → rmsprop: test accuracy +0.4 points, best epoch 5 in both. "
                                "A difference this small can come from the random start alone.")


def test_known_seed_spread_decides_what_is_noise():
    first = facts(1, test={"accuracy": 0.90})
    second = facts(2, config={"optimizer": "sgd", "seed": 42}, test={"accuracy": 0.93})
    assert summary_sentence(first, second, run_changes(first, second), seed_spread=0.04)["within_noise"] is True
    assert summary_sentence(first, second, run_changes(first, second), seed_spread=0.01)["within_noise"] is False


def test_regression_reports_error_change_in_percent_and_parameters():
    first = facts(1, test={"mae": 0.52, "loss": 0.4}, params=1000)
    second = facts(2, config={"optimizer": "sgd", "seed": 42}, test={"mae": 0.41, "loss": 0.3}, params=2000)
    text = summary_sentence(first, second, run_changes(first, second))["text"]
    assert text == ("Optimizer adam → sgd: test mae 0.41 instead of 0.52 (-21%), best epoch 5 in both, "
                    "2,000 parameters instead of 1,000.")


def test_no_test_result_says_so_rather_than_guessing():
    first, second = facts(1), facts(2, config={"optimizer": "sgd", "seed": 42})
    assert "no test result to compare yet" in summary_sentence(first, second, run_changes(first, second))["text"]


def test_only_seed_changed_and_many_changes_are_summarized():
    first = facts(1, test={"accuracy": 0.9})
    seed = facts(2, config={"optimizer": "adam", "seed": 7}, test={"accuracy": 0.9})
    assert summary_sentence(first, seed, run_changes(first, seed))["text"].startswith("Only the seed changed:")
    many = facts(3, config={"optimizer": "sgd", "seed": 42, "batch_size": 64, "epochs": 3, "loss": "mse"},
                 test={"accuracy": 0.8})
    text = summary_sentence(first, many, run_changes(first, many))["text"]
    assert text.startswith("4 changes (optimizer adam → sgd; ")


def test_seed_spread_uses_groups_of_repeats_only():
    assert seed_spread({"a": [0.9], "b": [0.91]}) is None
    assert seed_spread({"a": [0.90, 0.93, 0.91], "b": [0.5, 0.51]}) == 0.030000000000000027


def test_a_layer_stored_before_a_parameter_existed_has_not_changed_it():
    current = graph_from_layers([("Input", {"shape": [4]}), ("Dense", {"units": 3})])
    stored = current.model_copy(deep=True)
    for param in ("kernel_regularizer_factor", "bias_regularizer_factor", "trainable"):
        del stored.nodes[1].params[param]
    assert graph_changes(stored, current) == []
