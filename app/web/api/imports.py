"""Bringing a model in: a `.keras` file or a Keras JSON config becomes an editable LayerLab model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from app.core.errors import UserError
from app.services import importing, reuse
from app.services.datasets import workspace_folder
from app.store.tables import RunRecord
from app.web.api.models import model_out
from app.web.api.schemas import ModelOut
from app.web.deps import ApiRun, ApiWorkspace, DataWorkerDep, SchedulerDep, SettingsDep
from app.web.uploads import save_upload

router = APIRouter(tags=["import"])


class ImportedWeightsOut(BaseModel):
    layers: list[str] = Field(description="The layers whose trained weights were imported.")
    values: int = Field(description="How many numbers they hold.")
    used_in_training: bool = Field(True, description="Runs of the model start from these weights (layers whose "
                                   "name and shape are unchanged); a run's own later epochs replace them.")


class ImportOut(ModelOut):
    imported: list[str] = Field(description="What the file gave the model: its layers, its trained weights.")
    not_imported: list[str] = Field(description="What LayerLab left out (optimizer state, compile settings, "
                                                "settings its layers do not have), each with the reason.")
    weights: ImportedWeightsOut | None = None


def import_out(result: importing.ImportResult, settings: Any) -> ImportOut:
    weights = ImportedWeightsOut(layers=result.weights["layers"], values=result.weights["values"]) \
        if result.weights else None
    return ImportOut(**model_out(result.record, settings).model_dump(), imported=result.imported,
                     not_imported=result.not_imported, weights=weights)


def _run_import(request: Request, settings: Any, worker: Any, workspace_id: str, path: Path, filename: str,
                name: str | None) -> importing.ImportResult:
    with request.app.state.sessions() as session:
        return importing.import_model(session, settings, worker, workspace_id, path, filename, name)


def _reuse(request: Request, settings: Any, scheduler: Any, worker: Any, run_id: int, workspace_id: str,
           name: str | None) -> ImportOut:
    with request.app.state.sessions() as session:
        run = session.get(RunRecord, run_id)
        return import_out(reuse.reuse_run(session, settings, scheduler, worker, run, workspace_id, name), settings)


class ReuseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"name": "Fashion from digits"}})

    name: str | None = Field(None, description="The new model's name; default `Run <id> reused`.")


@router.post("/runs/{run_id}/reuse", status_code=201)
async def reuse_run(run: ApiRun, workspace_id: ApiWorkspace, request: Request, settings: SettingsDep,
                    scheduler: SchedulerDep, worker: DataWorkerDep, body: ReuseIn | None = None) -> ImportOut:
    """A new model with the run's layers and trained weights (those of its saved model: the last saved epoch
    for a run that ended early), to fine-tune. Every run of the new model starts from these weights in each
    layer whose name and weight shapes are unchanged; a layer you change (an output layer for other classes)
    starts fresh, and each run's `started` event lists the layers that got weights. Freeze layers with their
    `trainable` parameter. 409 while the run has no saved model."""
    return await run_in_threadpool(_reuse, request, settings, scheduler, worker, run.id, workspace_id,
                                   body.name if body else None)


@router.post("/models/import", status_code=201)
async def import_model(request: Request, workspace_id: ApiWorkspace, settings: SettingsDep,
                       worker: DataWorkerDep) -> ImportOut:
    """Import a model: multipart field `file` (a `.keras` file, or `model.to_json()` saved as .json) and an
    optional `name`. The file is read as data, never run: every layer must be one LayerLab offers (Lambda
    layers, custom classes and modules outside Keras are refused, by name); trained weights are checked
    against the rebuilt model and kept with it. Answers the new model, with what was and was not imported.
    Files up to LAYERLAB_MAX_UPLOAD_BYTES."""
    form = await request.form(max_files=1, max_fields=5)
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise UserError("Send the model file in a multipart field named `file`. Expected a .keras file or a Keras "
                        "JSON config.", field="file")
    name = str(form.get("name") or "").strip() or None
    filename = str(upload.filename or "")
    path = await save_upload(upload, workspace_folder(settings, workspace_id) / "uploads")
    try:
        result = await run_in_threadpool(_run_import, request, settings, worker, workspace_id, path, filename, name)
        return await run_in_threadpool(import_out, result, settings)
    finally:
        path.unlink(missing_ok=True)

