"""The same batch of small runs through the local executor and through a local Ray instance.

Run from the repository root: `.venv/bin/python bench/executors.py [--runs N] [--epochs N]` (needs the extra
`layerlab[ray]`).

For each executor, a real server process (`layerlab`, fresh data folder, LAYERLAB_EXECUTOR=local or ray, one
warm training worker or actor, at most 2 runs at once) gets one workspace, the built-in iris set and a dense
model. After one warm-up run (which pays for Ray's start and TensorFlow's import in the warm worker), N runs
of a few epochs are queued at once. Measured: the total time from the first submission to the last run's end,
and, from three runs submitted one at a time before it (a warm worker waiting), the overhead from submission to
the start of training, read from each run's own first epoch event (its time less its elapsed time).
The executors take turns `--repeats` times (3), each with a fresh server, and each executor's fastest batch
counts: on a shared host the slower batches measure the neighbours. Each batch also gives where its runs' time
went, as means over the runs (`mean_phases_s`): queued, from the start to training, training, and from the last
epoch to the recorded end. Printed per batch, then Ray against local;
the last line is one JSON object with at least `local_total_s`, `ray_total_s`, `ray_local_ratio` and
`ray_overhead_s` (the median overhead on Ray). Targets: Ray's overhead
under 1 s with warm actors, its total within 1.2x of the local executor's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_server import free_port, start_server, stop

from app.core.runs import ACTIVE_STATES

RUN_TIMEOUT_S = 300


def wait_ended(client: httpx.Client, run_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        run = client.get(f"/api/v1/runs/{run_id}").json()
        if run["state"] not in ACTIVE_STATES:
            return run
        time.sleep(0.1)
    raise RuntimeError(f"run {run_id} did not end within {RUN_TIMEOUT_S} s")


def training_began(run: dict[str, Any]) -> float:
    """When an ended run's training began (wall clock), from its first epoch event's time and elapsed time."""
    epoch = run["metrics"]["epochs"][0]
    return float(epoch["time"]) - float(epoch["elapsed_s"])


def phases(run: dict[str, Any]) -> dict[str, float]:
    """Where an ended run's time went (seconds): waiting in the queue, from its start (handed to the executor)
    to its training, training (first epoch's start to last epoch's end), and from there to its end being
    recorded (the test evaluation, the model's files coming back)."""
    epochs = run["metrics"]["epochs"]
    created, started, finished = (datetime.fromisoformat(run[key]).timestamp()
                                  for key in ("created_at", "started_at", "finished_at"))
    began = training_began(run)
    return {"queued": started - created, "to_training": began - started,
            "training": float(epochs[-1]["time"]) - began, "to_end": finished - float(epochs[-1]["time"])}


def batch(executor: str, runs: int, epochs: int) -> dict[str, Any]:
    data = tempfile.mkdtemp(prefix=f"layerlab-bench-{executor}-")
    port = free_port()
    server, _ = start_server(data, port,
                             {"LAYERLAB_EXECUTOR": executor, "LAYERLAB_MAX_RUNNING_RUNS": "2",
                              "LAYERLAB_MAX_ACTIVE_RUNS_PER_WORKSPACE": str(runs + 1),
                              "LAYERLAB_MAX_RUNNING_RUNS_PER_WORKSPACE": "2"})
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            client.headers["Authorization"] = "Bearer " + client.post("/api/v1/workspaces").json()["token"]
            model = client.post("/api/v1/models", json={"starter": "dense"}).json()
            dataset = client.post("/api/v1/datasets", json={"key": "iris"}).json()
            client.put(f"/api/v1/models/{model['id']}/dataset", json={"dataset_id": dataset["id"]})
            client.post(f"/api/v1/models/{model['id']}/dataset/fit-output")
            settings = {"epochs": epochs, "seed": 1, "record_internals": False}
            warm = client.post(f"/api/v1/models/{model['id']}/runs", json=settings).json()
            wait_ended(client, warm["id"])
            overheads = []  # one run at a time, with a warm worker waiting: submission to training
            for _ in range(3):
                submitted_at = time.time()
                run_id = client.post(f"/api/v1/models/{model['id']}/runs", json=settings).json()["id"]
                overheads.append(training_began(wait_ended(client, run_id)) - submitted_at)
            began = time.time()
            submitted = [client.post(f"/api/v1/models/{model['id']}/runs", json=settings).json()["id"]
                         for _ in range(runs)]
            ended = [wait_ended(client, run_id) for run_id in submitted]
            total = time.time() - began
            states = sorted({run["state"] for run in ended})
            timelines = [phases(run) for run in ended]
    finally:
        stop(server)
    return {"total_s": round(total, 2), "overhead_median_s": round(statistics.median(overheads), 3),
            "overheads_s": [round(o, 3) for o in overheads], "states": states,
            "mean_phases_s": {phase: round(statistics.mean(t[phase] for t in timelines), 3)
                              for phase in ("queued", "to_training", "training", "to_end")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3,
                        help="batches per executor, in turns; each executor's fastest counts")
    args = parser.parse_args()
    trials: dict[str, list[dict[str, Any]]] = {"local": [], "ray": []}
    for _ in range(args.repeats):  # in turns, so that a slow spell of the host falls on both alike
        for executor, done in trials.items():
            done.append(batch(executor, args.runs, args.epochs))
            print(f"{executor + ':':6} {done[-1]}", flush=True)
    local, ray = (min(done, key=lambda trial: trial["total_s"]) for done in trials.values())
    ratio = round(ray["total_s"] / local["total_s"], 3)
    print(f"Ray / local total time: {ratio}; Ray's overhead (submit to start, median) {ray['overhead_median_s']} s")
    print(json.dumps({"runs": args.runs, "epochs": args.epochs, "local_total_s": local["total_s"],
                      "ray_total_s": ray["total_s"], "ray_local_ratio": ratio,
                      "local_overhead_s": local["overhead_median_s"], "ray_overhead_s": ray["overhead_median_s"],
                      "local": local, "ray": ray,
                      "local_totals_s": [t["total_s"] for t in trials["local"]],
                      "ray_totals_s": [t["total_s"] for t in trials["ray"]]}))


if __name__ == "__main__":
    main()
