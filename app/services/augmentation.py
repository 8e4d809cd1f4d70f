"""Showing what a model's augmentation layers do, before training: checks in the web process, then a picture
drawn by the data worker into the workspace's previews folder."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from app.config import Settings
from app.core.catalog import CATALOG
from app.core.errors import UserError
from app.core.graph import Graph
from app.core.validation import validate
from app.jobs.warm_worker import WarmWorker
from app.services import datasets
from app.store.db import release_connection
from app.store.tables import ModelRecord

MAX_SEED = 2**31 - 1


def has_augmentation(graph: Graph) -> bool:
    return any(CATALOG[n.type].category == "Augmentation" for n in graph.nodes)


def preview(session: Session, settings: Settings, worker: WarmWorker, model: ModelRecord, seed: int) -> Path:
    """A PNG: a few training images of the attached dataset, each as it is and augmented five times."""
    graph = Graph.model_validate_json(model.graph_json)
    if not has_augmentation(graph):
        augmenting = ", ".join(name for name, t in CATALOG.items() if t.category == "Augmentation")
        raise UserError(f"This model has no augmentation layer to show. Add one after the Input: {augmenting}.")
    report = validate(graph)
    if not report.ok:
        raise UserError(f"Fix the model first: {report.errors[0].message}", layer_id=report.errors[0].layer_id)
    dataset = datasets.attached_dataset(session, model)
    if dataset is None or dataset.state != "ready":
        raise UserError("Attach an image dataset first: augmentation is shown on its training images.")
    meta = datasets.meta_of(dataset)
    if meta.kind != "image":
        raise UserError(f"Augmentation layers work on images; {meta.name} is not an image dataset.")
    out = datasets.workspace_folder(settings, model.workspace_id) / "previews" / f"augmentation-{model.id}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    dataset_dir = settings.data_dir / dataset.folder
    release_connection(session)  # the worker builds the model: a second or so
    worker.call("augmentation_png", {"graph": graph.model_dump(), "dataset_dir": str(dataset_dir),
                                     "seed": seed, "out": str(out)})
    return out
