"""Inside a run's trained convnet: the checks made in the web process (from the run's graph and its
dataset's meta) before the data worker draws feature maps, filters or saliency as a cached PNG.
The web process never imports TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.config import Settings
from app.core.errors import Conflict, NotFound, UserError
from app.core.graph import Graph, Node
from app.data.prepared import DatasetMeta, read_meta
from app.jobs.scheduler import Scheduler
from app.jobs.warm_worker import WarmWorker
from app.services.training import saved_model
from app.store.db import release_connection
from app.store.tables import RunRecord

FEATURE_MAP_TYPES = ("Conv2D", "MaxPooling2D", "AveragePooling2D")
FILTER_TYPES = ("Conv2D",)


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
        raise UserError(f"{what} are drawn for image datasets only; this run trained on {meta.name}, a "
                        f"{meta.kind} dataset.")
    return meta


def _check_index(meta: DatasetMeta, index: int) -> None:
    size = int(meta.split_sizes.get("test", 0))
    if size == 0:
        raise UserError(f"{meta.name} has no test split, so there is no sample to look at.", field="index")
    if not 0 <= index < size:
        raise UserError(f"There is no test sample {index}: the test split has {size} samples, numbered 0 to "
                        f"{size - 1}.", field="index", details={"allowed": [0, size - 1]})


def _draw(session: Session, settings: Settings, scheduler: Scheduler, worker: WarmWorker, run: RunRecord,
          payload: dict[str, Any]) -> Picture:
    release_connection(session)  # the first picture loads the model: a second or so
    answer = worker.call("internal_png", {"run_dir": str(scheduler.run_folder(run.id)),
                                          "dataset_dir": str(settings.data_dir / run.dataset_folder), **payload})
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
    model = _model_file(scheduler, run)
    _check_index(_image_meta(settings, run, "Saliency maps"), index)
    return _draw(session, settings, scheduler, worker, run, {
        "query": "saliency", "model": model, "index": index, "layer_id": "", "layer_name": ""})
