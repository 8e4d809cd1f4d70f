"""A run's trained model in the format a user asks for: Keras, SavedModel, ONNX or LiteRT.

The .keras file is the run's own; every other format is made from it by Keras' `model.export`
in the data worker (app/worker/formats.py), never in the web process, which must not import
TensorFlow. Each export is kept in the run's folder under `exports/`, so a second download
is a plain file read, and it is made again only when the run's model file is newer (a
resumed run's checkpoint).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from sqlalchemy.orm import Session

from app.core.errors import NotFound, Unavailable, UserError
from app.core.graph import Graph
from app.core.runs import FINAL_MODEL
from app.jobs.scheduler import Scheduler
from app.jobs.warm_worker import WarmWorker
from app.services.training import saved_model
from app.store.db import release_connection
from app.store.tables import RunRecord
from app.worker.formats import RECURRENT_LAYERS, litert_refusal

ModelFormat = Literal["keras", "savedmodel", "onnx", "litert"]
FORMAT_NAMES: tuple[str, ...] = get_args(ModelFormat)
EXPORTS_FOLDER = "exports"


@dataclass(frozen=True)
class FormatInfo:
    key: str
    title: str
    extension: str  # of the downloaded file, after the run's name
    media_type: str
    packages: tuple[str, ...] = ()  # Python packages the export needs beyond TensorFlow and Keras


FORMATS: dict[str, FormatInfo] = {f.key: f for f in (
    FormatInfo("keras", "Keras (.keras)", "keras", "application/octet-stream"),
    FormatInfo("savedmodel", "TensorFlow SavedModel (.zip)", "savedmodel.zip", "application/zip"),
    FormatInfo("onnx", "ONNX (.onnx)", "onnx", "application/octet-stream", packages=("tf2onnx", "onnx")),
    FormatInfo("litert", "LiteRT (.tflite)", "tflite", "application/octet-stream"),
)}

FORMAT_HELP = ("The format of the download: `keras` (the run's own .keras file, the default), `savedmodel` "
               "(a TensorFlow SavedModel folder as a .zip), `onnx` or `litert` (.tflite). The others are "
               "made from the .keras file by Keras' `model.export` on the first download and kept.")


@dataclass(frozen=True)
class Download:
    path: Path
    filename: str
    media_type: str


def refusal(key: str, graph: Graph) -> UserError | None:
    """Why this server cannot offer a format for this model, in words for people; None when it can.

    Worked out without TensorFlow, before any export: Unavailable (503) when this server lacks a
    package the export needs, a plain UserError (422) when the format cannot express the model.
    """
    missing = [name for name in FORMATS[key].packages if importlib.util.find_spec(name) is None]
    if missing:
        return Unavailable(f"{FORMATS[key].title} export needs the Python package(s) {', '.join(missing)}, "
                           "which this server does not have installed.", field="format")
    if key == "litert":
        recurrent = sorted({node.type for node in graph.nodes} & set(RECURRENT_LAYERS))
        if recurrent:
            return UserError(litert_refusal(recurrent), field="format")
    return None


def model_download(session: Session, scheduler: Scheduler, worker: WarmWorker, run: RunRecord,
                   key: str) -> Download:
    """The file to send for a run's model in `key`'s format, exported first when it is not kept yet."""
    if key not in FORMATS:  # the API's query type refuses these first; other callers get the same answer
        raise UserError(f"Unknown model format {key!r}; allowed: {', '.join(FORMAT_NAMES)}.", field="format")
    model = saved_model(scheduler, run)
    if model is None:
        raise NotFound("This run has no saved model yet: it is still training, or it ended before "
                       "finishing an epoch.")
    file, epoch = model
    info = FORMATS[key]
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in run.model_name) or "model"
    suffix = "" if file == FINAL_MODEL else f"-epoch{epoch}"
    filename = f"{stem}-run{run.id}{suffix}.{info.extension}"
    folder = scheduler.run_folder(run.id)
    source = folder / file
    if key == "keras":
        return Download(source, filename, info.media_type)
    refused = refusal(key, Graph.model_validate_json(run.graph_json))
    if refused is not None:
        raise refused
    target = folder / EXPORTS_FOLDER / f"{Path(file).stem}.{info.extension}"
    if not _is_current(target, source):
        release_connection(session)  # an export takes seconds: wait without holding a database connection
        worker.call("export_model_format", {"source": str(source), "target": str(target), "format": key})
    return Download(target, filename, info.media_type)


def _is_current(export: Path, source: Path) -> bool:
    """A kept export made from this very model file (not from an earlier checkpoint of the run)."""
    try:
        return export.stat().st_mtime >= source.stat().st_mtime
    except FileNotFoundError:
        return False
