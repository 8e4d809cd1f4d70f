"""Capacity: how many trainings of the seed convnet one core sustains at once, and the memory each takes.

Run from the repository root: `.venv/bin/python bench/capacity.py [--levels 1 2 4] [--epochs 5]`.

A real `layerlab` server (fresh data folder) with LAYERLAB_MAX_RUNNING_RUNS and LAYERLAB_WARM_TRAINING_WORKERS set
to the level being measured. At each level K, K participants (a workspace each, as in a workshop) train the
convnet starter on digits28 with the suggested settings at the same moment: once to start K training processes
(TensorFlow imported), then again, measured, from the K POSTs to the last run's end. Figures per level: each
run's time against a run alone, the whole batch's time, runs finished per core and minute, and the peak resident
memory of each training process (sampled every 0.2 s). The server's own process and its two helper processes
(the model inspector and the data worker) are measured apart. Figures depend on other load on the host (the
1-minute load average is printed). The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from typing import Any

import httpx
import psutil
from live_server import free_port, start_server, stop

from app.core.runs import ENDED_STATES

MB = 2**20


class MemoryWatch:
    """Samples the resident memory of the server's child processes in the background; the peak of each."""

    def __init__(self, server: psutil.Process, ignore: set[int]):
        self.server, self.ignore = server, ignore
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for child in self.server.children(recursive=True):
                if child.pid in self.ignore:
                    continue
                try:
                    self.peaks[child.pid] = max(self.peaks.get(child.pid, 0), child.memory_info().rss)
                except psutil.Error:
                    pass
            self._stop.wait(0.2)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def participant(base_url: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(60, read=300))
    client.headers["Authorization"] = "Bearer " + client.post("/workspaces").raise_for_status().json()["token"]
    return client


def convnet_and_digits(client: httpx.Client) -> tuple[int, int]:
    """A convnet starter and the digits28 dataset in the participant's workspace: (model id, dataset id)."""
    dataset = client.post("/datasets", json={"key": "digits28"}).raise_for_status().json()
    model = client.post("/models", json={"name": "capacity", "starter": "convnet"}).raise_for_status().json()
    return int(model["id"]), int(dataset["id"])


def train_at_once(clients: list[httpx.Client], models: list[int], epochs: int) -> dict[str, Any]:
    """Start one run per participant at the same moment; each run's seconds from the POSTs to its end."""
    began = time.perf_counter()
    runs = [client.post(f"/models/{model}/runs", json={"epochs": epochs, "seed": 1}).raise_for_status().json()
            for client, model in zip(clients, models)]
    took: dict[int, float] = {}
    while len(took) < len(runs):
        for client, run in zip(clients, runs):
            if run["id"] in took:
                continue
            state = client.get(f"/runs/{run['id']}").raise_for_status().json()
            if state["state"] in ENDED_STATES:
                if state["state"] != "completed":
                    raise RuntimeError(f"run {run['id']} ended {state['state']}: {state['reason']}")
                took[run["id"]] = time.perf_counter() - began
        time.sleep(0.1)
    return {"run_s": sorted(took.values()), "batch_s": max(took.values())}


def measure_level(level: int, epochs: int) -> dict[str, Any]:
    data_dir = tempfile.mkdtemp(prefix="layerlab-capacity-")
    port = free_port()
    proc = None
    try:
        proc, _ = start_server(data_dir, port, {"LAYERLAB_MAX_RUNNING_RUNS": str(level),
                                                "LAYERLAB_WARM_TRAINING_WORKERS": str(level)})
        server = psutil.Process(proc.pid)
        base_url = f"http://127.0.0.1:{port}/api/v1"
        clients = [participant(base_url) for _ in range(level)]
        pairs = [convnet_and_digits(client) for client in clients]
        models = [model for model, _ in pairs]
        while clients[0].get(f"/models/{models[0]}/summary").status_code == 503:  # the inspector's warm-up
            time.sleep(0.1)
        helpers = {child.pid for child in server.children(recursive=True)}  # inspector, data worker
        for client, (model, dataset) in zip(clients, pairs):  # attaching data starts a spare training process
            client.put(f"/models/{model}/dataset", json={"dataset_id": dataset}).raise_for_status()
        train_at_once(clients, models, epochs)  # starts the training processes; they stay warm
        with MemoryWatch(server, ignore=helpers) as watch:
            timed = train_at_once(clients, models, epochs)
        helper_mb = [psutil.Process(pid).memory_info().rss / MB for pid in helpers if psutil.pid_exists(pid)]
        figures = {**timed, "worker_peak_mb": sorted(rss / MB for rss in watch.peaks.values()),
                   "server_mb": server.memory_info().rss / MB, "helpers_mb": sorted(helper_mb)}
        for client in clients:
            client.close()
        return figures
    finally:
        if proc is not None:
            stop(proc)
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2, 4],
                        help="concurrent trainings to measure (the first is the baseline)")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    report: dict[str, Any] = {"cores": cores, "epochs": args.epochs, "load_before": os.getloadavg()[0]}
    print(f"Capacity: the convnet starter on digits28, {args.epochs} epochs, suggested settings; {cores} cores, "
          f"1-min load {report['load_before']:.1f}")
    print(f"{'at once':>8}{'per core':>10}{'run (s)':>10}{'x alone':>9}{'batch (s)':>11}{'runs/core/min':>15}"
          f"{'worker MB':>11}")
    alone: float | None = None
    for level in args.levels:
        figures = measure_level(level, args.epochs)
        run_s = statistics.median(figures["run_s"])
        alone = alone or run_s
        peaks = figures["worker_peak_mb"]
        figures.update({"per_core": level / cores, "median_run_s": run_s, "slowdown": run_s / alone,
                        "runs_per_core_minute": level / figures["batch_s"] * 60 / cores,
                        "worker_mb": statistics.median(peaks) if peaks else None})
        report.update({f"at{level}_{key}": value for key, value in figures.items()})
        print(f"{level:>8}{figures['per_core']:>10.1f}{run_s:>10.1f}{figures['slowdown']:>9.2f}"
              f"{figures['batch_s']:>11.1f}{figures['runs_per_core_minute']:>15.2f}{figures['worker_mb'] or 0:>11.0f}")
    report["load_after"] = os.getloadavg()[0]
    print(f"Server process {report[f'at{args.levels[-1]}_server_mb']:.0f} MB; helper processes (inspector, data "
          f"worker) {', '.join(f'{mb:.0f}' for mb in report[f'at{args.levels[-1]}_helpers_mb'])} MB. 1-min load "
          f"{report['load_after']:.1f} after.")
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else
                      [round(x, 2) for x in v] if isinstance(v, list) else v for k, v in report.items()}))


if __name__ == "__main__":
    main()
