"""Importing a model file (.keras or Keras JSON): the data worker reads it, the model is created here.

The upload is read and checked in the data worker alone (app/worker/importing.py), which answers
with a LayerLab graph and, when the file held trained weights, a weights file it wrote for the
rebuilt model. The model is created only after every check has passed, so a refused import leaves
nothing behind. Kept weights live in the workspace's folder:

  workspaces/<ws>/imports/m<model id>-<hex>.weights.h5   Keras' weights file of the rebuilt model
  workspaces/<ws>/imports/m<model id>-<hex>.json         the model it belongs to, and its layers' groups

A run of the model starts from them: `copy_to_run` puts a copy in the run's folder before it is
queued, and the training worker assigns them to the layers that still have the same name and shapes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.config import Settings
from app.core.errors import Forbidden, UserError
from app.core.graph import Graph, check_model_name
from app.core.runs import INITIAL_WEIGHTS, INITIAL_WEIGHTS_KEYS
from app.jobs.warm_worker import WarmWorker
from app.services import storage, workshops
from app.services.datasets import workspace_folder
from app.services.editing import _check_room_for_a_model, model_from_graph
from app.store import repository
from app.store.db import release_connection
from app.store.tables import ModelRecord

IMPORTS = "imports"
DEFAULT_NAME = "Imported model"
STRAY_AGE_S = 600  # a kept file whose model is gone, older than this, is removed
_SUFFIXES = re.compile(r"(\.keras|\.json)$", re.IGNORECASE)


@dataclass
class ImportResult:
    record: ModelRecord
    imported: list[str]
    not_imported: list[str]
    weights: dict[str, Any] | None


@dataclass(frozen=True)
class ImportedWeights:
    """Weights kept from an import, for a model whose layers still have the names in `layer_keys`."""

    path: Path
    layer_keys: dict[str, str]  # layer name -> its group under `layers/` in the file
    layers: list[str]           # the layers that have weights
    source: str = ""            # where they came from: the uploaded file's name, or `run <id>`


def imports_folder(settings: Settings, workspace_id: str) -> Path:
    return workspace_folder(settings, workspace_id) / IMPORTS


def import_model(session: Session, settings: Settings, worker: WarmWorker, workspace_id: str, uploaded: Path,
                 filename: str, name: str | None = None, is_upload: bool = True) -> ImportResult:
    """A new model from an uploaded .keras file or Keras JSON config (or, not an upload, a run's own saved
    model); refused imports store nothing."""
    size = uploaded.stat().st_size
    name = check_model_name(name) if name else None
    if is_upload:
        check_upload_allowed(session, workspace_id, size)
    _check_room_for_a_model(session, settings, workspace_id)
    storage.check_quota(session, settings, workspace_id, adding=size)
    staged = uploaded.parent / f"{uuid.uuid4().hex}.weights.h5"
    try:
        release_connection(session)  # the worker may take a while: wait without a database connection
        answer = worker.call("import_model", {
            "path": str(uploaded), "filename": filename, "max_bytes": settings.max_upload_bytes,
            "limits": asdict(settings.limits), "weights_out": str(staged)})
        graph = Graph.model_validate(answer["graph"])
        if name:
            _check_room_for_a_model(session, settings, workspace_id)
            record = repository.create_model(session, workspace_id, name, graph)
        else:
            record = model_from_graph(session, settings, workspace_id, default_name(filename, answer["model_name"]),
                                      graph)
        weights = answer.get("weights")
        not_imported = list(answer["not_imported"])
        if weights:
            try:
                _keep_weights(settings, record, staged, weights, filename)
            except BaseException:
                repository.delete_model(session, record)
                raise
        _forget_strays(session, settings, workspace_id)
        return ImportResult(record, list(answer["imported"]), not_imported, weights)
    finally:
        staged.unlink(missing_ok=True)


def check_upload_allowed(session: Session, workspace_id: str, size: int) -> None:
    """In a workshop: uploads must be on, the file within the participant's limit, the workshop open."""
    member = workshops.membership(session, workspace_id)
    if member is None:
        return
    if member.closed:
        raise Forbidden("This workshop is closed: your work is read-only now.")
    if not member.limits.uploads:
        raise Forbidden("Uploads are off in this workshop, model files included.", field="file")
    if size > member.limits.max_upload_mb * 1024 * 1024:
        raise UserError(f"This workshop takes uploads up to {member.limits.max_upload_mb} MB; this file has "
                        f"{size / 1024 / 1024:.1f} MB.", field="file")


