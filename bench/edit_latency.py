"""Edit-to-updated-summary latency of LayerLab, against its Keras floor.

Run from the repository root: `.venv/bin/python bench/edit_latency.py`.

What it measures:
1. Start-up: a real `uvicorn --factory app.main:create_app` subprocess (fresh LAYERLAB_DATA_DIR),
   from process launch to the first GET / answering 200 (target < 2 s).
2. Inspector warm-up (printed, not a target): a workspace and a "convnet" model
   are created; the first GET .../summary waits for the worker to import TensorFlow.
3. Round trip: 200 layer edits (PATCH .../layers/{id}) each followed by
   GET .../summary over one persistent httpx.Client. The Dense(64) layer's units
   walk through distinct values, interleaved with Conv2D filter changes, so every
   summary is a graph the inspector has never seen (no cache hits).
4. Floor: after the server has stopped, this process imports Keras and runs the
   project's own app.worker.inspect.summarize_graph on the same 200 graphs
   (after a warm-up), timing each call.
5. Web RSS: resident memory of the uvicorn process itself (not its inspector
   worker child) after the edits (target < 120 MB).
Targets: p95 round trip < 100 ms and p95 round trip / p95 floor <= 2x.
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from live_server import free_port, start_server, stop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EDITS = 200
WARMUP_FLOOR = 50




def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile, in the units of `values`."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered), math.ceil(q / 100 * len(ordered))) - 1)]






def edit_plan(layers: list[dict]) -> list[tuple[str, dict]]:
    """200 (layer id, params) edits: Dense(64) units take distinct values; every
    4th edit changes a Conv2D's filters instead, each time to a value not used before."""
    dense = next(layer["id"] for layer in layers if layer["type"] == "Dense" and layer["params"]["units"] == 64)
    convs = [layer["id"] for layer in layers if layer["type"] == "Conv2D"]
    plan, units, conv_edits = [], 65, 0
    for i in range(EDITS):
        if i % 4 == 3:
            plan.append((convs[conv_edits % len(convs)], {"filters": 8 + conv_edits}))
            conv_edits += 1
        else:
            plan.append((dense, {"units": units}))
            units += 1
    return plan


def run_server_part(report: dict) -> list[dict]:
    """Everything against the live server; returns the 200 graphs it summarized."""
    data_dir = tempfile.mkdtemp(prefix="layerlab-bench-")
    port = free_port()
    proc = None
    try:
        proc, report["startup_s"] = start_server(data_dir, port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=120) as client:
            token = client.post("/workspaces").raise_for_status().json()["token"]
            client.headers["Authorization"] = f"Bearer {token}"
            model = client.post("/models", json={"name": "bench", "starter": "convnet"}).raise_for_status().json()
            base = f"/models/{model['id']}"
            t0 = time.perf_counter()
            while (first := client.get(f"{base}/summary")).status_code == 503:  # worker starting
                time.sleep(0.05)
            first.raise_for_status()
            report["inspector_warmup_s"] = time.perf_counter() - t0
            report["warm_since_launch_s"] = report["startup_s"] + report["inspector_warmup_s"]

            web, worker = psutil.Process(proc.pid), max(psutil.Process(proc.pid).children(),
                                                        key=lambda c: c.memory_info().rss)
            cpu0 = (sum(web.cpu_times()[:2]), sum(worker.cpu_times()[:2]))
            round_trip, edit_ms, summary_ms, graphs, seen = [], [], [], [], set()
            for layer_id, params in edit_plan(model["layers"]):
                t_start = time.perf_counter()
                edited = client.patch(f"{base}/layers/{layer_id}", json={"params": params})
                t_mid = time.perf_counter()
                summary = client.get(f"{base}/summary")
                t_end = time.perf_counter()
                edited.raise_for_status(), summary.raise_for_status()
                for values, ms in ((round_trip, t_end - t_start), (edit_ms, t_mid - t_start),
                                   (summary_ms, t_end - t_mid)):
                    values.append(ms * 1000)
                layers = [{k: layer[k] for k in ("id", "type", "name", "params", "inputs")}
                          for layer in edited.json()["layers"]]
                key = json.dumps(layers, sort_keys=True)
                assert key not in seen, "an edit repeated a graph; the summary would be a cache hit"
                seen.add(key)
                graphs.append({"nodes": layers})
            # CPU seconds per round trip: less sensitive than wall time to other load on the host.
            for key, p, before in (("web", web, cpu0[0]), ("worker", worker, cpu0[1])):
                report[f"{key}_cpu_ms_per_edit"] = (sum(p.cpu_times()[:2]) - before) / EDITS * 1000
        report["web_rss_mb"] = web.memory_info().rss / 2**20
        report["inspector_rss_mb"] = worker.memory_info().rss / 2**20
        for name, values in (("round_trip", round_trip), ("edit", edit_ms), ("summary", summary_ms)):
            report[f"{name}_p50_ms"], report[f"{name}_p95_ms"] = pct(values, 50), pct(values, 95)
        return graphs
    finally:
        if proc is not None:
            stop(proc)
        shutil.rmtree(data_dir, ignore_errors=True)


