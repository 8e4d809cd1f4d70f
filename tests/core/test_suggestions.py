"""Each suggestion rule on synthetic curves, and no suggestion for a healthy run."""

from __future__ import annotations

from typing import Any

from app.core.graph import update_layer
from app.core.starters import STARTERS
from app.core.suggestions import RunSummary, suggest

SETTINGS = {"optimizer": "adam", "learning_rate": 0.001, "early_stopping": False, "class_weight": "none"}


def dense():
    return STARTERS["dense"].graph()


def epochs(**series: list[float]) -> list[dict[str, float]]:
    count = len(next(iter(series.values())))
    return [{name: values[i] for name, values in series.items()} for i in range(count)]


def run(curves: list[dict[str, float]], graph=None, state: str = "completed", per_class=(),
        **settings: Any) -> RunSummary:
    return RunSummary(state=state, graph=graph or dense(), config={**SETTINGS, **settings}, epochs=curves,
                      per_class=per_class)


def keys(summary: RunSummary) -> list[str]:
    return [s.key for s in suggest(summary)]


HEALTHY = epochs(loss=[0.9, 0.5, 0.3, 0.2, 0.15], val_loss=[0.85, 0.5, 0.33, 0.25, 0.22],
                 accuracy=[0.7, 0.85, 0.91, 0.94, 0.96], val_accuracy=[0.72, 0.84, 0.9, 0.93, 0.94])


def test_a_healthy_run_gets_no_suggestion():
    assert suggest(run(HEALTHY)) == []


def test_diverged_run_gets_only_a_ten_times_smaller_learning_rate():
    curves = epochs(loss=[2.3, float("nan")], val_loss=[2.2, float("nan")])
    found = suggest(run(curves, state="diverged", learning_rate=5.0))
    assert [s.key for s in found] == ["smaller-learning-rate"]
    assert found[0].changes == [{"path": "settings.learning_rate", "from": 5.0, "to": 0.5}]
    assert "learning rate 5" in found[0].reason


def test_underfitting_offers_wider_and_deeper():
    curves = epochs(loss=[1.2, 1.0, 0.98, 0.97, 0.97, 0.96], val_loss=[1.2, 1.0, 0.99, 0.98, 0.98, 0.97],
                    accuracy=[0.5, 0.6, 0.61, 0.615, 0.62, 0.62], val_accuracy=[0.5, 0.6, 0.6, 0.61, 0.61, 0.62])
    found = {s.key: s for s in suggest(run(curves))}
    assert list(found) == ["wider", "deeper"]
    assert found["wider"].changes == [{"path": "layers.dense.units", "from": 64, "to": 128},
                                      {"path": "layers.dense_1.units", "from": 64, "to": 128}]
    added = found["deeper"].changes[0]
    assert added["path"] == "layers.dense_3" and added["from"] is None
    assert added["to"] == {"type": "Dense", "params": {"units": 64, "activation": "relu",
                                                       "kernel_initializer": "glorot_uniform"}, "after": "dense_1"}
    assert "Training accuracy reached only 62.0%" in found["wider"].reason


def test_a_model_still_learning_is_not_called_too_small():
    curves = epochs(loss=[1.2, 1.0, 0.8, 0.6], accuracy=[0.5, 0.6, 0.7, 0.8], val_accuracy=[0.5, 0.6, 0.7, 0.79])
    assert keys(run(curves)) == []


