"""Exported scripts run in a fresh Python process with only Keras and the data at hand.

Each starter and a branching model: the script's `build_model()` has the same layers (their Keras
configs), output shapes and parameter count as LayerLab's own build. A run's script trains on the
same data, split and seed, and reproduces the run's first-epoch loss.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.codegen import model_script
from app.core.starters import STARTERS
from app.core.validation import validate
from tests.core.test_codegen import branching
from tests.web.live_server import model_on, ok, start_run, wait_for_run, workspace_client

pytestmark = pytest.mark.slow

# The same seed, data, order of batches and initial weights: the first epoch's loss agrees to float32
# rounding (the run and the script each sum about 40 batch losses in float32).
LOSS_TOLERANCE = 1e-4


def run_fresh(folder: Path, program: str, timeout: float = 300) -> dict:
    """Run `program` in a new interpreter whose working folder holds the scripts; its last line is JSON."""
    done = subprocess.run([sys.executable, "-c", program], cwd=folder, capture_output=True, text=True,
                          timeout=timeout, env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3",
                                                "HOME": str(folder)})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_starter_and_a_branching_model_build_the_same_model(tmp_path):
    import keras

    from app.worker.build import build_model

    graphs = {key: STARTERS[key].graph() for key in STARTERS if len(STARTERS[key].graph().nodes) > 1}
    graphs["branching"] = branching()
    for key, graph in graphs.items():
        (tmp_path / f"exported_{key}.py").write_text(model_script(graph, key).as_python())
    program = ("import importlib, json, sys\n"
               f"found = {{}}\nfor key in {sorted(graphs)!r}:\n"
               "    model = importlib.import_module(f'exported_{key}').build_model()\n"
               "    found[key] = {'params': model.count_params(),\n"
               "                  'layers': [(l.name, type(l).__name__, list(l.output.shape), l.get_config())\n"
               "                             for l in model.layers]}\n"
               "found['imports_layerlab'] = 'app' in sys.modules\n"
               "print(json.dumps(found))\n")
    found = run_fresh(tmp_path, program)
    assert found.pop("imports_layerlab") is False
    for key, graph in graphs.items():
        report = validate(graph)
        assert found[key]["params"] == report.total_params, key
        ours = build_model(graph)
        ours_layers = {layer.name: layer for layer in ours.layers if not isinstance(layer, keras.layers.InputLayer)}
        exported = {name: (kind, shape, config) for name, kind, shape, config in found[key]["layers"]
                    if kind != "InputLayer"}
        assert set(exported) == set(ours_layers), key
        by_name = {node.name: node for node in graph.nodes}
        for name, (kind, shape, config) in exported.items():
            assert kind == type(ours_layers[name]).__name__
            assert tuple(shape[1:]) == tuple(report.shapes[by_name[name].id].output), (key, name)
            expected = json.loads(json.dumps(ours_layers[name].get_config()))
            assert config == expected, (key, name)


def test_a_runs_script_reproduces_its_first_epoch(server, tmp_path):
    client = workspace_client(server)
    model = model_on(client, "digits", "dense")
    run = wait_for_run(client, start_run(client, model["id"], epochs=2, seed=7)["id"], timeout=180)
    assert run["state"] == "completed"
    response = client.get(f"/api/v1/runs/{run['id']}/export.py")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/x-python")
    assert f'filename="net-run{run["id"]}.py"' in response.headers["content-disposition"]
    (tmp_path / "exported_run.py").write_text(response.text)
    program = ("import json, exported_run\n"
               "history = exported_run.main()\n"
               "print(json.dumps({'loss': history.history['loss'], 'val_loss': history.history['val_loss'],"
               " 'saved': exported_run.MODEL_FILE.exists()}))\n")
    found = run_fresh(tmp_path, program)
    ours = [epoch["logs"] for epoch in run["metrics"]["epochs"]]
    assert found["saved"]
    assert abs(found["loss"][0] - ours[0]["loss"]) <= LOSS_TOLERANCE * max(1.0, ours[0]["loss"]), (found, ours)
    assert abs(found["val_loss"][0] - ours[0]["val_loss"]) <= LOSS_TOLERANCE * max(1.0, ours[0]["val_loss"])
    notebook = ok(client.get(f"/api/v1/runs/{run['id']}/export.ipynb"))
    assert notebook["nbformat"] == 4
