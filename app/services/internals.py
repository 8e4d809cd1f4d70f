"""Inside a run: the checks made in the web process (from the run's graph, settings and dataset's meta)
before the data worker draws a cached PNG (a convnet's feature maps, filters and saliency; on 2-D data,
the decision boundary and a Dense layer's units at an epoch), and the internals recorded during
training. The web process never imports TensorFlow."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.config import Settings
from app.core.errors import Conflict, NotFound, UserError
from app.core.graph import Graph, Node
from app.core.internals import REPLAYED_EPOCHS, findings, kept_epochs, read_internals
from app.core.runs import INTERNALS, REPLAYED_INTERNALS, RunState
from app.core.training import TrainConfig, output_head, uses_logits
from app.data.prepared import DatasetMeta, read_meta
from app.jobs.scheduler import Scheduler
from app.jobs.warm_worker import WarmWorker
from app.services.insights import refuse_reconstruction
from app.services.training import saved_model
from app.store.db import release_connection
from app.store.tables import RunRecord

# A dataset's kind in words, for the refusals below.
KIND_WORDS = {"image": "a set of images", "table": "a table of numbers", "points2d": "a set of 2-D points",
              "sequence": "a set of token sequences"}
FEATURE_MAP_TYPES = ("Conv2D", "MaxPooling2D", "AveragePooling2D")
FILTER_TYPES = ("Conv2D",)
UNIT_TYPES = ("Dense",)


@dataclass
class Picture:
    """A PNG in the run's folder and the facts drawn into it."""

    path: str
    facts: dict[str, str]


def _ids(nodes: list[Node]) -> str:
    return ", ".join(node.id for node in nodes) or "none"


def _layer(run: RunRecord, layer_id: str, types: tuple[str, ...], what: str) -> Node:
    """The run's layer `layer_id`, which must be one of `types`."""
    graph = Graph.model_validate_json(run.graph_json)
    fitting = [node for node in graph.nodes if node.type in types]
    node = next((node for node in graph.nodes if node.id == layer_id), None)
    if node is None:
        raise NotFound(f"This run's model has no layer {layer_id!r}. Layers with {what}: {_ids(fitting)}.",
                       field="layer", details={"layers": [n.id for n in fitting]})
    if node.type not in types:
        raise UserError(f"Layer {layer_id} ({node.type}) has no {what}: only {' and '.join(types)} layers do. "
                        f"Layers with {what} in this model: {_ids(fitting)}.", field="layer", layer_id=layer_id,
                        details={"layers": [n.id for n in fitting]})
    return node


def _model_file(scheduler: Scheduler, run: RunRecord) -> str:
    model = saved_model(scheduler, run)
    if model is None:
        raise Conflict("This run has no saved model to look inside yet: it is still training, or it ended "
                       "before finishing an epoch.")
    return model[0]


def _image_meta(settings: Settings, run: RunRecord, what: str) -> DatasetMeta:
    dataset_dir = settings.data_dir / run.dataset_folder
    try:
        meta = read_meta(dataset_dir)
    except (OSError, ValueError) as exc:
        raise Conflict("This run's dataset was deleted, so its test samples cannot be shown.") from exc
    if meta.kind != "image" or len(meta.input_shape) not in (2, 3):
        raise UserError(f"{what} are drawn for image datasets only; this run trained on {meta.name}, "
                        f"{KIND_WORDS.get(meta.kind, meta.kind)}.")
    return meta


def _check_index(meta: DatasetMeta, index: int) -> None:
    size = int(meta.split_sizes.get("test", 0))
    if size == 0:
        raise UserError(f"{meta.name} has no test split, so there is no sample to look at.", field="index")
    if not 0 <= index < size:
        raise UserError(f"There is no test sample {index}: the test split has {size} samples, numbered 0 to "
                        f"{size - 1}.", field="index", details={"allowed": [0, size - 1]})