def test_overfitting_offers_dropout_and_early_stopping():
    curves = epochs(loss=[0.8, 0.5, 0.3, 0.2, 0.1, 0.05], val_loss=[0.8, 0.55, 0.45, 0.5, 0.6, 0.7])
    found = {s.key: s for s in suggest(run(curves))}
    assert list(found) == ["dropout", "early-stopping"]
    assert found["dropout"].changes[0]["to"] == {"type": "Dropout", "params": {"rate": 0.3}, "after": "dense_1"}
    assert "lowest at epoch 3 (0.45) and rose to 0.7 by epoch 6" in found["dropout"].reason
    assert {"path": "settings.early_stopping", "from": False, "to": True} in found["early-stopping"].changes
    # With early stopping already on, only Dropout is offered.
    assert keys(run(curves, early_stopping=True)) == ["dropout"]
    # A setting the run already had is not listed as a change.
    found = {s.key: s for s in suggest(run(curves, early_stopping_monitor="val_loss", restore_best_weights=True))}
    assert found["early-stopping"].changes == [{"path": "settings.early_stopping", "from": False, "to": True}]


def test_a_validation_loss_that_rises_yet_stays_below_the_training_loss_is_not_called_overfitting():
    curves = epochs(loss=[0.9, 0.5, 0.3, 0.2, 0.17, 0.16], val_loss=[0.5, 0.2, 0.1, 0.075, 0.08, 0.084])
    assert keys(run(curves)) == []


def test_flat_loss_with_sigmoid_stack_or_zero_weights_suggests_relu_and_he_normal():
    curves = epochs(loss=[2.302, 2.301, 2.301, 2.300], val_loss=[2.302, 2.302, 2.301, 2.301])
    sigmoid = dense()
    for node in sigmoid.nodes[2:4]:
        sigmoid = update_layer(sigmoid, node.id, {"activation": "sigmoid"})
    found = suggest(run(curves, graph=sigmoid))
    assert found[0].key == "relu-he-normal" and "2 hidden layers use sigmoid" in found[0].reason
    assert {"path": "layers.dense.activation", "from": "sigmoid", "to": "relu"} in found[0].changes
    zeros = update_layer(dense(), dense().nodes[2].id, {"kernel_initializer": "zeros"})
    found = suggest(run(curves, graph=zeros))
    assert found[0].key == "relu-he-normal" and "dense starts with zeros weights" in found[0].reason
    # The same flat curve with relu and a random start: no initializer advice.
    assert "relu-he-normal" not in keys(run(curves))


def test_slow_or_noisy_sgd_suggests_adam():
    slow = epochs(loss=[2.3, 2.0, 1.8, 1.6, 1.45])
    found = suggest(run(slow, optimizer="sgd", learning_rate=0.01))
    assert [s.key for s in found] == ["adam"] and "still falling 9% per epoch" in found[0].reason
    noisy = epochs(loss=[1.0, 0.8, 0.9, 0.7, 0.75, 0.6])
    assert "went up in 2 of 5 epochs" in suggest(run(noisy, optimizer="sgd"))[0].reason
    assert keys(run(slow)) == []  # the same curve with adam: nothing to say about the optimizer
    already = suggest(run(slow, optimizer="sgd", learning_rate=0.001))[0]
    assert already.changes == [{"path": "settings.optimizer", "from": "sgd", "to": "adam"}]


def test_a_class_found_rarely_suggests_class_weights():
    per_class = [{"name": "cat", "recall": 0.95}, {"name": "dog", "recall": 0.92}, {"name": "fox", "recall": 0.35}]
    found = suggest(run(HEALTHY, per_class=per_class))
    assert [s.key for s in found] == ["class-weights"]
    assert "only 35% of the test samples of class fox" in found[0].reason
    assert found[0].changes == [{"path": "settings.class_weight", "from": "none", "to": "balanced"}]
    assert keys(run(HEALTHY, per_class=per_class, class_weight="balanced")) == []
    # With classes of about the same size, weighing them by rarity would change nothing: not suggested.
    sized = [{**c, "support": support} for c, support in zip(per_class, [120, 40, 30])]
    assert keys(run(HEALTHY, per_class=sized)) == ["class-weights"]
    balanced = [{**c, "support": support} for c, support in zip(per_class, [122, 128, 125])]
    assert keys(run(HEALTHY, per_class=balanced)) == []
