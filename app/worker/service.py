"""The loop of a warm worker: requests in over a pipe, answers out.

The web process imports this module only to name `serve` as a process target.
Keras, numpy and the data parsers are imported inside the handlers, that is, in
the worker process alone.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from app.core.errors import UserError
from app.worker.environment import keep_imports_out_of_collections, quiet_tensorflow

# Clearing Keras' global state costs about 200 ms, so do it now and then, not per build.
CLEAR_SESSION_EVERY = 100
PARENT_CHECK_S = 0.5


def _summarize(payload: dict[str, Any]) -> Any:
    from app.core.graph import Graph
    from app.worker.inspect import summarize_graph

    return summarize_graph(Graph.model_validate(payload["graph"]), with_text=payload.get("with_text", False))


def _prepare_dataset(payload: dict[str, Any]) -> Any:
    from app.worker.datasets import prepare_dataset

    return prepare_dataset(payload)


def _split_for_challenge(payload: dict[str, Any]) -> Any:
    from app.data.challenge import split_for_challenge

    return split_for_challenge(payload)


def _evaluate_run(payload: dict[str, Any]) -> Any:
    from app.worker.runner import evaluate_saved_run

    return evaluate_saved_run(payload)


def _score_on_hidden_split(payload: dict[str, Any]) -> Any:
    from app.worker.runner import score_on_hidden_split

    return score_on_hidden_split(payload)


def _keras_config(payload: dict[str, Any]) -> Any:
    from app.core.graph import Graph
    from app.worker.build import build_model

    return build_model(Graph.model_validate(payload["graph"])).to_json(indent=2)


def _export_model_format(payload: dict[str, Any]) -> Any:
    from app.worker.formats import export_model_format

    return export_model_format(payload)


def _import_model(payload: dict[str, Any]) -> Any:
    from app.worker.importing import import_model

    return import_model(payload)


def _insight(payload: dict[str, Any]) -> Any:
    from app.worker import insights

    query = {"cell": insights.confusion_cell, "errors": insights.largest_errors, "sample": insights.sample,
             "input_png": insights.input_png}[payload["query"]]
    return query(payload)


def _internal_png(payload: dict[str, Any]) -> Any:
    from app.worker.internals import internal_png

    return internal_png(payload)


def _plane_png(payload: dict[str, Any]) -> Any:
    from app.worker.plane import plane_png

    return plane_png(payload)


def _replay_internals(payload: dict[str, Any]) -> Any:
    from app.worker.recording import replay

    return replay(payload)


def _augmentation_png(payload: dict[str, Any]) -> Any:
    from app.worker.augmentation import augmentation_png

    return augmentation_png(payload)


HANDLERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "summarize": _summarize,
    "keras_config": _keras_config,
    "prepare_dataset": _prepare_dataset,
    "evaluate_run": _evaluate_run,
    "split_for_challenge": _split_for_challenge,
    "score_on_hidden_split": _score_on_hidden_split,
    "import_model": _import_model,
    "export_model_format": _export_model_format,
    "insight": _insight,
    "internal_png": _internal_png,
    "plane_png": _plane_png,
    "replay_internals": _replay_internals,
    "augmentation_png": _augmentation_png,
}


def _exit_with_parent() -> None:
    """A worker whose server was killed stops too, rather than finish writing files nobody will own."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


def serve(conn: Connection, preload_keras: bool = True) -> None:
    quiet_tensorflow()
    threading.Thread(target=_exit_with_parent, name="parent watch", daemon=True).start()
    if preload_keras:
        import keras

        keep_imports_out_of_collections()
    conn.send(("ready", None))
    handled = 0
    while True:
        try:
            kind, payload = conn.recv()
        except (EOFError, OSError):
            return
        if kind == "stop":
            return
        reply: tuple[str, Any]
        try:
            handler = HANDLERS.get(kind)
            if handler is None:
                raise ValueError(f"unknown request {kind!r}")
            reply = ("ok", handler(payload))
        except UserError as exc:  # an answer for the user (a layer Keras refuses, a bad file)
            reply = ("refused", exc.to_wire())
        except Exception as exc:  # report, keep serving
            reply = ("error", {"message": f"{type(exc).__name__}: {exc}"})
        conn.send(reply)
        handled += 1
        if preload_keras and handled % CLEAR_SESSION_EVERY == 0:
            import keras

            keras.backend.clear_session()
