"""Leaving with working code: a model or a run as a Keras script or notebook, the architecture as Keras
JSON, and a dataset's prepared arrays (what an exported script loads when it cannot load the data itself)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from app.core.codegen import Script
from app.core.errors import NotFound
from app.core.notebook import notebook
from app.services import exports
from app.web.deps import ApiDataset, ApiModel, ApiRun, InspectorDep, SessionDep, SettingsDep

router = APIRouter(tags=["export"])
PYTHON = "text/x-python; charset=utf-8"
NOTEBOOK = "application/x-ipynb+json"


def attachment(body: str, media_type: str, filename: str) -> Response:
    return Response(body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def as_python(script: Script, name: str) -> Response:
    return attachment(script.as_python(), PYTHON, f"{name}.py")


def as_notebook(script: Script, name: str) -> Response:
    return attachment(notebook(script), NOTEBOOK, f"{name}.ipynb")


@router.get("/models/{model_id}/export.py", response_class=Response,
            responses={200: {"content": {PYTHON: {"example": "import keras\n..."}}}})
def export_model_script(record: ApiModel) -> Response:
    """The model as a Keras 3 script: `build_model()` returns the network (Sequential for a chain of layers,
    functional where it branches); running the file prints its summary. No LayerLab import."""
    return as_python(*exports.model_code(record))


@router.get("/models/{model_id}/export.ipynb", response_class=Response,
            responses={200: {"content": {NOTEBOOK: {}}}})
def export_model_notebook(record: ApiModel) -> Response:
    """The model's script as a Jupyter notebook."""
    return as_notebook(*exports.model_code(record))


@router.get("/models/{model_id}/config.json", response_class=Response,
            responses={200: {"content": {"application/json": {"example": {"class_name": "Functional"}}}}})
def export_keras_config(record: ApiModel, session: SessionDep, inspector: InspectorDep) -> Response:
    """The architecture as Keras itself writes it (`model.to_json()`), for `keras.models.model_from_json`."""
    name = exports.model_code(record)[1]
    return attachment(exports.keras_config(session, inspector, record), "application/json", f"{name}.json")


@router.get("/runs/{run_id}/export.py", response_class=Response,
            responses={200: {"content": {PYTHON: {"example": "import keras\n..."}}}})
def export_run_script(run: ApiRun, session: SessionDep, settings: SettingsDep) -> Response:
    """The run as a Keras 3 script: its model, its data (the built-in image sets loaded and split as LayerLab
    does; other data from its prepared arrays, GET /datasets/{id}/arrays.npz), its settings and seed; it
    trains, tests on the test split and saves the model."""
    return as_python(*exports.run_code(session, settings, run))


@router.get("/runs/{run_id}/export.ipynb", response_class=Response,
            responses={200: {"content": {NOTEBOOK: {}}}})
def export_run_notebook(run: ApiRun, session: SessionDep, settings: SettingsDep) -> Response:
    """The run's script as a Jupyter notebook, one cell per part."""
    return as_notebook(*exports.run_code(session, settings, run))


@router.get("/datasets/{dataset_id}/arrays.npz", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download_arrays(record: ApiDataset, settings: SettingsDep) -> FileResponse:
    """The prepared arrays (x_train, y_train, x_val, y_val, x_test, y_test) as NumPy's .npz."""
    from app.core.codegen import slug

    path = exports.arrays_file(settings, record)
    if record.state != "ready" or not path.exists():
        raise NotFound(f"Dataset {record.id} is not prepared, so it has no arrays to download.")
    return FileResponse(path, media_type="application/octet-stream",
                        filename=f"{slug(record.name, 'data')}.npz")
