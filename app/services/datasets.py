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
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.core import graph as edits
from app.core.errors import Conflict, NotFound, Unavailable, invalid_value
from app.core.graph import Graph
from app.core.training import (
    check_training,
    default_config,
    first_dense_of_output_stack,
    output_head,
    suggested_for,
)
from app.core.validation import Report, validate
from app.data.catalog import BUILTIN_DATASETS, DATASETS, UploadLimits, validate_dataset_params, validate_split_options
from app.data.keras_cache import how_to_get, is_cached, probe_mirror, recent_mirror_failure
from app.data.prepared import DatasetMeta, read_meta
from app.jobs.warm_worker import WarmWorker
from app.services import storage, workshops
from app.store import repository
from app.store.db import release_connection
from app.store.tables import DatasetRecord, ModelDataset, ModelRecord, Participant, is_possible_id

SOURCE_FILE = "source"  # the original upload, kept beside the prepared arrays


def upload_limits(settings: Settings) -> UploadLimits:
    return UploadLimits(max_bytes=settings.max_upload_bytes)


def workspace_folder(settings: Settings, workspace_id: str) -> Path:
    return settings.data_dir / "workspaces" / workspace_id


def _prepare(session: Session, worker: WarmWorker, payload: dict[str, Any]) -> DatasetMeta:
    release_connection(session)  # preparing can take a while: wait without holding a database connection
    return DatasetMeta(**worker.call("prepare_dataset", payload))


def add_builtin(session: Session, settings: Settings, worker: WarmWorker, workspace_id: str, key: str,
                params: dict[str, Any] | None, options: dict[str, Any] | None,
                name: str | None = None) -> DatasetRecord:
    """The workspace's dataset for a built-in with these parameters, prepared once for the whole server."""
    if key not in DATASETS:
        raise invalid_value("key", "one of " + ", ".join(DATASETS), key)
    workshops.check_dataset_allowed(session, workspace_id, builtin=key)
    validate_dataset_params(key, params)  # a bad parameter is said as such, before any download or cache check
    validate_split_options(options)
    spec = json.dumps({"key": key, "params": params or {}, "options": options or {}}, sort_keys=True)
    existing = session.scalar(select(DatasetRecord).where(
        DatasetRecord.workspace_id == workspace_id, DatasetRecord.source == "builtin",
        DatasetRecord.spec_json == spec).limit(1))
    if existing is not None and (name is None or existing.name == name):
        return existing  # choosing Digits twice gives the same dataset, not a second copy
    relative = Path("builtin") / f"{key}-{hashlib.sha256(spec.encode()).hexdigest()[:16]}"
    folder = settings.data_dir / relative
    _check_room_for_a_dataset(session, settings, workspace_id)
    with storage.folders_lock:  # recorded before anyone may find the shared folder unused
        if (folder / "meta.json").exists():
            meta = read_meta(folder)
        else:
            check_downloadable(settings, key)
            storage.check_quota(session, settings, workspace_id)
            meta = _prepare(session, worker, {
                "source": "builtin", "key": key, "params": params, "options": options, "folder": str(folder),
                "cache_dir": str(settings.dataset_cache), "mirror": settings.dataset_mirror})
        title = name or meta.name
        return _record(session, settings, workspace_id, repository.checked_dataset_name(title), "builtin", spec,
                       relative, meta)


def check_downloadable(settings: Settings, key: str) -> None:
    """Refuse within seconds a built-in that is neither cached nor downloadable now.

    Checked here, in the web process, so the answer never waits behind the data worker's
    other work; the download itself runs in the worker.
    """
    if not DATASETS[key].needs_download or is_cached(key, settings.dataset_cache):
        return
    reason = probe_mirror(settings.dataset_mirror)
    if reason is not None:
        raise Unavailable(f"{DATASETS[key].title} is not cached on this server and cannot be downloaded "
                          f"now ({reason}). " + how_to_get(DATASETS[key].title), field="dataset")


def _prepare_upload(session: Session, settings: Settings, worker: WarmWorker, workspace_id: str, kind: str,
                    uploaded: Path, options: dict[str, Any]) -> tuple[Path, DatasetMeta]:
    """Prepare into a new folder, keeping the original file there so the preparation can be changed."""
    relative = Path("workspaces") / workspace_id / "datasets" / uuid.uuid4().hex
    folder = settings.data_dir / relative
    try:
        meta = _prepare(session, worker, {"source": kind, "path": str(uploaded), "options": options,
                                          "folder": str(folder), "limits": asdict(upload_limits(settings))})
        shutil.copyfile(uploaded, folder / f"{SOURCE_FILE}{uploaded.suffix}")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return relative, meta