def _draw(session: Session, settings: Settings, scheduler: Scheduler, worker: WarmWorker, run: RunRecord,
          payload: dict[str, Any], kind: str = "internal_png") -> Picture:
    release_connection(session)  # the first picture loads the model: a second or so
    answer = worker.call(kind, {"run_dir": str(scheduler.run_folder(run.id)),
                                "dataset_dir": str(settings.data_dir / run.dataset_folder),
                                "max_channels": settings.max_channels_drawn, **payload})
    return Picture(str(answer.pop("path")), {str(k): str(v) for k, v in answer.items()})


def feature_maps(session: Session, settings: Settings, scheduler: Scheduler, worker: WarmWorker, run: RunRecord,
                 index: int, layer_id: str) -> Picture:
    node = _layer(run, layer_id, FEATURE_MAP_TYPES, "feature maps")
    model = _model_file(scheduler, run)
    _check_index(_image_meta(settings, run, "Feature maps"), index)
    return _draw(session, settings, scheduler, worker, run, {
        "query": "feature_maps", "model": model, "index": index, "layer_id": node.id, "layer_name": node.name})


def filters(session: Session, settings: Settings, scheduler: Scheduler, worker: WarmWorker, run: RunRecord,
            layer_id: str) -> Picture:
    node = _layer(run, layer_id, FILTER_TYPES, "filters")
    model = _model_file(scheduler, run)
    return _draw(session, settings, scheduler, worker, run, {
        "query": "filters", "model": model, "index": 0, "layer_id": node.id, "layer_name": node.name})


def saliency(session: Session, settings: Settings, scheduler: Scheduler, worker: WarmWorker, run: RunRecord,
             index: int) -> Picture:
    refuse_reconstruction(run, "predicted class for a saliency map to explain")
    model = _model_file(scheduler, run)
    _check_index(_image_meta(settings, run, "Saliency maps"), index)
    return _draw(session, settings, scheduler, worker, run, {
        "query": "saliency", "model": model, "index": index, "layer_id": "", "layer_name": ""})


# --- recorded during training ----------------------------------------------------------------------------

def evenly(epochs: list[int], most: int) -> list[int]:
    """At most `most` of the epochs, the first and the last always, the others evenly spread."""
    if len(epochs) <= most:
        return epochs
    return sorted({epochs[round(i * (len(epochs) - 1) / (most - 1))] for i in range(most)})


def recorded(session: Session, settings: Settings, scheduler: Scheduler, worker: WarmWorker,
             run: RunRecord) -> dict[str, Any]:
    """What was recorded inside the model, with what it shows (dead units, saturation, vanishing gradients)
    and the epochs whose weights were kept. While the run trains: training's own records so far. Once it
    has ended, the epochs training had no time to record are filled in by the data worker from the weights
    kept of each (up to REPLAYED_EPOCHS in all; the first time takes a second or two, then it is cached)."""
    folder = scheduler.run_folder(run.id)
    data = read_internals(folder / INTERNALS)
    if data is None:
        if not TrainConfig.from_config(json.loads(run.config_json)).record_internals:
            raise NotFound("This run was trained with record_internals off, so nothing inside it was recorded. "
                           "Train it again with record_internals on (the default) to see inside.")
        if run.state == RunState.QUEUED:
            raise Conflict("This run has not started yet; the first record is taken as training begins.")
        raise NotFound("Nothing inside this run was recorded: it ended before training began, or it was trained "
                       "before LayerLab recorded internals.")
    kept = kept_epochs(folder)
    if kept and not RunState(run.state).active:
        data["records"] = _with_replayed(session, settings, scheduler, worker, run, data["records"], kept)
    return {"run_id": run.id, **data, "findings": [f.as_dict() for f in findings(data)], "snapshot_epochs": kept,
            "plane": _is_plane(settings, run)}


def _is_plane(settings: Settings, run: RunRecord) -> bool:
    """Whether the run's data are 2-D points, so that its boundary and units can be drawn over the plane."""
    try:
        return read_meta(settings.data_dir / run.dataset_folder).kind == "points2d"
    except (OSError, ValueError):
        return False


