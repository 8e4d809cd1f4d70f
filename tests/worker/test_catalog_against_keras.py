"""Every layer type against Keras, on generated cases: for random parameters within each parameter's bounds and
random input shapes of the rank the layer takes, LayerLab's pure-Python check either accepts the layer with
exactly Keras' output shape and parameter count, or refuses it where Keras refuses it too."""

from __future__ import annotations

import random
from typing import Any

import pytest

from app.core.catalog import CATALOG, Param
from app.core.errors import UserError
from app.core.validation import validate
from tests.factories import INPUT_FOR, single_layer_graph

pytestmark = pytest.mark.slow

keras = pytest.importorskip("keras")

from app.worker.inspect import summarize_graph  # noqa: E402

CASES_PER_TYPE = 6
# Small values keep each build quick; the bounds themselves are tested in tests/core/test_catalog.py.
SMALL = {"filters": 6, "units": 6, "kernel_size": 5, "strides": 3, "pool_size": 4, "size": 3, "n": 5,
         "padding": 3, "cropping": 4, "depth_multiplier": 3, "groups": 8, "output_dim": 5, "input_dim": 50,
         "height": 30, "width": 30}


def value_for(param: Param, rng: random.Random, shape: list[int]) -> Any:
    rank = len(shape)
    if param.name == "dims":
        dims = list(range(1, rank + 1))
        rng.shuffle(dims)
        return dims
    if param.name == "groups" and rng.random() < 0.7:
        return rng.choice([d for d in range(1, shape[-1] + 1) if shape[-1] % d == 0])
    if param.name in ("axis", "axes"):  # LayerLab also refuses axis 0, the batch axis, which Keras would take
        return rng.choice([a for a in range(-rank, rank + 1) if a != 0])
    if param.name in ("target_shape", "shape"):
        return param.default
    low = max(param.minimum, -2.0) if param.minimum is not None else 0
    if param.kind == "bool":
        return rng.random() < 0.5
    if param.kind == "choice":
        return rng.choice(param.choices)
    if param.kind in ("int", "optional_int", "pair", "optional_pair"):
        if param.kind.startswith("optional") and rng.random() < 0.3:
            return None
        high = int(min(param.maximum if param.maximum is not None else 8, SMALL.get(param.name, 8)))
        low = max(int(low), -rank)
        if param.kind in ("pair", "optional_pair"):
            return [rng.randint(low, high), rng.randint(low, high)]
        return rng.randint(low, high)
    if param.kind in ("float", "optional_float"):
        if param.kind == "optional_float" and rng.random() < 0.3:
            return None
        high = min(param.maximum if param.maximum is not None else 2.0, 2.0)
        value = round(rng.uniform(low, high), 3)
        return min(value, high - 0.001) if param.exclusive_maximum else value
    raise AssertionError(param.kind)


def input_for(type_name: str, rng: random.Random) -> list[int]:
    base = INPUT_FOR[type_name]
    if type_name in ("Embedding", "Reshape", "Resizing", "CenterCrop") or type_name.startswith("Random"):
        return base
    return [max(1, dim + rng.randint(-2, 4)) for dim in base]


def keras_refuses(graph) -> bool:
    try:
        summarize_graph(graph)
    except UserError:
        return True
    return False


@pytest.mark.parametrize("type_name", sorted(t for t in CATALOG if t != "Input"))
def test_generated_cases_agree_with_keras(type_name):
    rng = random.Random(f"layerlab-{type_name}")
    layer_type = CATALOG[type_name]
    accepted = 0
    for case in range(CASES_PER_TYPE):
        shape = input_for(type_name, rng)
        params = {p.name: value_for(p, rng, shape) for p in layer_type.params} if case else {}
        try:
            graph = single_layer_graph(type_name, params, shape)
        except UserError:
            continue  # refused on entry (a parameter out of bounds for this input): nothing to build
        report = validate(graph)
        node = graph.nodes[-1]
        if node.id not in report.shapes:  # the layer's own shape check refused it
            assert keras_refuses(graph), (type_name, params, shape, [i.message for i in report.issues])
            continue
        summary = summarize_graph(graph)
        row = next(r for r in summary["layers"] if r["id"] == node.id)
        inferred = report.shapes[node.id]
        assert (summary["trainable_params"], summary["non_trainable_params"]) == (
            report.trainable_params, report.total_params - report.trainable_params), (type_name, params, shape)
        assert tuple(row["output_shape"][1:]) == inferred.output, (type_name, params, shape)
        assert row["params"] == inferred.params, (type_name, params, shape)
        accepted += 1
    assert accepted >= 2, f"{type_name}: too few generated cases were valid to say anything"


def test_the_catalog_offers_at_least_55_layer_types():
    assert len(CATALOG) >= 55


@pytest.mark.parametrize("type_name", sorted(t for t in CATALOG if t != "Input"))
def test_a_keras_config_of_every_layer_type_imports_back_to_the_same_parameters(type_name):
    import json

    from app.core.keras_config import plan_import
    from app.worker.build import build_model

    rng = random.Random(f"import-{type_name}")
    shape = INPUT_FOR[type_name]
    params = {p.name: value_for(p, rng, shape) for p in CATALOG[type_name].params}
    try:
        graph = single_layer_graph(type_name, params, shape)
        assert validate(graph).ok
    except (UserError, AssertionError):
        graph = single_layer_graph(type_name)  # the generated values do not fit: the defaults do
    config = json.loads(build_model(graph).to_json())
    plan = plan_import(config)
    node = graph.nodes[-1]
    imported = next(n for n in plan.graph.nodes if n.name == node.name)
    assert imported.type == type_name and expressed(imported.params) == expressed(node.params)


def expressed(params: dict) -> dict:
    """Parameters as a Keras config can carry them: the factor of a regularizer set to none has no place there."""
    return {name: value for name, value in params.items()
            if not (name.endswith("_regularizer_factor") and params[name.removesuffix("_factor")] == "none")}


@pytest.mark.parametrize("type_name", sorted(t for t in CATALOG if t != "Input"))
def test_the_exported_code_of_every_layer_type_builds_the_same_layer(type_name):
    from keras import layers

    from app.core.codegen import layer_call
    from app.core.keras_args import keras_layer
    from app.worker.build import make_layer

    rng = random.Random(f"code-{type_name}")
    for case in range(3):
        params = {p.name: value_for(p, rng, INPUT_FOR[type_name]) for p in CATALOG[type_name].params} if case else {}
        try:
            node = single_layer_graph(type_name, params).nodes[-1]
        except UserError:
            continue
        written = eval(layer_call(node), {"layers": layers, "keras": keras})  # the line the exported script holds
        built = make_layer(keras_layer(node), node.name)
        assert without_inner_names(written.get_config()) == without_inner_names(built.get_config()), (type_name,
                                                                                                       params)


def without_inner_names(config: dict) -> dict:
    """A layer's config with the names Keras numbers on its own (a wrapped layer's) left out."""
    return {key: without_inner_names(value["config"] | {"name": None}) if key in ("layer", "backward_layer") else value
            for key, value in config.items()}
