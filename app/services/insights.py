"""Error analysis of a run, shared by its pages and the API: the data worker makes and caches every
test sample's prediction (the web process never imports TensorFlow) and answers from that cache."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.config import Settings
from app.core.errors import Conflict
from app.core.training import stored_config
from app.jobs.scheduler import Scheduler
from app.jobs.warm_worker import WarmWorker
from app.services.training import saved_model
from app.store.db import release_connection
from app.store.tables import RunRecord

# Questions about what a run predicted for each sample, which a run trained to give back its input cannot answer.
LABEL_QUERIES = ("cell", "errors", "sample")


def ask(session: Session, settings: Settings, scheduler: Scheduler, worker: WarmWorker, run: RunRecord,
        query: str, **details: Any) -> Any:
    """Ask the data worker about the run's test predictions (made on the first question, then cached)."""
    if query in LABEL_QUERIES:
        refuse_reconstruction(run, "classes or targets to compare its outputs with")
    model = saved_model(scheduler, run)
    if model is None:
        raise Conflict("This run has no saved model to look into yet: it is still training, or it ended "
                       "before finishing an epoch.")
    dataset_dir = settings.data_dir / run.dataset_folder
    if not dataset_dir.is_dir():
        raise Conflict("This run's dataset was deleted, so its test samples cannot be shown.")
    release_connection(session)  # the first question predicts the whole test split: seconds
    return worker.call("insight", {"query": query, "run_dir": str(scheduler.run_folder(run.id)),
                                   "model": model[0], "dataset_dir": str(dataset_dir), **details})


def confusion_cell(session: Session, settings: Settings, scheduler: Scheduler, worker: WarmWorker,
                   run: RunRecord, true_class: int, predicted_class: int, limit: int | None = None,
                   with_features: bool = False) -> dict[str, Any]:
    """At most `limit` samples, and never more than the server's max_samples_listed."""
    return ask(session, settings, scheduler, worker, run, "cell", true_class=true_class,
               predicted_class=predicted_class, limit=_listed(settings, limit), with_features=with_features)


def largest_errors(session: Session, settings: Settings, scheduler: Scheduler, worker: WarmWorker,
                   run: RunRecord, limit: int | None = None, with_features: bool = False) -> dict[str, Any]:
    return ask(session, settings, scheduler, worker, run, "errors", limit=_listed(settings, limit),
               with_features=with_features)


def _listed(settings: Settings, limit: int | None) -> int:
    return settings.max_samples_listed if limit is None else min(limit, settings.max_samples_listed)


def sample(session: Session, settings: Settings, scheduler: Scheduler, worker: WarmWorker, run: RunRecord,
           index: int) -> dict[str, Any]:
    return ask(session, settings, scheduler, worker, run, "sample", index=index)


def input_png(session: Session, settings: Settings, scheduler: Scheduler, worker: WarmWorker, run: RunRecord,
              index: int) -> bytes:
    return bytes(ask(session, settings, scheduler, worker, run, "input_png", index=index))


def refuse_reconstruction(run: RunRecord, what: str) -> None:
    """Views of predicted labels do not apply to a run that learned to give back its input (target input)."""
    if stored_config(run.config_json)["target"] == "input":
        raise Conflict(f"This run learned to give back its input (training target: input), so it has no {what}. "
                       "Its test shows each sample next to its reconstruction instead.")
