"""What the records of training say (findings), how they are drawn, and the suggestions they lead to."""

from __future__ import annotations

from app.core.internals import ALERT_SHARE, findings, watched_effect
from app.core.suggestions import RunSummary, suggest
from app.web.inside_charts import gradient_profile, ridgeline, thinned
from tests.factories import stack


def histogram(low: float, high: float, counts: list[int]) -> dict:
    return {"low": low, "high": high, "counts": counts, "mean": (low + high) / 2, "std": 1.0, "nonfinite": 0}


def layer(node_id: str, name: str, activation: str, hidden: bool = True) -> dict:
    return {"id": node_id, "name": name, "type": "Dense", "activation": activation,
            "watch": watched_effect(activation), "hidden": hidden, "has_weights": True, "output_shape": [8]}


def internals(records: list[dict], layers: list[dict] | None = None) -> dict:
    layers = layers or [layer("n2", "dense", "relu"), layer("n3", "dense_1", "tanh"),
                        layer("n4", "dense_2", "softmax", hidden=False)]
    return {"version": 1, "bins": 3, "probe": {"split": "validation", "samples": 64}, "layers": layers,
            "records": records}


def record(epoch: int, dead: float = 0.0, saturated: float = 0.0, norms: tuple[float, ...] = ()) -> dict:
    layers = {"n2": {"weights": histogram(-1, 1, [1, 2, 1]), "activations": histogram(0, 2, [5, 1, 0]), "dead": dead},
              "n3": {"weights": histogram(-1, 1, [1, 2, 1]), "activations": histogram(-1, 1, [4, 0, 4]),
                     "saturated": saturated},
              "n4": {"weights": histogram(-1, 1, [1, 2, 1]), "activations": histogram(0, 1, [3, 3, 3])}}
    for node_id, norm in zip(("n2", "n3", "n4"), norms, strict=False):
        layers[node_id]["gradient_norm"] = norm
    return {"epoch": epoch, "layers": layers}


def test_what_to_watch_follows_the_activation():
    assert watched_effect("relu") == "dead" and watched_effect("sigmoid") == "saturated"
    assert watched_effect("tanh") == "saturated" and watched_effect("softmax") is None
    assert watched_effect(None) is None


def test_a_healthy_run_has_no_findings():
    assert findings(internals([record(0, norms=(0.2, 0.3, 0.4)), record(5, dead=0.1, saturated=0.2)])) == []
    assert findings(None) == [] and findings(internals([])) == []


def test_dead_and_saturated_layers_are_read_at_the_last_record():
    data = internals([record(0, dead=0.9, saturated=0.9), record(8, dead=ALERT_SHARE, saturated=0.75)])
    found = {f.kind: f for f in findings(data)}
    assert set(found) == {"dead", "saturated"}
    assert found["dead"].layer_id == "n2" and found["dead"].share == ALERT_SHARE and found["dead"].epoch == 8
    assert "50% of its relu units are dead" in found["dead"].text
    assert found["saturated"].layer_id == "n3" and "75% of its tanh outputs are saturated" in found["saturated"].text
    recovered = internals([record(0, dead=0.9), record(8, dead=0.2)])
    assert findings(recovered) == []


def test_the_output_layer_is_never_flagged():
    layers = [layer("n2", "dense", "relu"), layer("n3", "dense_1", "relu"), layer("n4", "out", "sigmoid", False)]
    data = internals([{"epoch": 3, "layers": {"n4": {"saturated": 1.0}}}], layers)
    assert findings(data) == []


def test_vanishing_and_exploding_gradients_compare_the_first_and_last_layers_at_the_first_record():
    vanishing = findings(internals([record(0, norms=(1e-5, 1e-3, 1e-2)), record(1, norms=(1, 1, 1))]))
    assert [(f.kind, f.layer_id, f.epoch) for f in vanishing] == [("vanishing", "n2", 0)]
    assert "1.0e-03 times the one at dense_2 at the start of training" in vanishing[0].text
    exploding = findings(internals([record(0, norms=(500.0, 5.0, 1.0))]))
    assert [f.kind for f in exploding] == ["exploding"]
    two_layers = [layer("n2", "dense", "relu"), layer("n4", "out", "softmax", False)]
    assert findings(internals([record(0, norms=(1e-9, 1.0))], two_layers)) == []


def deep_graph(activation: str):
    return stack(("Input", {"shape": [4]}), ("Dense", {"units": 8, "activation": activation}),
                 ("Dense", {"units": 8, "activation": "tanh"}), ("Dense", {"units": 3, "activation": "softmax"}))


def summary(graph, inside) -> RunSummary:
    epochs = [{"loss": 1.0 - 0.1 * i, "val_loss": 1.0 - 0.1 * i} for i in range(4)]
    return RunSummary(state="completed", graph=graph, config={"optimizer": "adam", "learning_rate": 0.001},
                      epochs=epochs, inside=inside)


def test_dead_units_lead_to_leaky_relu_and_saturation_to_relu_with_he_normal():
    graph = deep_graph("relu")
    inside = findings(internals([record(0), record(4, dead=0.8, saturated=0.9)]))
    by_key = {s.key: s for s in suggest(summary(graph, inside))}
    assert set(by_key) == {"leaky-relu", "relu-he-normal"}
    assert by_key["leaky-relu"].changes == [{"path": "layers.dense.activation", "from": "relu", "to": "leaky_relu"}]
    assert "80% of its relu units are dead" in by_key["leaky-relu"].reason
    assert {"path": "layers.dense_1.activation", "from": "tanh", "to": "relu"} in by_key["relu-he-normal"].changes
    assert suggest(summary(graph, [])) == []  # the same curves without the records: nothing to say


def test_a_ridgeline_draws_each_kept_record_on_one_axis():
    records = [record(e) for e in range(20)]
    kept = thinned(records)
    assert len(kept) == 8 and kept[0]["epoch"] == 0 and kept[-1]["epoch"] == 19
    svg = str(ridgeline(records, "n2", "weights", "Weights of dense"))
    assert svg.count("<polygon") == 8 and svg.count('class="ridge-last"') == 1
    assert 'aria-label="Weights of dense"' in svg and ">19</text>" in svg
    assert str(ridgeline(records, "missing", "weights", "x")) == ""


def test_the_gradient_profile_has_one_line_per_record_with_gradients():
    data = internals([record(0, norms=(1e-3, 1e-2, 1e-1)), record(1, norms=(0.1, 0.2, 0.3)), record(9)])
    svg = str(gradient_profile(data["layers"], data["records"]))
    assert svg.count("<polyline") == 2 and "epoch 0" in svg and "epoch 1" in svg and "epoch 9" not in svg
    assert ">1e-3</text>" in svg and ">dense_2</text>" in svg
    assert str(gradient_profile(data["layers"], [record(9)])) == ""
