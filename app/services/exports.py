"""What a model or a run is exported as: a Keras script, a notebook, Keras' own JSON config.

The code is written here in the web process (pure Python, `app/core/codegen.py`); Keras' JSON
needs Keras, so the warm inspector worker builds the model and writes it.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.orm import Session

from app.config import Settings
from app.core.codegen import DataSource, Script, model_script, run_script, slug
from app.core.codegen_data import SELF_LOADED
from app.core.training import TrainConfig
from app.data.catalog import DATASETS, validate_dataset_params, validate_split_options
from app.data.prepared import DatasetMeta, read_meta
from app.jobs.inspector import Inspector
from app.services import datasets
from app.store import repository
from app.store.db import release_connection
from app.store.tables import DatasetRecord, ModelRecord, RunRecord


def model_code(record: ModelRecord) -> tuple[Script, str]:
    """The model's script and its file name (without extension)."""
    return model_script(repository.load_graph(record), record.name), slug(record.name)


def run_code(session: Session, settings: Settings, run: RunRecord) -> tuple[Script, str]:
    """The run's script (model, data, settings) and its file name (without extension)."""
    from app.core.graph import Graph

    record = datasets.ready_dataset(session, run.dataset_id)
    meta = datasets.meta_of(record) if record else read_meta(settings.data_dir / run.dataset_folder)
    script = run_script(Graph.model_validate_json(run.graph_json), run.model_name, data_source(run, record, meta),
                        TrainConfig.from_config(json.loads(run.config_json)), f"run {run.id}")
    return script, f"{slug(run.model_name)}-run{run.id}"


def data_source(run: RunRecord, record: DatasetRecord | None, meta: DatasetMeta) -> DataSource:
    source = DataSource(title=run.dataset_name, task=meta.task, num_classes=meta.num_classes,
                        input_shape=list(meta.input_shape), train_samples=int(meta.split_sizes.get("train", 0)),
                        arrays_file=f"{slug(run.dataset_name, 'data')}.npz",
                        arrays_url=f"/api/v1/datasets/{run.dataset_id}/arrays.npz" if record else "")
    if record is not None and record.source == "builtin":
        spec = json.loads(record.spec_json)
        if spec.get("key") in SELF_LOADED and spec["key"] in DATASETS:
            source.builtin = spec["key"]
            source.params = validate_dataset_params(spec["key"], spec.get("params"))
            source.options = validate_split_options(spec.get("options"))
    return source


def keras_config(session: Session, inspector: Inspector, record: ModelRecord) -> str:
    """The architecture as Keras writes it (`model.to_json()`), built by the inspector worker."""
    graph = repository.load_graph(record)
    release_connection(session)
    return str(inspector.call("keras_config", {"graph": graph.model_dump()}))


def arrays_file(settings: Settings, record: DatasetRecord) -> Path:
    return settings.data_dir / record.folder / "arrays.npz"
