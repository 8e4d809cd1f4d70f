"""Datasets as the page and the API use them: prepare (in the data worker), list, attach.

Built-ins are prepared once per set of parameters and shared by every workspace
(a workshop of 60 people should not hold 60 copies of MNIST); uploads belong to
their workspace's folder alone.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.core import graph as edits
from app.core.graph import Graph
from app.core.training import default_config, output_head
from app.core.validation import Report
from app.data.catalog import BUILTIN_DATASETS, UploadLimits
from app.data.prepared import DatasetMeta, read_meta
from app.errors import InvalidInput, NotFound, PublicError
from app.jobs.warm_worker import WarmWorker, WorkerRefused
from app.store import repository
from app.store.tables import DatasetRecord, ModelDataset, ModelRecord

BUILTIN_TITLES = {spec.key: spec.title for spec in BUILTIN_DATASETS}
SOURCE_FILE = "source"  # the original upload, kept beside the prepared arrays


def upload_limits(settings: Settings) -> UploadLimits:
    return UploadLimits(max_bytes=settings.max_upload_bytes)


def workspace_folder(settings: Settings, workspace_id: str) -> Path:
    return settings.data_dir / "workspaces" / workspace_id


def _prepare(worker: WarmWorker, payload: dict[str, Any]) -> DatasetMeta:
    try:
        meta = worker.call("prepare_dataset", payload)
    except WorkerRefused as exc:
        raise PublicError(exc.message, field=exc.body.get("field"), status=int(exc.body.get("status", 422))) from None
    return DatasetMeta(**meta)


def add_builtin(session: Session, settings: Settings, worker: WarmWorker, workspace_id: str, key: str,
                params: dict[str, Any] | None, options: dict[str, Any] | None,
                name: str | None = None) -> DatasetRecord:
    if key not in BUILTIN_TITLES:
        raise InvalidInput(f"Invalid value received for `key`. Expected one of: {', '.join(BUILTIN_TITLES)}. "
                           f"Received: key={key!r}", field="key")
    spec = json.dumps({"key": key, "params": params or {}, "options": options or {}}, sort_keys=True)
    relative = Path("builtin") / f"{key}-{hashlib.sha256(spec.encode()).hexdigest()[:16]}"
    folder = settings.data_dir / relative
    if (folder / "meta.json").exists():
        meta = read_meta(folder)
    else:
        meta = _prepare(worker, {"source": "builtin", "key": key, "params": params, "options": options,
                                 "folder": str(folder), "cache_dir": str(settings.dataset_cache)})
    title = name or meta.name
    return _record(session, workspace_id, repository.checked_dataset_name(title), "builtin", spec, relative, meta)


def _prepare_upload(settings: Settings, worker: WarmWorker, workspace_id: str, kind: str, uploaded: Path,
                    options: dict[str, Any]) -> tuple[Path, DatasetMeta]:
    """Prepare into a new folder, keeping the original file there so the preparation can be changed."""
    relative = Path("workspaces") / workspace_id / "datasets" / uuid.uuid4().hex
    folder = settings.data_dir / relative
    try:
        meta = _prepare(worker, {"source": kind, "path": str(uploaded), "options": options, "folder": str(folder),
                                 "limits": asdict(upload_limits(settings))})
        shutil.copyfile(uploaded, folder / f"{SOURCE_FILE}{uploaded.suffix}")
    except PublicError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return relative, meta


def add_upload(session: Session, settings: Settings, worker: WarmWorker, workspace_id: str, kind: str,
               uploaded: Path, options: dict[str, Any]) -> DatasetRecord:
    relative, meta = _prepare_upload(settings, worker, workspace_id, kind, uploaded, options)
    spec = json.dumps({"kind": kind, "suffix": uploaded.suffix, "options": options}, sort_keys=True)
    name = repository.checked_dataset_name(options.get("name") or meta.name)
    return _record(session, workspace_id, name, kind, spec, relative, meta)


def reprepare(session: Session, settings: Settings, worker: WarmWorker, record: DatasetRecord,
              options: dict[str, Any]) -> DatasetRecord:
    """Prepare an upload again with other options (target, task, column treatments, split)."""
    if record.source == "builtin":
        raise InvalidInput("Built-in datasets cannot be prepared differently; add the built-in again with "
                           "other parameters instead.")
    spec = json.loads(record.spec_json)
    source = settings.data_dir / record.folder / f"{SOURCE_FILE}{spec['suffix']}"
    if not source.exists():
        raise InvalidInput("The original file of this dataset is gone; upload it again.")
    options = {**options, "name": record.name}
    relative, meta = _prepare_upload(settings, worker, record.workspace_id, record.source, source, options)
    # The old folder stays: earlier runs point at it and can still be evaluated or resumed.
    record.folder, record.meta_json = str(relative), meta.to_json()
    record.spec_json = json.dumps({**spec, "options": options}, sort_keys=True)
    session.commit()
    return record


def _record(session: Session, workspace_id: str, name: str, source: str, spec: str, folder: Path,
            meta: DatasetMeta) -> DatasetRecord:
    repository.ensure_workspace(session, workspace_id)
    record = DatasetRecord(workspace_id=workspace_id, name=name, source=source, spec_json=spec, state="ready",
                           folder=str(folder), meta_json=meta.to_json())
    session.add(record)
    session.commit()
    return record


def list_datasets(session: Session, workspace_id: str) -> list[DatasetRecord]:
    query = select(DatasetRecord).where(DatasetRecord.workspace_id == workspace_id)
    return list(session.scalars(query.order_by(DatasetRecord.id.desc())))


def get_dataset(session: Session, workspace_id: str, dataset_id: int) -> DatasetRecord:
    record = session.get(DatasetRecord, dataset_id)
    if record is None or record.workspace_id != workspace_id:
        raise NotFound(f"There is no dataset {dataset_id} in this workspace.")
    return record


def meta_of(record: DatasetRecord) -> DatasetMeta:
    return DatasetMeta.from_json(record.meta_json or "{}")


def delete_dataset(session: Session, settings: Settings, record: DatasetRecord) -> None:
    folder = settings.data_dir / record.folder
    session.delete(record)
    session.commit()
    if record.source != "builtin":  # built-in folders are shared between workspaces
        shutil.rmtree(folder, ignore_errors=True)


def attached_dataset(session: Session, model: ModelRecord) -> DatasetRecord | None:
    link = session.get(ModelDataset, model.id)
    return session.get(DatasetRecord, link.dataset_id) if link else None


def attach(session: Session, settings: Settings, model: ModelRecord, dataset: DatasetRecord) -> Graph:
    """Attach a dataset and set the Input layer's shape to the data's (an undoable edit)."""
    from app.web.editing import apply_edit

    meta = meta_of(dataset)
    graph = repository.load_graph(model)
    inputs = [n for n in graph.nodes if n.type == "Input"]

    def set_input(g: Graph) -> Graph:
        if not inputs:
            return edits.add_layer(g, "Input", {"shape": meta.input_shape})[0]
        return edits.update_layer(g, inputs[0].id, {"shape": meta.input_shape})

    if not inputs or inputs[0].params.get("shape") != meta.input_shape:
        graph = apply_edit(session, settings, model, set_input, f"use {dataset.name}")
    link = session.get(ModelDataset, model.id)
    if link is None:
        session.add(ModelDataset(model_id=model.id, dataset_id=dataset.id))
    else:
        link.dataset_id = dataset.id
    session.commit()
    return graph


def output_proposal(meta: DatasetMeta) -> dict[str, Any]:
    """The output layer and loss that fit the data."""
    if meta.task == "regression":
        return {"units": 1, "activation": "linear", "loss": "mean_squared_error"}
    if meta.num_classes == 2:
        return {"units": 1, "activation": "sigmoid", "loss": "binary_crossentropy"}
    return {"units": meta.num_classes, "activation": "softmax", "loss": "sparse_categorical_crossentropy"}


def fit_output_layer(session: Session, settings: Settings, model: ModelRecord, meta: DatasetMeta) -> Graph:
    """Give the output Dense layer the units and activation the data needs."""
    from app.web.editing import apply_edit

    graph = repository.load_graph(model)
    head = output_head(graph)
    proposal = output_proposal(meta)
    target = graph.node(head.node_id) if head else None
    if target is None or target.type != "Dense":
        return apply_edit(session, settings, model,
                          lambda g: edits.add_layer(g, "Dense", {"units": proposal["units"],
                                                                 "activation": proposal["activation"]})[0],
                          "add an output layer")
    return apply_edit(session, settings, model,
                      lambda g: edits.update_layer(g, target.id, {"units": proposal["units"],
                                                                  "activation": proposal["activation"]}),
                      "fit the output layer to the data")


def suggested_config(meta: DatasetMeta, graph: Graph, report: Report | None = None) -> dict[str, Any]:
    head = output_head(graph, report)
    return default_config(meta, head.units if head else None).get_config()
