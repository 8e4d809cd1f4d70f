"""The inspector worker's loop: receives graphs over a pipe, answers with summaries.

The web process imports this module only to name `serve` as a process target;
Keras is imported inside `serve`, that is, in the worker process alone.
"""

from __future__ import annotations

import os
from multiprocessing.connection import Connection
from typing import Any

# Clearing Keras' global state costs about 200 ms, so do it now and then, not per build.
CLEAR_SESSION_EVERY = 100


def quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def serve(conn: Connection) -> None:
    quiet_tensorflow()
    import keras

    from app.core.graph import Graph
    from app.worker.build import LayerBuildError
    from app.worker.inspect import summarize_graph

    conn.send(("ready", None))
    builds = 0
    while True:
        try:
            kind, payload = conn.recv()
        except (EOFError, OSError):
            return
        if kind == "stop":
            return
        reply: tuple[str, Any]
        try:
            if kind != "summarize":
                raise ValueError(f"unknown request {kind!r}")
            graph = Graph.model_validate(payload["graph"])
            reply = ("ok", summarize_graph(graph, with_text=payload.get("with_text", False)))
        except LayerBuildError as exc:
            reply = ("layer_error", {"layer_id": exc.node_id, "message": exc.message, "detail": exc.detail})
        except Exception as exc:  # report, keep serving
            reply = ("error", {"message": f"{type(exc).__name__}: {exc}"})
        conn.send(reply)
        builds += 1
        if builds % CLEAR_SESSION_EVERY == 0:
            keras.backend.clear_session()
