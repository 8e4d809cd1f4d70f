"""Model formats: each export, loaded back by its own runtime, predicts what the Keras model predicts.

The exports are made by the worker's own function (app/worker/formats.py) from a saved .keras
file, as the data worker makes them; the API test goes through the real data worker.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

keras = pytest.importorskip("keras")

from app.core.errors import UserError  # noqa: E402
from app.core.starters import STARTERS  # noqa: E402
from app.services.model_formats import FORMATS, refusal  # noqa: E402
from app.worker.build import build_model  # noqa: E402
from app.worker.formats import EXPORTERS, SAVED_MODEL_FOLDER, export_model_format  # noqa: E402
from app.worker.service import HANDLERS  # noqa: E402
from tests.factories import stack  # noqa: E402
from tests.web.live_server import model_on, start_run, wait_for_run  # noqa: E402

# Float32 kernels of different runtimes reorder sums; on these models the largest difference
# measured is about 1e-7, so 1e-5 leaves room for other CPUs while still catching a wrong weight.
ATOL = 1e-5
SAMPLES = 5


def predict_saved_model(path: Path, x: np.ndarray, scratch: Path) -> np.ndarray:
    import tensorflow as tf

    with zipfile.ZipFile(path) as archive:
        archive.extractall(scratch)
    signature = tf.saved_model.load(str(scratch / SAVED_MODEL_FOLDER)).signatures["serving_default"]
    (name,) = signature.structured_input_signature[1]
    (output,) = signature(**{name: tf.constant(x)}).values()
    return np.asarray(output)


def predict_onnx(path: Path, x: np.ndarray, scratch: Path) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (model_input,) = session.get_inputs()
    return np.asarray(session.run(None, {model_input.name: x})[0])


def predict_litert(path: Path, x: np.ndarray, scratch: Path) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    (model_input,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(model_input["index"], x.shape)  # exported with a dynamic batch size
    interpreter.allocate_tensors()
    interpreter.set_tensor(model_input["index"], x)
    interpreter.invoke()
    return np.asarray(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))


RUNTIMES = {"savedmodel": predict_saved_model, "onnx": predict_onnx, "litert": predict_litert}


@pytest.fixture(scope="module", params=["dense", "convnet"])
def saved(request, tmp_path_factory):
    """A starter model with random weights (fixed seed), saved as a run saves it, and its predictions."""
    keras.utils.set_random_seed(7)
    model = build_model(STARTERS[request.param].graph())
    folder = tmp_path_factory.mktemp(request.param)
    model.save(folder / "model.keras")
    x = np.random.default_rng(7).random((SAMPLES, *model.input_shape[1:]), dtype=np.float32)
    return folder, x, np.asarray(model.predict(x, verbose=0))


def test_every_offered_format_has_an_exporter_and_a_worker_handler():
    assert set(FORMATS) - {"keras"} == set(EXPORTERS) == set(RUNTIMES)
    assert "export_model_format" in HANDLERS


@pytest.mark.parametrize("key", sorted(RUNTIMES))
def test_export_predicts_like_the_keras_model_in_its_own_runtime(saved, key, tmp_path):
    folder, x, expected = saved
    target = folder / "exports" / f"model.{FORMATS[key].extension}"
    answer = export_model_format({"source": str(folder / "model.keras"), "target": str(target), "format": key})
    assert answer["bytes"] == target.stat().st_size > 0
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(".")] == []  # no scratch left
    predicted = RUNTIMES[key](target, x, tmp_path)
    assert predicted.shape == expected.shape
    difference = float(np.max(np.abs(predicted - expected)))
    print(f"{key}: max abs difference {difference:.2e}")
    assert difference <= ATOL


def test_litert_refuses_recurrent_layers_before_and_in_the_worker(tmp_path):
    graph = stack(("Input", {"shape": [6, 3]}), ("LSTM", {"units": 4}), ("Dense", {"units": 1}))
    refused = refusal("litert", graph)
    assert refused is not None and type(refused) is UserError and "LSTM" in refused.message
    assert refusal("onnx", graph) is None and refusal("savedmodel", graph) is None
    build_model(graph).save(tmp_path / "model.keras")
    target = tmp_path / "exports" / "model.tflite"
    with pytest.raises(UserError, match="LiteRT cannot run this model's LSTM layers"):
        export_model_format({"source": str(tmp_path / "model.keras"), "target": str(target), "format": "litert"})
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_api_downloads_a_savedmodel_zip_once_and_refuses_unknown_formats(browser_client, server):
    client = browser_client  # a browser's session, to see the run page too; the API takes its cookie
    client.post("/models", data={"name": "First", "starter": "blank"})  # a page's change opens the workspace
    model = model_on(client, "plane", "regression", n_samples=100)
    run = wait_for_run(client, start_run(client, model["id"], epochs=1)["id"])
    assert run["state"] == "completed", run["reason"]
    page = client.get(f"/runs/{run['id']}").text
    for key in ("savedmodel", "onnx", "litert"):
        assert f'href="{run["model_url"]}?format={key}" download id="download-{key}"' in page

    bogus = client.get(f"{run['model_url']}?format=bogus")
    assert bogus.status_code == 422
    assert all(name in bogus.json()["detail"] for name in ("keras", "savedmodel", "onnx", "litert"))

    response = client.get(f"{run['model_url']}?format=savedmodel")
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"].endswith(f"-run{run['id']}.savedmodel.zip\"")
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert f"{SAVED_MODEL_FOLDER}/saved_model.pb" in archive.namelist()

    kept = server.app.state.scheduler.run_folder(run["id"]) / "exports" / "model.savedmodel.zip"
    made = kept.stat().st_mtime_ns
    again = client.get(f"{run['model_url']}?format=savedmodel")
    assert again.status_code == 200 and again.content == response.content
    assert kept.stat().st_mtime_ns == made  # the second download reused the export

    for key, extension in (("onnx", "onnx"), ("litert", "tflite")):
        single = client.get(f"{run['model_url']}?format={key}")
        assert single.status_code == 200, single.text[:2000]
        assert single.headers["content-disposition"].endswith(f"-run{run['id']}.{extension}\"")