def _with_replayed(session: Session, settings: Settings, scheduler: Scheduler, worker: WarmWorker, run: RunRecord,
                   records: list[dict[str, Any]], kept: list[int]) -> list[dict[str, Any]]:
    own = {int(r["epoch"]) for r in records}
    wanted = [e for e in evenly(kept, REPLAYED_EPOCHS) if e not in own]
    replayed = (read_internals(scheduler.run_folder(run.id) / REPLAYED_INTERNALS) or {}).get("records", [])
    if any(e not in {int(r["epoch"]) for r in replayed} for e in wanted):
        release_connection(session)  # the data worker builds the model and runs it once per epoch
        replayed = worker.call("replay_internals", {
            "run_dir": str(scheduler.run_folder(run.id)), "dataset_dir": str(settings.data_dir / run.dataset_folder),
            "graph": json.loads(run.graph_json), "config": json.loads(run.config_json),
            "bins": settings.histogram_bins, "epochs": wanted})
    merged = {int(r["epoch"]): r for r in replayed if int(r["epoch"]) in wanted}
    merged.update({int(r["epoch"]): r for r in records})
    return [merged[e] for e in sorted(merged)]


def inside_view(session: Session, settings: Settings, scheduler: Scheduler, worker: WarmWorker,
                run: RunRecord) -> dict[str, Any]:
    """For the run page: the records (`data`), or why there are none (`message`)."""
    try:
        return {"data": recorded(session, settings, scheduler, worker, run), "message": None}
    except UserError as exc:
        return {"data": None, "message": exc.message}


# --- 2-D data: the plane -----------------------------------------------------------------------------------

def _plane_meta(settings: Settings, run: RunRecord, what: str) -> DatasetMeta:
    try:
        meta = read_meta(settings.data_dir / run.dataset_folder)
    except (OSError, ValueError) as exc:
        raise Conflict("This run's dataset was deleted, so the plane cannot be drawn.") from exc
    if meta.kind != "points2d":
        raise UserError(f"{what} is drawn for datasets of two features (the generated 2-D sets); this run trained "
                        f"on {meta.name}, {KIND_WORDS.get(meta.kind, meta.kind)}.")
    return meta


def _plane_payload(settings: Settings, scheduler: Scheduler, run: RunRecord, epoch: int | None,
                   meta: DatasetMeta) -> dict[str, Any]:
    folder = scheduler.run_folder(run.id)
    epochs = kept_epochs(folder)
    model = None
    if epochs:
        if epoch is not None and epoch not in epochs:
            raise UserError(f"There are no weights of epoch {epoch}. Epochs kept: {', '.join(map(str, epochs))}.",
                            field="epoch", details={"allowed": epochs})
    else:
        if epoch is not None:
            raise UserError("This run kept no weights per epoch (small models keep them while record_internals "
                            "is on), so only its saved model can be drawn: leave out `epoch`.", field="epoch")
        model = _model_file(scheduler, run)
    graph = Graph.model_validate_json(run.graph_json)
    head = output_head(graph)
    config = TrainConfig.from_config(json.loads(run.config_json))
    return {"graph": graph.model_dump(), "model": model, "epoch": epoch, "task": meta.task,
            "logits": uses_logits(config.loss, head.activation if head else "")}


def decision_boundary(session: Session, settings: Settings, scheduler: Scheduler, worker: WarmWorker,
                      run: RunRecord, epoch: int | None) -> Picture:
    meta = _plane_meta(settings, run, "The decision boundary")
    payload = _plane_payload(settings, scheduler, run, epoch, meta)
    return _draw(session, settings, scheduler, worker, run, {"query": "boundary", **payload}, kind="plane_png")


def units(session: Session, settings: Settings, scheduler: Scheduler, worker: WarmWorker, run: RunRecord,
          layer_id: str, epoch: int | None) -> Picture:
    node = _layer(run, layer_id, UNIT_TYPES, "units to draw over the plane")
    meta = _plane_meta(settings, run, "Each unit's output over the plane")
    payload = _plane_payload(settings, scheduler, run, epoch, meta)
    return _draw(session, settings, scheduler, worker, run,
                 {"query": "units", "layer_id": node.id, "layer_name": node.name, **payload}, kind="plane_png")
