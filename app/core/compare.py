"""What changed between two runs, and what it did: the diff and the sentence of the compare page.

Pure Python. Layers are matched by their id (kept through edits, duplicates and restores),
then by name, so a renamed layer is a change of name rather than a removal and an addition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.core.graph import Graph, Node
from app.core.runs import describe_layer

# Settings that say how a run is reported, not how it learns: left out of "what changed".
REPORTING_ONLY = frozenset({"steps_per_execution", "record_internals"})


@dataclass(frozen=True)
class Change:
    """One difference: `path` names it (`layers.conv2d.activation`, `settings.optimizer`, `dataset`)."""

    path: str
    before: Any
    after: Any

    @property
    def kind(self) -> str:
        if self.before is None:
            return "added"
        if self.after is None:
            return "removed"
        return "rewired" if self.path.endswith(".inputs") else "changed"

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "from": self.before, "to": self.after, "kind": self.kind, "text": self.phrase()}

    def phrase(self) -> str:
        """The change in a few words: `tanh instead of relu in conv2d`, `dense_2 added`."""
        where = self.path.split(".")
        if where[0] == "layers" and len(where) == 2:
            return f"{where[1]} added" if self.kind == "added" else f"{where[1]} removed"
        if where[0] == "layers":
            layer, param = where[1], ".".join(where[2:])
            if param in ("activation", "kernel_initializer"):
                return f"{_value(self.after)} instead of {_value(self.before)} in {layer}"
            if param == "inputs":
                return f"{layer} rewired"
            return f"{layer} {param} {_value(self.before)} → {_value(self.after)}"
        if where[0] == "settings":
            return f"{where[1].replace('_', ' ')} {_value(self.before)} → {_value(self.after)}"
        return f"{self.path} {_value(self.before)} → {_value(self.after)}"


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "x".join(map(str, value)) if all(isinstance(v, int) for v in value) else ", ".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)


def _match_layers(first: Graph, second: Graph) -> list[tuple[Node | None, Node | None]]:
    """Pairs (layer in first, same layer in second), with None on the side where it does not exist:
    the same id and type first, then the same name and type; removed layers come first."""
    partner: dict[str, Node] = {}  # id in second -> its layer in first
    taken: set[str] = set()
    for strategy in ("id", "name"):
        for node in first.nodes:
            if node.id in taken:
                continue
            other = next((o for o in second.nodes if o.id not in partner and o.type == node.type
                          and getattr(o, strategy) == getattr(node, strategy)), None)
            if other is not None:
                partner[other.id] = node
                taken.add(node.id)
    removed: list[tuple[Node | None, Node | None]] = [(n, None) for n in first.nodes if n.id not in taken]
    return removed + [(partner.get(n.id), n) for n in second.nodes]


def graph_changes(first: Graph, second: Graph) -> list[Change]:
    """Layers added, removed, renamed, rewired or with other parameters, in the second graph's order."""
    pairs = _match_layers(first, second)
    name_in_first = {n.id: n.name for n in first.nodes}
    name_in_second = {n.id: n.name for n in second.nodes}
    # A layer's inputs are the same when they are the same layers, whatever their ids or names now.
    same_as_in_first = {after.id: before.id for before, after in pairs if before is not None and after is not None}
    changes: list[Change] = []
    for before, after in pairs:
        if after is None:
            assert before is not None
            changes.append(Change(f"layers.{before.name}", describe_layer(before), None))
            continue
        if before is None:
            changes.append(Change(f"layers.{after.name}", None, describe_layer(after)))
            continue
        path = f"layers.{before.name}"
        if before.name != after.name:
            changes.append(Change(f"{path}.name", before.name, after.name))
        old_params, new_params = before.full_params(), after.full_params()
        for param in dict.fromkeys([*old_params, *new_params]):
            old, new = old_params.get(param), new_params.get(param)
            if old != new:
                changes.append(Change(f"{path}.{param}", old, new))
        if before.inputs != [same_as_in_first.get(i) for i in after.inputs]:
            changes.append(Change(f"{path}.inputs", [name_in_first.get(i, i) for i in before.inputs],
                                  [name_in_second.get(i, i) for i in after.inputs]))
    return changes


def settings_changes(first: Mapping[str, Any], second: Mapping[str, Any]) -> list[Change]:
    """Training settings that differ (reporting-only ones left out)."""
    return [Change(f"settings.{name}", first.get(name), second.get(name))
            for name in dict.fromkeys([*first, *second])
            if name not in REPORTING_ONLY and first.get(name) != second.get(name)]


