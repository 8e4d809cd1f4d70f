"""Datasets over JSON: built-ins, uploads, previews, and attaching one to a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from app.core.errors import NotFound, UserError
from app.data.catalog import catalog_as_dict
from app.services import datasets
from app.store import repository
from app.store.tables import DatasetRecord
from app.web.api.schemas import DatasetOut, example
from app.web.deps import ApiDataset, ApiModel, ApiWorkspace, DataWorkerDep, SchedulerDep, SessionDep, SettingsDep
from app.web.uploads import save_upload

router = APIRouter(tags=["datasets"])


class BuiltinRequest(BaseModel):
    model_config = example({"key": "digits", "options": {"validation_fraction": 0.15, "split_seed": 0}})
    key: str = Field(description="A key from GET /api/v1/datasets/builtin.")
    params: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict, description="Split options.")
    name: str | None = None


class AttachRequest(BaseModel):
    model_config = example({"dataset_id": 3})
    dataset_id: int


def dataset_out(record: DatasetRecord) -> DatasetOut:
    meta = datasets.meta_of(record)
    return DatasetOut.model_validate({
            "id": record.id, "name": record.name, "source": record.source, "state": record.state,
            "created_at": record.created_at, "kind": meta.kind, "task": meta.task,
            "input_shape": meta.input_shape, "class_names": meta.class_names,
            "feature_names": meta.feature_names, "target_name": meta.target_name,
            "split_sizes": meta.split_sizes, "preview": meta.preview,
            "samples_url": f"/api/v1/datasets/{record.id}/samples.png" if meta.kind == "image" else None})


@router.get("/datasets/builtin")
def builtin_catalog() -> dict[str, Any]:
    """Built-in datasets with their parameters, split options, upload options and limits."""
    return catalog_as_dict()


@router.get("/datasets")
def list_datasets(workspace_id: ApiWorkspace, session: SessionDep) -> list[DatasetOut]:
    """The workspace's datasets (and, in a workshop, its challenge datasets), newest first."""
    return [dataset_out(r) for r in datasets.list_datasets(session, workspace_id)]


@router.post("/datasets", status_code=201)
def add_builtin(body: BuiltinRequest, workspace_id: ApiWorkspace, session: SessionDep, settings: SettingsDep,
                worker: DataWorkerDep) -> DatasetOut:
    """Prepare a built-in dataset (split, scaled, previewed) for this workspace."""
    return dataset_out(datasets.add_builtin(session, settings, worker, workspace_id, body.key, body.params,
                                            body.options, body.name))


async def read_upload_form(request: Request, folder: Path) -> tuple[str, dict[str, Any], Path]:
    """Save the uploaded file under the workspace; returns (kind, options, path)."""
    form = await request.form(max_files=1, max_fields=10)
    kind = str(form.get("kind") or "")
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise UserError("Send the file in a multipart field named `file`.", field="file")
    try:
        options = json.loads(str(form.get("options") or "{}"))
    except json.JSONDecodeError:
        raise UserError("`options` must be a JSON object.", field="options") from None
    if not isinstance(options, dict):
        raise UserError("`options` must be a JSON object.", field="options")
    for field in ("name", "target"):
        if form.get(field):
            options[field] = str(form.get(field))
    options.setdefault("name", Path(upload.filename or "upload").stem[:60])
    suffix = {"csv": ".csv", "npz": ".npz", "images": ".zip"}.get(kind, ".bin")
    return kind, options, await save_upload(upload, folder, suffix)


@router.post("/datasets/upload", status_code=201)
async def upload(request: Request, workspace_id: ApiWorkspace, settings: SettingsDep,
                 worker: DataWorkerDep) -> DatasetOut:
    """Upload a CSV, an NPZ or a zip of images (multipart fields: file, kind, name, target, options as JSON)."""
    kind, options, path = await read_upload_form(request, datasets.workspace_folder(settings, workspace_id) / "uploads")
    try:
        def prepare() -> DatasetOut:
            with request.app.state.sessions() as session:
                return dataset_out(datasets.add_upload(session, settings, worker, workspace_id, kind, path, options))
        return await run_in_threadpool(prepare)
    finally:
        path.unlink(missing_ok=True)


@router.get("/datasets/{dataset_id}")
def get_dataset(record: ApiDataset) -> DatasetOut:
    """The dataset with its preview: rows and statistics, class balance, scatter points or sample images."""
    return dataset_out(record)


class PrepareRequest(BaseModel):
    model_config = example({"options": {"target": "price", "task": "regression", "test_fraction": 0.2}})
    options: dict[str, Any] = Field(description="Upload options: target, task, column_types, split options...")


@router.post("/datasets/{dataset_id}/prepare")
def prepare_again(record: ApiDataset, body: PrepareRequest, session: SessionDep,
                  settings: SettingsDep, worker: DataWorkerDep) -> DatasetOut:
    """Prepare an uploaded dataset again with other options; models using it follow."""
    return dataset_out(datasets.reprepare(session, settings, worker, record, body.options))


@router.get("/datasets/{dataset_id}/samples.png")
def samples_image(record: ApiDataset, settings: SettingsDep) -> FileResponse:
    """A grid of sample images per class (image datasets), as PNG."""
    path = settings.data_dir / record.folder / "samples.png"
    if not path.exists():
        raise NotFound("This dataset has no sample images.")
    return FileResponse(path, media_type="image/png")


@router.delete("/datasets/{dataset_id}", status_code=204)
def delete_dataset(record: ApiDataset, session: SessionDep, settings: SettingsDep) -> Response:
    """Delete a dataset of the workspace; its files go once no run uses them."""
    datasets.delete_dataset(session, settings, record)
    return Response(status_code=204)


@router.put("/models/{model_id}/dataset")
def attach_dataset(body: AttachRequest, record: ApiModel, workspace_id: ApiWorkspace, session: SessionDep,
           settings: SettingsDep, scheduler: SchedulerDep) -> dict[str, Any]:
    """Attach a dataset: the Input layer takes the data's shape; the fitting output and loss are proposed."""
    dataset = datasets.get_dataset(session, workspace_id, body.dataset_id)
    graph = datasets.attach(session, settings, record, dataset)
    scheduler.executor.warm_up()  # a model with data is usually trained soon
    meta = datasets.meta_of(dataset)
    return {"model_id": record.id, "dataset": dataset_out(dataset),
            "proposed_output": datasets.output_proposal(meta),
            "suggested_config": datasets.suggested_config(meta, graph)}


@router.post("/models/{model_id}/dataset/fit-output")
def fit_output(record: ApiModel, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """Give the output layer the units and activation the attached data needs."""
    dataset = datasets.attached_dataset(session, record)
    if dataset is None:
        raise UserError("Attach a dataset to this model first (PUT /api/v1/models/{id}/dataset).")
    datasets.fit_output_layer(session, settings, record, datasets.meta_of(dataset))
    return {"model_id": record.id, "layers": [n.model_dump() for n in repository.load_graph(record).nodes]}