def add_upload(session: Session, settings: Settings, worker: WarmWorker, workspace_id: str, kind: str,
               uploaded: Path, options: dict[str, Any]) -> DatasetRecord:
    workshops.check_dataset_allowed(session, workspace_id, upload_bytes=uploaded.stat().st_size)
    _check_room_for_a_dataset(session, settings, workspace_id)
    storage.check_quota(session, settings, workspace_id, adding=uploaded.stat().st_size)
    relative, meta = _prepare_upload(session, settings, worker, workspace_id, kind, uploaded, options)
    spec = json.dumps({"kind": kind, "suffix": uploaded.suffix, "options": options}, sort_keys=True)
    name = repository.checked_dataset_name(options.get("name") or meta.name)
    return _record(session, settings, workspace_id, name, kind, spec, relative, meta)


def reprepare(session: Session, settings: Settings, worker: WarmWorker, record: DatasetRecord,
              options: dict[str, Any]) -> DatasetRecord:
    """Prepare an upload again with other options (target, task, column treatments, split)."""
    if record.source == "builtin":
        raise Conflict("Built-in datasets cannot be prepared differently; add the built-in again with "
                       "other parameters instead.")
    spec = json.loads(record.spec_json)
    source = settings.data_dir / record.folder / f"{SOURCE_FILE}{spec['suffix']}"
    if not source.exists():
        raise Conflict("The original file of this dataset is gone; upload it again.")
    options = {**options, "name": record.name}
    storage.check_quota(session, settings, record.workspace_id, adding=source.stat().st_size)
    relative, meta = _prepare_upload(session, settings, worker, record.workspace_id, record.source, source,
                                     options)
    old_folder = record.folder
    record.folder, record.meta_json = str(relative), meta.to_json()
    record.spec_json = json.dumps({**spec, "options": options}, sort_keys=True)
    session.commit()
    # The old folder goes, unless earlier runs use it (they can still be evaluated or resumed).
    storage.release_folder(session, settings.data_dir, old_folder)
    return record


def _check_room_for_a_dataset(session: Session, settings: Settings, workspace_id: str) -> None:
    """The one check every path that adds a dataset goes through."""
    limit = settings.max_datasets_per_workspace
    count = session.scalar(select(func.count()).where(DatasetRecord.workspace_id == workspace_id)) or 0
    if count >= limit:
        raise Conflict(f"This workspace already holds {limit} datasets, the most allowed "
                       "(LAYERLAB_MAX_DATASETS_PER_WORKSPACE). Delete one first.", field="dataset")


def _record(session: Session, settings: Settings, workspace_id: str, name: str, source: str, spec: str,
            folder: Path, meta: DatasetMeta) -> DatasetRecord:
    _check_room_for_a_dataset(session, settings, workspace_id)
    record = DatasetRecord(workspace_id=workspace_id, name=name, source=source, spec_json=spec, state="ready",
                           folder=str(folder), meta_json=meta.to_json())
    session.add(record)
    session.commit()
    return record


def _workshop_of(workspace_id: str) -> Any:
    """The workshop a participant's workspace is in, as a subquery (no row for other workspaces)."""
    return select(Participant.workshop_id).where(Participant.workspace_id == workspace_id).scalar_subquery()


def list_datasets(session: Session, workspace_id: str) -> list[DatasetRecord]:
    """The workspace's datasets, and its workshop's challenge datasets."""
    query = select(DatasetRecord).where(or_(DatasetRecord.workspace_id == workspace_id,
                                            DatasetRecord.shared_workshop_id == _workshop_of(workspace_id)))
    return list(session.scalars(query.order_by(DatasetRecord.id.desc())))


def get_dataset(session: Session, workspace_id: str, dataset_id: int) -> DatasetRecord:
    record = session.get(DatasetRecord, dataset_id) if is_possible_id(dataset_id) else None
    if record is not None and record.workspace_id != workspace_id and record.shared_workshop_id is not None:
        if session.scalar(select(_workshop_of(workspace_id))) == record.shared_workshop_id:
            return record
    if record is None or record.workspace_id != workspace_id:
        raise NotFound(f"There is no dataset {dataset_id} in this workspace.", field="dataset")
    return record


def meta_of(record: DatasetRecord) -> DatasetMeta:
    return DatasetMeta.from_json(record.meta_json or "{}")


def delete_dataset(session: Session, settings: Settings, record: DatasetRecord) -> None:
    """Delete the dataset, and its files unless another dataset or a run still uses them."""
    folder = record.folder
    session.delete(record)
    session.commit()
    storage.release_folder(session, settings.data_dir, folder)


