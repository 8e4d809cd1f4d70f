"""What to try next after a run: small rules over its curves, settings, graph and test results.

Pure Python. Each rule looks for one problem and, when it sees it, says what it saw with
the numbers and proposes changes in the paths of app.core.compare (`layers.dense.units`,
`settings.optimizer`, or `layers.<new name>` for an added layer), which the service applies
to a copy of the run's graph and settings. A healthy run gets no suggestion.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from app.core.graph import Graph, Node, default_name
from app.core.internals import Finding

HIDDEN_TYPES = frozenset({"Dense", "Conv1D", "Conv2D"})
SATURATING = frozenset({"sigmoid", "tanh", "hard_sigmoid", "softsign"})
CONSTANT_INITIALIZERS = frozenset({"zeros", "ones"})
MIN_EPOCHS = 3                # fewer epochs say too little about a trend
FLAT_CHANGE = 0.01            # a loss that moved less than 1% of its first value is flat
LOW_ACCURACY = 0.90           # below this, a flat training accuracy means the model is too small
OVERFIT_RISE = 0.10           # validation loss 10% above its best while training loss still falls
LOW_RECALL = 0.60             # a class the model finds less than 60% of the time...
RECALL_GAP = 0.20             # ...and 20 points below the average of the classes...
IMBALANCE = 1.5               # ...among classes whose largest is at least 1.5 times the smallest (test split)
STILL_FALLING = 0.005         # a loss still falling by 0.5% or more per epoch at the end...
SLOW_DROP = 0.5               # ...that has not even halved since the first epoch: slow descent


@dataclass(frozen=True)
class RunSummary:
    """What the rules read of a run."""

    state: str
    graph: Graph
    config: Mapping[str, Any]
    epochs: Sequence[Mapping[str, float]]   # each epoch's logs: loss, val_loss, accuracy...
    per_class: Sequence[Mapping[str, Any]] = ()  # the test split's per-class report, when classified
    inside: Sequence[Finding] = ()  # what the records of training show inside the model (app.core.internals)


@dataclass(frozen=True)
class Suggestion:
    key: str
    title: str
    reason: str
    changes: list[dict[str, Any]] = field(default_factory=list)  # {"path", "from", "to"}

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "reason": self.reason, "changes": self.changes}


def _series(run: RunSummary, name: str) -> list[float]:
    return [float(e[name]) for e in run.epochs if isinstance(e.get(name), (int, float))]


def hidden_layers(graph: Graph) -> list[Node]:
    """Dense and convolution layers that feed another layer (the output layer is not hidden)."""
    outputs = {n.id for n in graph.outputs()}
    return [n for n in graph.nodes if n.type in HIDDEN_TYPES and n.id not in outputs]


def _set(node: Node, param: str, value: Any) -> dict[str, Any]:
    return {"path": f"layers.{node.name}.{param}", "from": node.params.get(param), "to": value}


def _settings(run: RunSummary, **values: Any) -> list[dict[str, Any]]:
    """Changes to training settings, leaving out those the run already had (they would change nothing)."""
    return [{"path": f"settings.{name}", "from": run.config.get(name), "to": value}
            for name, value in values.items() if run.config.get(name) != value]


def diverged(run: RunSummary) -> list[Suggestion]:
    losses = [e.get("loss") for e in run.epochs]
    broken = run.state == "diverged" or any(isinstance(v, float) and v != v for v in losses)
    if not broken:
        return []
    rate = float(run.config.get("learning_rate", 0.001))
    return [Suggestion("smaller-learning-rate", f"Learning rate {rate / 10:g} instead of {rate:g}",
                       f"The loss became NaN or infinite with learning rate {rate:g}: the steps were too large "
                       "and the weights blew up. Ten times smaller steps usually train.",
                       _settings(run, learning_rate=rate / 10))]


def stuck_from_the_start(run: RunSummary) -> list[Suggestion]:
    """Flat loss from the first epoch, with saturating activations in a deep stack or a constant start."""
    loss = _series(run, "loss")
    hidden = hidden_layers(run.graph)
    if len(loss) < MIN_EPOCHS or not hidden or abs(loss[0] - loss[-1]) > FLAT_CHANGE * abs(loss[0]):
        return []
    saturating = [n for n in hidden if n.params.get("activation") in SATURATING]
    constant = [n for n in hidden if n.params.get("kernel_initializer") in CONSTANT_INITIALIZERS]
    if constant:
        cause = (f"{', '.join(n.name for n in constant)} start{'s' if len(constant) == 1 else ''} with "
                 f"{constant[0].params['kernel_initializer']} weights, so every unit of a layer computes the same "
                 "thing and learns the same way")
    elif len(saturating) >= 2:
        cause = (f"{len(saturating)} hidden layers use {saturating[0].params['activation']}, whose gradient "
                 "shrinks layer after layer")
    else:
        return []
    changes = _relu_he_normal(hidden)
    return [Suggestion("relu-he-normal", "relu with he_normal in the hidden layers",
                       f"The training loss barely moved in {len(loss)} epochs ({loss[0]:.4g} → {loss[-1]:.4g}): "
                       f"{cause}. "
                       "relu with he_normal initial weights keeps the gradient alive.", changes)]


def underfitting(run: RunSummary) -> list[Suggestion]:
    accuracy, val_accuracy = _series(run, "accuracy"), _series(run, "val_accuracy")
    hidden = [n for n in hidden_layers(run.graph) if n.type == "Dense"]
    if len(accuracy) < MIN_EPOCHS or not hidden or accuracy[-1] >= LOW_ACCURACY:
        return []
    half = len(accuracy) // 2
    gain = accuracy[-1] - accuracy[half - 1]
    if gain > 0.02 or (val_accuracy and val_accuracy[-1] < accuracy[-1] - 0.05):
        return []  # still learning, or a gap between training and validation: not a capacity problem
    seen = (f"Training accuracy reached only {100 * accuracy[-1]:.1f}% and gained {100 * gain:.1f} points over "
            f"the last {len(accuracy) - half} epochs, with validation close to it: the model is too small for "
            "the data.")
    last = hidden[-1]
    units = int(last.params.get("units", 32))
    new_name = default_name(run.graph, "Dense")
    added = {"type": "Dense", "params": {"units": units, "activation": last.params.get("activation", "relu"),
                                         "kernel_initializer": last.params.get("kernel_initializer", "glorot_uniform")},
             "after": last.name}
    return [
        Suggestion("wider", "Twice as many neurons in the hidden layers", seen,
                   [_set(n, "units", min(2 * int(n.params.get("units", 32)), 4096)) for n in hidden]),
        Suggestion("deeper", f"Another hidden layer of {units} after {last.name}", seen,
                   [{"path": f"layers.{new_name}", "from": None, "to": added}]),
    ]


def overfitting(run: RunSummary) -> list[Suggestion]:
    loss, val_loss = _series(run, "loss"), _series(run, "val_loss")
    if len(val_loss) < MIN_EPOCHS or len(loss) != len(val_loss):
        return []
    best = min(range(len(val_loss)), key=val_loss.__getitem__)
    if best == len(val_loss) - 1 or val_loss[-1] < val_loss[best] * (1 + OVERFIT_RISE) or loss[-1] >= loss[best]:
        return []
    if val_loss[-1] <= loss[-1]:
        return []  # the unseen samples still fare no worse than the training ones: a wobble, not memorising
    seen = (f"Validation loss was lowest at epoch {best + 1} ({val_loss[best]:.4g}) and rose to {val_loss[-1]:.4g} by "
            f"epoch {len(val_loss)} while training loss kept falling ({loss[best]:.4g} → {loss[-1]:.4g}): the model "
            "learns the training samples by heart.")
    suggestions = []
    hidden = hidden_layers(run.graph)
    has_dropout = any(n.type == "Dropout" for n in run.graph.nodes)
    if hidden and not has_dropout:
        last = hidden[-1]
        added = {"type": "Dropout", "params": {"rate": 0.3}, "after": last.name}
        suggestions.append(Suggestion("dropout", f"Dropout 0.3 after {last.name}", seen,
                                      [{"path": f"layers.{default_name(run.graph, 'Dropout')}", "from": None,
                                        "to": added}]))
    if not run.config.get("early_stopping"):
        suggestions.append(Suggestion(
            "early-stopping", "Early stopping on validation loss", seen,
            _settings(run, early_stopping=True, early_stopping_monitor="val_loss", restore_best_weights=True)))
    return suggestions


def slow_sgd(run: RunSummary) -> list[Suggestion]:
    """Plain SGD still descending slowly at the end, or going up and down on the way."""
    loss = _series(run, "loss")
    if run.config.get("optimizer") != "sgd" or len(loss) < MIN_EPOCHS:
        return []
    steps = [b - a for a, b in pairwise(loss)]
    rises = sum(1 for s in steps if s > 0)
    still_falling = loss[-1] < loss[-2] * (1 - STILL_FALLING) and loss[-1] > loss[0] * SLOW_DROP
    if not (still_falling or rises >= max(1, len(steps) // 3)):
        return []
    how = (f"went up in {rises} of {len(steps)} epochs" if rises >= max(1, len(steps) // 3)
           else f"was still falling {100 * (1 - loss[-1] / loss[-2]):.0f}% per epoch at the end")
    return [Suggestion("adam", "Adam instead of SGD",
                       f"With SGD the training loss {how} ({loss[0]:.4g} → {loss[-1]:.4g}). Adam adapts the step "
                       "size of every weight and usually gets there in fewer epochs.",
                       _settings(run, optimizer="adam", learning_rate=0.001))]


def weak_class(run: RunSummary) -> list[Suggestion]:
    recalls = [(c["name"], float(c["recall"])) for c in run.per_class if isinstance(c.get("recall"), (int, float))]
    if len(recalls) < 2:
        return []
    average = sum(r for _, r in recalls) / len(recalls)
    name, worst = min(recalls, key=lambda item: item[1])
    if worst >= LOW_RECALL or worst > average - RECALL_GAP or run.config.get("class_weight") == "balanced":
        return []
    sizes = [int(c["support"]) for c in run.per_class if isinstance(c.get("support"), int) and c["support"] > 0]
    if len(sizes) == len(run.per_class) and max(sizes) < IMBALANCE * min(sizes):
        return []  # classes of about the same size: weighing them by rarity would change next to nothing
    return [Suggestion("class-weights", "Weigh the classes by how rare they are",
                       f"The model finds only {100 * worst:.0f}% of the test samples of class {name}, against "
                       f"{100 * average:.0f}% on average. Weighing each class by how rare it is in the training "
                       "split makes its mistakes count more (more samples of it would help too).",
                       _settings(run, class_weight="balanced"))]


def _relu_he_normal(nodes: Sequence[Node]) -> list[dict[str, Any]]:
    return [c for n in nodes for c in (_set(n, "activation", "relu"), _set(n, "kernel_initializer", "he_normal"))
            if c["from"] != c["to"]]


def seen_inside(run: RunSummary) -> list[Suggestion]:
    """What the records of training showed: saturated or vanishing layers get relu with he_normal; dead relu
    units get leaky_relu, whose negative side still passes a gradient."""
    hidden = hidden_layers(run.graph)
    by_id = {n.id: n for n in hidden}
    suggestions: list[Suggestion] = []
    starved = [f for f in run.inside if f.kind in ("saturated", "vanishing")]
    changes = _relu_he_normal([n for n in hidden if n.params.get("activation") in SATURATING]
                              or ([by_id[f.layer_id] for f in starved if f.layer_id in by_id]))
    if starved and changes:
        suggestions.append(Suggestion("relu-he-normal", "relu with he_normal in the hidden layers",
                                      " ".join(f.text for f in starved) + " relu does not flatten out for positive "
                                      "inputs, and he_normal starts the weights at a scale that suits it.", changes))
    dead = [f for f in run.inside if f.kind == "dead" and f.layer_id in by_id]
    if dead:
        suggestions.append(Suggestion(
            "leaky-relu", f"leaky_relu instead of relu in {', '.join(f.layer_name for f in dead)}",
            " ".join(f.text for f in dead) + " A unit whose input is negative for every sample gets no gradient "
            "through relu and stays dead; leaky_relu keeps a small slope there, so it can come back. (A smaller "
            "learning rate also kills fewer units.)",
            [_set(by_id[f.layer_id], "activation", "leaky_relu") for f in dead]))
    return suggestions


RULES: tuple[Callable[[RunSummary], list[Suggestion]], ...] = (
    diverged, stuck_from_the_start, seen_inside, underfitting, overfitting, slow_sgd, weak_class)


def suggest(run: RunSummary) -> list[Suggestion]:
    """Every rule's suggestions, the first found first; a diverged run gets only the learning-rate advice."""
    found = diverged(run)
    if found:
        return found
    suggestions: list[Suggestion] = []
    for rule in RULES[1:]:
        suggestions += [s for s in rule(run) if s.key not in {k.key for k in suggestions}]
    return suggestions