@dataclass(frozen=True)
class RunFacts:
    """What the comparison needs of a run, taken from its record by the caller."""

    id: int
    graph: Graph
    config: Mapping[str, Any]
    dataset_id: int | None
    dataset_name: str
    params: int | None
    best_epoch: int | None
    best_value: float | None         # the chosen validation metric at its best epoch
    test: Mapping[str, float]        # test metrics by name (accuracy, loss, mae...)


def run_changes(first: RunFacts, second: RunFacts) -> list[Change]:
    """Everything that made the second run different from the first: data, layers and settings."""
    changes = []
    if first.dataset_id != second.dataset_id:
        changes.append(Change("dataset", first.dataset_name, second.dataset_name))
    return changes + graph_changes(first.graph, second.graph) + settings_changes(first.config, second.config)


# Metrics where a higher value is better; for the others (losses and errors) lower is better.
HIGHER_IS_BETTER = frozenset({"accuracy", "val_accuracy"})


def headline_metric(test: Mapping[str, float]) -> str | None:
    """The test metric a sentence reports: accuracy for classes, else an error (mae, rmse), else loss."""
    for name in ("accuracy", "mae", "rmse", "mse", "loss"):
        if name in test:
            return name
    return None


def metric_delta(name: str, before: float, after: float) -> str:
    """`test accuracy +1.5 points` (shares as points); `test mae 0.41 instead of 0.52 (-21%)`."""
    label = name.replace("_", " ")
    if "accuracy" in name:
        return f"{label} {100 * (after - before):+.1f} points"
    relative = f" ({100 * (after - before) / abs(before):+.0f}%)" if before else ""
    return f"{label} {after:.3g} instead of {before:.3g}{relative}"


# Below this difference (in the metric's own units; accuracy as a share), repeating with other seeds
# is the only way to tell a change's effect from luck, unless repeats are known (see seed_spread).
SMALL_ACCURACY_DIFFERENCE = 0.01
SMALL_RELATIVE_DIFFERENCE = 0.03


def is_small(name: str, before: float, after: float) -> bool:
    if "accuracy" in name:
        return abs(after - before) < SMALL_ACCURACY_DIFFERENCE
    return abs(after - before) <= SMALL_RELATIVE_DIFFERENCE * max(abs(before), 1e-12)


def summary_sentence(first: RunFacts, second: RunFacts, changes: Sequence[Change],
                     seed_spread: float | None = None) -> dict[str, Any]:
    """One plain sentence on the change and its effect, from the numbers only.

    `seed_spread` is the largest difference of the headline test metric seen between runs that
    differ only in their seed (None when no such repeats exist). Returns the sentence and whether
    the difference may be luck (`within_noise`), which the page turns into "repeat with 3 seeds".
    """
    what = _what_changed(changes)
    effects: list[str] = []
    within_noise = False
    name = headline_metric(first.test) if headline_metric(first.test) == headline_metric(second.test) else None
    if name is not None:
        before, after = first.test[name], second.test[name]
        effects.append(metric_delta(f"test {name}", before, after))
        if seed_spread is not None:
            within_noise = abs(after - before) <= seed_spread
        else:
            within_noise = is_small(name, before, after)
    elif first.best_value is not None and second.best_value is not None:
        effects.append(f"best validation value {second.best_value:.3g} instead of {first.best_value:.3g}")
    else:
        effects.append("no test result to compare yet")
    if first.best_epoch is not None and second.best_epoch is not None:
        if first.best_epoch == second.best_epoch:
            effects.append(f"best epoch {second.best_epoch} in both")
        else:
            effects.append(f"best epoch {second.best_epoch} instead of {first.best_epoch}")
    if first.params is not None and second.params is not None and first.params != second.params:
        effects.append(f"{second.params:,} parameters instead of {first.params:,}")
    sentence = f"{what}: {', '.join(effects)}."
    if within_noise:
        sentence += (" That is within the spread seen when only the seed changes." if seed_spread is not None
                     else " A difference this small can come from the random start alone.")
    return {"text": sentence[0].upper() + sentence[1:], "within_noise": within_noise}


def _what_changed(changes: Sequence[Change]) -> str:
    phrases = [c.phrase() for c in changes if c.path != "settings.seed"]
    seed_only = not phrases and any(c.path == "settings.seed" for c in changes)
    if seed_only:
        return "only the seed changed"
    if not phrases:
        return "nothing changed"
    if len(phrases) > 3:
        return f"{len(phrases)} changes ({'; '.join(phrases[:2])}; …)"
    return "; ".join(phrases)


def seed_spread(values_by_setup: Mapping[str, Sequence[float]]) -> float | None:
    """The largest max-min spread among groups of runs with the same setup but different seeds."""
    spreads = [max(v) - min(v) for v in values_by_setup.values() if len(v) >= 2]
    return max(spreads) if spreads else None