def ready_dataset(session: Session, dataset_id: int | None) -> DatasetRecord | None:
    """The dataset a run or search was made with, when it still exists and is prepared."""
    dataset = session.get(DatasetRecord, dataset_id) if dataset_id is not None else None
    return dataset if dataset is not None and dataset.state == "ready" else None


def attached_dataset(session: Session, model: ModelRecord) -> DatasetRecord | None:
    link = session.get(ModelDataset, model.id)
    return session.get(DatasetRecord, link.dataset_id) if link else None


def attach(session: Session, settings: Settings, model: ModelRecord, dataset: DatasetRecord) -> Graph:
    """Attach a dataset and set the Input layer's shape to the data's (an undoable edit)."""
    from app.services.editing import apply_edit

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
    """Give the output layer the units and activation the data needs, so that the model can train.

    A Dense output that works on an image-shaped input gives a prediction per pixel, not per
    sample: a Flatten layer goes before the first Dense of the output stack. When even then
    the model could not train on this data, nothing is changed and the reason is given.
    """
    from app.services.editing import apply_edit

    proposal = output_proposal(meta)
    head_params = {"units": proposal["units"], "activation": proposal["activation"]}

    def fit(graph: Graph) -> Graph:
        report = validate(graph, settings.limits)
        if not report.ok:
            raise report.errors[0].as_error("Fix the model first, then fit its output layer: ")
        head = output_head(graph, report)
        target = graph.node(head.layer_id) if head else None
        if target is None or target.type != "Dense":
            graph = edits.add_layer(graph, "Dense", head_params)[0]
        else:
            graph = edits.update_layer(graph, target.id, head_params)
        graph = _flatten_before_output_stack(graph, validate(graph, settings.limits))
        report = validate(graph, settings.limits)
        problems = report.errors + [i for i in check_training(graph, meta, default_config(
            meta, proposal["units"]), report) if i.severity == "error"]
        if problems:
            raise problems[0].as_error("The output layer cannot be fitted to this data: ")
        return graph

    return apply_edit(session, settings, model, fit, "fit the output layer to the data")


def _flatten_before_output_stack(graph: Graph, report: Report) -> Graph:
    """Insert Flatten before the first Dense of the output stack when the output is not one row per sample."""
    outputs = graph.outputs()
    if len(outputs) != 1 or outputs[0].id not in report.shapes or len(report.shapes[outputs[0].id].output) <= 1:
        return graph
    first_dense = first_dense_of_output_stack(graph)
    if first_dense is None:
        return graph
    before = first_dense.inputs[0]
    if len(graph.consumers(before)) == 1:
        return edits.add_layer(graph, "Flatten", after=before)[0]
    graph, flatten_id = edits.add_layer(graph, "Flatten", inputs=[before])
    return edits.rewire_layer(graph, first_dense.id, [flatten_id])


def suggested_config(meta: DatasetMeta, graph: Graph, report: Report | None = None) -> dict[str, Any]:
    return suggested_for(graph, meta, report).get_config()


def builtin_choices(settings: Settings, graph: Graph, attached: DatasetRecord | None,
                    offered: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The built-ins as the dataset list offers them (in a workshop, those it `offered`): which fit the
    model's Input, which are ready now, and the one to preselect (when no dataset is attached): the
    best fit that needs no download."""
    inputs = [n for n in graph.nodes if n.type == "Input"]
    input_shape = list(inputs[0].params.get("shape", [])) if inputs else []
    head = output_head(graph)
    regression = bool(head and head.units == 1 and head.activation == "linear")
    offline = recent_mirror_failure(settings.dataset_mirror)
    choices: list[dict[str, Any]] = []
    for spec in BUILTIN_DATASETS:
        if offered is not None and spec.key not in offered:
            continue
        ready = not spec.needs_download or is_cached(spec.key, settings.dataset_cache)
        fits = list(spec.input_shape) == input_shape
        notes = []
        if not ready:
            notes.append("not available: no internet" if offline else "downloaded when chosen")
        if input_shape and not fits:
            notes.append("shape " + "x".join(map(str, spec.input_shape)) + ", not this model's input")
        score = (fits, len(spec.input_shape) == len(input_shape), (spec.task == "regression") == regression, ready)
        choices.append({"key": spec.key, "title": spec.title, "description": spec.description, "kind": spec.kind,
                        "fits": fits, "ready": ready, "note": "; ".join(notes), "score": score, "selected": False})
    if attached is None and choices:
        max(choices, key=lambda c: c["score"])["selected"] = True  # max keeps the first of equals
    return choices