def run_floor(report: dict, graph_dicts: list[dict]) -> None:
    """summarize_graph in this process on the same graphs: the cost of Keras alone."""
    from app.worker.environment import quiet_tensorflow
    from app.worker.service import CLEAR_SESSION_EVERY
    quiet_tensorflow()
    t0 = time.perf_counter()
    import keras  # import time is reported, not part of the floor

    from app.core.graph import Graph
    from app.worker.inspect import summarize_graph
    report["keras_import_s"] = time.perf_counter() - t0
    graphs = [Graph.model_validate(g) for g in graph_dicts]
    for graph in graphs[:WARMUP_FLOOR]:
        summarize_graph(graph)
    floor = []
    for i, graph in enumerate(graphs, 1):
        t_start = time.perf_counter()
        summarize_graph(graph)
        floor.append((time.perf_counter() - t_start) * 1000)
        if i % CLEAR_SESSION_EVERY == 0:  # as the worker does, but outside the timing
            keras.backend.clear_session()
    report["floor_p50_ms"], report["floor_p95_ms"] = pct(floor, 50), pct(floor, 95)


def main() -> None:
    report: dict = {"edits": EDITS, "cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    graphs = run_server_part(report)
    report["load_after_edits"] = os.getloadavg()[0]  # before the floor, while the edits' load shows
    run_floor(report, graphs)
    report["ratio_p95"] = report["round_trip_p95_ms"] / report["floor_p95_ms"]
    checks = {"p95_under_100ms": report["round_trip_p95_ms"] < 100,
              "ratio_at_most_2x": report["ratio_p95"] <= 2,
              "web_rss_under_120mb": report["web_rss_mb"] < 120,
              "startup_under_2s": report["startup_s"] < 2}
    report.update(checks)
    ok = lambda flag: "ok  " if flag else "MISS"
    print(f"\nLayerLab edit latency ({EDITS} edits, convnet starter)")
    print(f"  start-up (launch -> GET / 200)  {report['startup_s']:8.2f} s    "
          f"[{ok(checks['startup_under_2s'])}] target < 2 s")
    print(f"  inspector warm-up (1st summary) {report['inspector_warmup_s']:8.2f} s    "
          f"(not a target; {report['warm_since_launch_s']:.2f} s since launch)")
    print(f"  round trip  p50 / p95           {report['round_trip_p50_ms']:8.1f} / "
          f"{report['round_trip_p95_ms']:.1f} ms  [{ok(checks['p95_under_100ms'])}] p95 target < 100 ms")
    print(f"    edit (PATCH)  p50 / p95       {report['edit_p50_ms']:8.1f} / {report['edit_p95_ms']:.1f} ms")
    print(f"    summary (GET) p50 / p95       {report['summary_p50_ms']:8.1f} / {report['summary_p95_ms']:.1f} ms")
    print(f"    CPU per round trip: web {report['web_cpu_ms_per_edit']:.1f} ms, "
          f"inspector worker {report['worker_cpu_ms_per_edit']:.1f} ms")
    print(f"  floor (summarize_graph) p50/p95 {report['floor_p50_ms']:8.1f} / {report['floor_p95_ms']:.1f} ms")
    print(f"  ratio p95 round trip / floor    {report['ratio_p95']:8.2f} x    "
          f"[{ok(checks['ratio_at_most_2x'])}] target <= 2x")
    print(f"  web process RSS                 {report['web_rss_mb']:8.1f} MB   "
          f"[{ok(checks['web_rss_under_120mb'])}] target < 120 MB "
          f"(inspector worker: {report['inspector_rss_mb']:.0f} MB, not counted)")
    print(f"  (1-min load average: {report['load_before']:.1f} before, {report['load_after_edits']:.1f} "
          f"after the edits, on {report['cpus']} CPUs; other load skews every figure)")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in report.items()}))


if __name__ == "__main__":
    main()
