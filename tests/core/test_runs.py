"""Run states, the best epoch and the one-line architecture."""

from app.core.graph import graph_from_layers
from app.core.runs import ACTIVE_STATES, RESUMABLE_STATES, RunState, architecture_line, at_best_epoch, best_epoch
from app.core.starters import STARTERS


def test_states_say_whether_a_run_is_active_or_resumable():
    assert {s.value for s in ACTIVE_STATES} == {"queued", "running"}
    assert RunState("cancelled").resumable and not RunState("completed").resumable
    assert RunState("running").active and not RunState("diverged").active
    assert RunState.COMPLETED not in RESUMABLE_STATES


def test_best_epoch_prefers_validation_loss_and_reads_either_record_form():
    events = [{"epoch": 1, "logs": {"loss": 0.9, "val_loss": 0.8}},
              {"epoch": 2, "logs": {"loss": 0.5, "val_loss": 0.9}}]
    assert best_epoch(events) == 1
    history = [{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.4}, {"epoch": 3, "loss": None}]
    assert best_epoch(history) == 2
    assert best_epoch([]) is None


def test_a_metric_is_reported_at_the_best_epoch_not_at_its_own_best():
    # Validation accuracy peaks at epoch 3, but the loss is lowest at epoch 2: lists and comparisons give
    # epoch 2's accuracy, the epoch the run page marks as best and early stopping keeps.
    events = [{"epoch": 1, "logs": {"val_loss": 0.8, "val_accuracy": 0.70}},
              {"epoch": 2, "logs": {"val_loss": 0.4, "val_accuracy": 0.90}},
              {"epoch": 3, "logs": {"val_loss": 0.6, "val_accuracy": 0.93}}]
    assert at_best_epoch(events, "val_accuracy") == (0.90, 2)
    assert at_best_epoch(events, "val_loss") == (0.4, 2)
    assert at_best_epoch(events, "val_auc") is None
    assert at_best_epoch([], "val_accuracy") is None


def test_two_models_that_differ_in_one_activation_describe_themselves_differently():
    relu = STARTERS["convnet"].graph()
    tanh = graph_from_layers([(t, {**p, "activation": "tanh"} if t == "Conv2D" else p)
                              for t, p in STARTERS["convnet"].layers])
    assert architecture_line(relu) != architecture_line(tanh)
    assert "conv2d: Conv2D 32 3x3, relu, glorot_uniform" in architecture_line(relu)
    assert "conv2d: Conv2D 32 3x3, tanh, glorot_uniform" in architecture_line(tanh)
    assert "max_pooling2d: MaxPooling2D 2x2" in architecture_line(relu)
    dropout = graph_from_layers([("Input", {"shape": [4]}), ("Dropout", {"rate": 0.25})])
    assert architecture_line(dropout) == "input: Input 4 → dropout: Dropout, rate 0.25"
