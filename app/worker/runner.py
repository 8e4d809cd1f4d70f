"""Entry point of a training worker process: train, evaluate, report, exit.

The web process imports this module only to name `run_job` as a process target;
Keras is imported inside it.
"""

from __future__ import annotations

from multiprocessing.connection import Connection
from typing import Any


def run_job(request: dict[str, Any], conn: Connection, stop: Any) -> None:
    from app.worker.service import quiet_tensorflow

    quiet_tensorflow()
    from app.worker.train_job import train_and_evaluate

    def emit(event: dict[str, Any]) -> None:
        conn.send(event)

    try:
        result = train_and_evaluate(request, emit, stop.is_set)
    except Exception as exc:  # a run that fails says why, instead of vanishing
        result = {"state": "failed", "reason": f"Training failed: {type(exc).__name__}: {str(exc)[:500]}"}
    conn.send({"type": "finished", **result})
    conn.close()