def default_name(filename: str, model_name: str) -> str:
    """The file's name without its extension, else the name Keras gave the model, if either is a valid name."""
    for candidate in (_SUFFIXES.sub("", Path(filename).name), model_name):
        try:
            return check_model_name(candidate[:60])
        except UserError:
            continue
    return DEFAULT_NAME


def _stamp(moment: datetime) -> str:
    """The record's creation time in naive UTC (the form its stamp was first written in), to recognise the model."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat()


def _keep_weights(settings: Settings, record: ModelRecord, staged: Path, weights: dict[str, Any],
                  filename: str) -> None:
    folder = imports_folder(settings, record.workspace_id)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"m{record.id}-{uuid.uuid4().hex[:12]}"
    target, note = folder / f"{stem}.weights.h5", folder / f"{stem}.json"
    part = folder / f"{stem}.json.part"
    try:
        os.replace(staged, target)
        part.write_text(json.dumps({
            "model_id": record.id, "model_created_at": _stamp(record.created_at), "weights": target.name,
            "source": Path(filename).name[:200], "layer_keys": weights["layer_keys"], "layers": weights["layers"],
            "values": weights["values"]}))
        os.replace(part, note)  # written last: a weights file without its note is a leftover
    except BaseException:
        for path in (target, part, note):
            path.unlink(missing_ok=True)
        raise


def imported_weights(settings: Settings, record: ModelRecord) -> ImportedWeights | None:
    """The weights kept from importing this model, if any (for training or evaluation to start from)."""
    for note in sorted(imports_folder(settings, record.workspace_id).glob(f"m{record.id}-*.json")):
        facts = _read_note(note)
        if facts is None or facts.get("model_id") != record.id or \
                facts.get("model_created_at") != _stamp(record.created_at):
            continue  # an earlier model with the same id
        path = note.parent / str(facts.get("weights"))
        if path.parent == note.parent and path.is_file():
            return ImportedWeights(path, dict(facts.get("layer_keys") or {}), list(facts.get("layers") or []),
                                   str(facts.get("source") or ""))
    return None


def copy_to_run(weights: ImportedWeights, run_dir: Path) -> None:
    """The run's own copy of the weights it starts from: the model's file may change or go before it trains."""
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights.path, run_dir / INITIAL_WEIGHTS)
    (run_dir / INITIAL_WEIGHTS_KEYS).write_text(json.dumps(weights.layer_keys))


def _read_note(path: Path) -> dict[str, Any] | None:
    try:
        facts = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return facts if isinstance(facts, dict) else None


def _forget_strays(session: Session, settings: Settings, workspace_id: str) -> None:
    """Remove kept weights whose model is gone (deleting a model leaves them), and leftovers of crashes.

    Only files older than a few minutes: younger ones may belong to an import still under way.
    """
    folder = imports_folder(settings, workspace_id)
    if not folder.is_dir():
        return
    models: dict[Any, str] = {r.id: _stamp(r.created_at) for r in repository.list_models(session, workspace_id)}
    kept: set[str] = set()
    for note in folder.glob("*.json"):
        facts = _read_note(note)
        if facts is not None and models.get(facts.get("model_id")) == facts.get("model_created_at"):
            kept.update((note.name, str(facts.get("weights"))))
    cutoff = time.time() - STRAY_AGE_S
    for path in folder.iterdir():
        try:
            if path.name not in kept and path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass  # gone meanwhile
