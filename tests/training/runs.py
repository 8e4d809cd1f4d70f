"""Run run_training in the test process and keep what it emitted, with arrival times."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.graph import Graph


@dataclass
class Recorder:
    events: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    def __call__(self, event: dict[str, Any]) -> None:
        json.dumps(event, allow_nan=False)  # every event must be strict JSON
        self.events.append(event)
        self.times.append(time.monotonic())

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]


def train(graph: Graph, dataset: Path, run_dir: Path, config: dict[str, Any],
          should_stop: Callable[[], bool] = lambda: False, **extra: Any) -> tuple[dict, Recorder]:
    from app.worker.train import run_training

    recorder = Recorder()
    request = {"graph": graph.model_dump(), "dataset_dir": str(dataset), "config": config,
               "run_dir": str(run_dir), **extra}
    result = run_training(request, recorder, should_stop)
    json.dumps(result, allow_nan=False)
    return result, recorder
