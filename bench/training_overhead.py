"""Training overhead of LayerLab against a plain Keras script doing the same work.

Run from the repository root: `.venv/bin/python bench/training_overhead.py [--epochs N]`.

What it measures:
1. LayerLab: a real `uvicorn --factory app.main:create_app` subprocess (fresh LAYERLAB_DATA_DIR). A workspace
   prepares the built-in `digits28`; a "convnet" and a "dense" starter model get it attached and
   are trained with the same seed, epochs and batch size 32 (other settings: LayerLab's suggested
   ones, so steps_per_execution is the default). The time runs from just before
   POST /models/{id}/runs to the arrival of the final `state` event on the run's SSE stream, which
   this script reads live (every event is timestamped on arrival).
2. Plain Keras: a script run in a FRESH python process (subprocess.run of `python -c`), because
   LayerLab trains in a freshly spawned process too, so interpreter start and the TensorFlow import
   are counted on both sides. It gets the same environment LayerLab's worker sets
   (TF_CPP_MIN_LOG_LEVEL=2, KERAS_BACKEND=tensorflow, CUDA_VISIBLE_DEVICES=""), builds the same
   architecture with keras.Sequential, compiles it with sparse_categorical_crossentropy, Adam(0.001)
   and accuracy (Keras' default steps_per_execution=1, as a learner would write it), fits the
   prepared arrays.npz of the run's dataset (x_train/y_train, validation x_val/y_val; same epochs,
   batch size and seed, verbose=0), evaluates on x_test/y_test and saves a .keras file. Its whole
   wall time (launch to exit) is the reference; inside, build -> save is printed too.
3. Ratio LayerLab / plain Keras per model (target: <= 1.05 for the convnet), and a phase table
   splitting both wall times the same way, from the run's own events (epoch elapsed_s/epoch_s,
   finished elapsed_s) on LayerLab's side and from timestamps printed by the script on the Keras
   side (one shared monotonic clock): process start + imports, data loading + build + compile,
   epoch 1 (tf.function tracing), later epochs, gaps between epochs (checkpoints), after the last
   epoch (save + evaluation), and reporting/exit. The rows add up to each total exactly.
   Then, unless --no-breakdown, LayerLab's run_training is replayed in another fresh process with
   timers around its parts (imports, read_arrays, build, compile, every checkpoint, the final save,
   model.evaluate / model.predict / report / PNG inside evaluate_model, the batch callback), to say
   what inside the LayerLab-only phases costs the time; for the convnet, plain Keras is also run
   with LayerLab's steps_per_execution. CPU seconds are measured beside wall time (the training
   worker's from the server's reaped children, the scripts' from getrusage, phases from
   time.process_time marks): on a shared 2-core host they move far less than wall time with load.
4. steps_per_execution: the dense starter trained through LayerLab with steps_per_execution 1, 8
   and 32: steady per-epoch time (median of epochs 2..N) and its ratio to 1, plus batch events per
   second during the longest epoch and the longest wait between two live-curve updates on the
   SSE stream (target: at least 2 updates a second).
The last line printed is one JSON object with every figure. Figures depend on other load on the
host (the 1-minute load average is printed); run it twice when they matter.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from live_server import free_port, start_server, stop

ROOT = Path(__file__).resolve().parents[1]
BATCH_SIZE = 32
SEED = 42
MODELS = ("convnet", "dense")
SPE_VALUES = (1, 8, 32)
TERMINAL = ("completed", "failed", "diverged", "cancelled", "interrupted")
# What LayerLab's worker sets before importing TensorFlow (app.worker.environment.quiet_tensorflow).
TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": ""}

# --- the plain Keras script (runs in a fresh process; argv[1] is its JSON job) -------------------
# Every mark is (time.monotonic(), time.process_time()): wall on the clock all processes share,
# and this process's CPU seconds (all threads) since it started.
PLAIN_KERAS = r"""
import time
def mark():
    return (time.monotonic(), time.process_time())
M_START = mark()
import json, sys
job = json.loads(sys.argv[1])
M_IMPORT0 = mark()
import numpy as np
import keras
M_IMPORTED = mark()

with np.load(job["arrays"]) as data:
    x_train, y_train = data["x_train"], data["y_train"]
    x_val, y_val = data["x_val"], data["y_val"]
    x_test, y_test = data["x_test"], data["y_test"]
M_LOADED = mark()
keras.utils.set_random_seed(job["seed"])

def build(kind):
    if kind == "convnet":
        return keras.Sequential([
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Conv2D(32, (3, 3), activation="relu"),
            keras.layers.MaxPooling2D((2, 2)),
            keras.layers.Conv2D(64, (3, 3), activation="relu"),
            keras.layers.MaxPooling2D((2, 2)),
            keras.layers.Conv2D(64, (3, 3), activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ])
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])

class EpochClock(keras.callbacks.Callback):  # epoch hooks only: nothing runs per batch
    def __init__(self):
        super().__init__()
        self.begins, self.ends = [], []
    def on_epoch_begin(self, epoch, logs=None):
        self.begins.append(mark())
    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(mark())

M_BUILD = mark()
model = build(job["model"])
compile_args = {}
if job.get("steps_per_execution"):
    compile_args["steps_per_execution"] = job["steps_per_execution"]
model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"], **compile_args)
M_COMPILED = mark()
clock = EpochClock()
if job.get("pipeline") == "tf.data":  # what a tuned script feeds: batches built once, shuffled, prefetched
    import tensorflow as tf
    def batches(x, y, shuffle):
        data = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            data = data.shuffle(len(x), seed=job["seed"], reshuffle_each_iteration=True)
        return data.batch(job["batch_size"]).prefetch(tf.data.AUTOTUNE)
    history = model.fit(batches(x_train, y_train, True), validation_data=batches(x_val, y_val, False),
                        epochs=job["epochs"], verbose=0, callbacks=[clock])
else:  # Keras' default: NumPy arrays, batched by Keras each epoch
    history = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=job["epochs"],
                        batch_size=job["batch_size"], verbose=0, callbacks=[clock])
M_FITTED = mark()
scores = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
M_EVALUATED = mark()
model.save(job["save_to"])
M_SAVED = mark()
print(json.dumps({
    "start": M_START, "import0": M_IMPORT0, "imported": M_IMPORTED, "loaded": M_LOADED,
    "build": M_BUILD, "compiled": M_COMPILED, "begins": clock.begins, "ends": clock.ends,
    "fitted": M_FITTED, "evaluated": M_EVALUATED, "saved": M_SAVED,
    "params": int(model.count_params()), "test_accuracy": float(scores["accuracy"]),
    "val_accuracy": float(history.history["val_accuracy"][-1]),
    "steps_per_execution": int(getattr(model, "steps_per_execution", 1) or 1),
}))
"""

# --- LayerLab's run_training with timers around its parts (fresh process; argv[1] = request) ----
REPLAY = r"""
import time
def mark():
    return (time.monotonic(), time.process_time())
M_START = mark()
import json, sys, multiprocessing
from collections import defaultdict
request = json.loads(sys.argv[1])
M_IMPORT0 = mark()
from app.worker.environment import quiet_tensorflow
quiet_tensorflow()  # as app.worker.runner.run_job does before its import
import app.worker.train as train
import app.worker.evaluate as evaluate
import keras
M_IMPORTED = mark()
spent, cpu, calls = defaultdict(float), defaultdict(float), defaultdict(int)
in_eval = [False]
begins, ends = [], []

missing = []

def timed(owner, name, label=None, key=None, before=None, after=None):
    original = getattr(owner, name, None)
    if original is None:  # renamed in the app since this bench was written: not timed
        missing.append(name)
        return
    def wrapper(*args, **kwargs):
        tag = key(*args, **kwargs) if key else (label or name)
        if before:
            before()
        start, start_cpu = time.monotonic(), time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent[tag] += time.monotonic() - start
            cpu[tag] += time.process_time() - start_cpu
            calls[tag] += 1
            if after:
                after()
    setattr(owner, name, wrapper)

for name in ("read_meta", "read_arrays", "check_training", "build_model", "compile_model", "_batches",
             "prepare_targets"):
    timed(train, name)
timed(train, "_save_model", key=lambda model, path: "save_checkpoint" if "checkpoint" in path.name
      else "save_model")
timed(train._Progress, "on_train_batch_end", "batch_callback")
timed(train._Progress, "on_test_batch_end", "test_batch_callback")
timed(train._Progress, "on_epoch_begin", "epoch_begin", after=lambda: begins.append(mark()))
timed(train._Progress, "on_epoch_end", "epoch_callback", before=lambda: ends.append(mark()))
timed(evaluate, "_classification_report", "eval_report")
timed(evaluate, "write_sample_grid", "eval_png")
timed(train, "evaluate_model", before=lambda: in_eval.__setitem__(0, True),
      after=lambda: in_eval.__setitem__(0, False))
timed(keras.Model, "fit")
timed(keras.Model, "evaluate", key=lambda *a, **k: "eval_model.evaluate" if in_eval[0] else "validation")
timed(keras.Model, "predict", key=lambda *a, **k: "eval_model.predict" if in_eval[0] else "predict")

events = []
def emit(event):
    events.append(event)

stop = multiprocessing.get_context("spawn").Event()  # as the real worker's should_stop
M_RUN = mark()
result = train.run_training(request, emit, stop.is_set)
M_DONE = mark()
print(json.dumps({"start": M_START, "import0": M_IMPORT0, "imported": M_IMPORTED, "run": M_RUN,
                  "begins": begins, "ends": ends, "done": M_DONE,
                  "elapsed_s": result.get("elapsed_s"), "state": result["state"],
                  "spent": spent, "cpu": cpu, "calls": calls, "missing": missing,
                  "checkpoints": sum(1 for e in events if e["type"] == "checkpoint"),
                  "batch_events": sum(1 for e in events if e["type"] == "batch")}))
"""








def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


PHASE_TITLES = {
    "start_imports": "process start + imports",
    "setup": "data load + build + compile",
    "epoch1": "epoch 1 (incl. tracing)",
    "later_epochs": "epochs 2..N",
    "between_epochs": "between epochs (checkpoints)",
    "after_training": "after last epoch (save, evaluate)",
    "report_exit": "reporting / process exit",
}


def phases(launch: float, run_start: float, begins: list[float], ends: list[float], done: float,
           exit_: float) -> dict[str, float]:
    """One wall (or CPU) total split into PHASE_TITLES; the parts add up to exit_ - launch.
    run_start: imports done, the job's own work begins; done: the model is saved and tested."""
    return {
        "start_imports": run_start - launch,
        "setup": begins[0] - run_start,
        "epoch1": ends[0] - begins[0],
        "later_epochs": sum(e - b for b, e in zip(begins[1:], ends[1:])),
        "between_epochs": sum(begins[k] - ends[k - 1] for k in range(1, len(begins))),
        "after_training": done - ends[-1],
        "report_exit": exit_ - done,
    }


# --- LayerLab ----------------------------------------------------------------------------------

def read_sse(client: httpx.Client, run_id: int, t0: float,
             on_event: Any = None) -> tuple[list[dict[str, Any]], float]:
    """Every event of the run, each with its arrival time `t` (seconds after t0), until the final
    state event; returns (events, arrival time of that final state event)."""
    events: list[dict[str, Any]] = []
    with client.stream("GET", f"/runs/{run_id}/events") as response:
        response.raise_for_status()
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            now = time.perf_counter() - t0
            if line.startswith(":"):
                continue  # keep-alive comment
            if line:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                fields[name] = fields[name] + "\n" + value if name in fields else value
                continue
            if not fields:
                continue
            data = json.loads(fields.get("data") or "{}")
            events.append({"t": now, "id": int(fields.get("id", 0)), "type": fields.get("event"),
                           "data": data})
            fields = {}
            if on_event:
                on_event(events[-1])
            if events[-1]["type"] == "state" and data.get("state") in TERMINAL:
                return events, now
    raise RuntimeError(f"the event stream of run {run_id} ended before a final state")


def worker_cpu_seconds(server: psutil.Process) -> float:
    """CPU seconds of the server's reaped children (finished training workers; the inspector and
    the data worker live as long as the server, so they are not in this figure)."""
    times = server.cpu_times()
    return times.children_user + times.children_system


def layerlab_run(client: httpx.Client, server: psutil.Process, model_id: int,
                 body: dict[str, Any]) -> dict[str, Any]:
    before = {p.pid for p in server.children()}
    cpu0 = worker_cpu_seconds(server)
    workers: list[psutil.Process] = []

    def find_worker(event: dict[str, Any]) -> None:
        if event["type"] == "started" and not workers:  # the worker is alive now
            workers.extend(p for p in server.children() if p.pid not in before)

    t0 = time.perf_counter()
    run = client.post(f"/models/{model_id}/runs", json=body).raise_for_status().json()
    post_s = time.perf_counter() - t0
    events, total_s = read_sse(client, run["id"], t0, find_worker)
    final = client.get(f"/runs/{run['id']}").raise_for_status().json()
    if final["state"] != "completed":
        raise RuntimeError(f"run {run['id']} ended {final['state']}: {final['reason']}")
    # Wait for the worker to exit and be reaped (the next run must not share the CPUs with its
    # teardown), then read its CPU seconds.
    _, alive = psutil.wait_procs(workers, timeout=30)
    deadline = time.perf_counter() + 5
    while time.perf_counter() < deadline and worker_cpu_seconds(server) == cpu0:
        time.sleep(0.02)
    worker_exit_s = time.perf_counter() - t0 - total_s
    return {"run": final, "events": events, "post_s": post_s, "total_s": total_s,
            "worker_cpu_s": worker_cpu_seconds(server) - cpu0 if len(workers) == 1 and not alive else None,
            "worker_exit_after_s": worker_exit_s}


def layerlab_phases(result: dict[str, Any]) -> dict[str, Any]:
    """Split POST -> completed by the run's own events. The worker's clock starts at run_training;
    its start on our clock is the earliest arrival - elapsed_s (the event with the least delay)."""
    events = result["events"]
    epochs = [e for e in events if e["type"] == "epoch"]
    finished = next(e for e in events if e["type"] == "finished")
    started = next(e for e in events if e["type"] == "started")
    anchors = [e["t"] - e["data"]["elapsed_s"] for e in epochs + [finished]]
    run_start = min(anchors)
    durations = [e["data"]["epoch_s"] for e in epochs]
    ends = [run_start + e["data"]["elapsed_s"] for e in epochs]
    begins = [end - took for end, took in zip(ends, durations)]
    batches = [e for e in events if e["type"] == "batch"]
    longest = max(range(len(epochs)), key=lambda k: durations[k])
    in_longest = [b for b in batches if b["data"]["epoch"] == longest + 1]
    later = [k for k in range(1, len(epochs))]
    longest_later = max(later, key=lambda k: durations[k]) if later else longest
    in_longest_later = [b for b in batches if b["data"]["epoch"] == longest_later + 1]
    # Live-curve updates: batch and epoch events, from `started` to the last epoch event.
    updates = [e["t"] for e in events if e["type"] in ("started", "batch", "epoch")]
    waits = [b - a for a, b in itertools.pairwise(updates)]
    first_batch = next((b["t"] for b in batches), None)
    steady_waits = [w for a, w in zip(updates, waits) if first_batch is not None and a >= first_batch]
    return {
        "total_s": result["total_s"], "post_s": result["post_s"],
        "phases": phases(0.0, run_start, begins, ends, run_start + finished["data"]["elapsed_s"],
                         result["total_s"]),
        "train_s": finished["data"]["elapsed_s"],  # run_training, as the worker timed it
        "worker_cpu_s": result["worker_cpu_s"], "worker_exit_after_s": result["worker_exit_after_s"],
        "anchor_spread_s": max(anchors) - run_start,  # delivery jitter of events (ms scale)
        "epoch_s": durations, "steady_epoch_s": median(durations[1:]) or durations[0],
        "epoch_cpu_s": [e["data"]["cpu_s"] for e in epochs],  # the training process's CPU seconds, all threads
        "epoch_ends_s": [end - run_start for end in ends],  # on the worker's clock, from run_training's start
        "checkpoints": sum(1 for e in events if e["type"] == "checkpoint"),
        "batch_events": len(batches),
        "longest_epoch": longest + 1, "longest_epoch_s": durations[longest],
        "longest_epoch_batch_events": len(in_longest),
        "longest_epoch_batch_rate": len(in_longest) / durations[longest] if durations[longest] else 0.0,
        "longest_later_epoch": longest_later + 1,
        "longest_later_epoch_batch_rate": (len(in_longest_later) / durations[longest_later]
                                           if durations[longest_later] else 0.0),
        "started_to_first_batch_s": first_batch - started["t"] if first_batch is not None else None,
        "max_update_wait_s": max(waits) if waits else None,
        "max_update_wait_after_first_batch_s": max(steady_waits) if steady_waits else None,
        "total_params": started["data"]["total_params"],
        "steps_per_epoch": started["data"]["steps_per_epoch"],
        "steps_per_execution": result["run"]["config"]["steps_per_execution"],
        "val_accuracy": epochs[-1]["data"]["logs"].get("val_accuracy"),
        "test_accuracy": (result["run"]["evaluation"] or {}).get("accuracy"),
    }


# --- plain Keras and the replay (fresh processes) -----------------------------------------------

def fresh_python(code: str, job: dict[str, Any], niceness: int = 0) -> tuple[dict[str, Any], float, float, float]:
    """Run code in a new interpreter (at `niceness`); returns (its last JSON line, launch, exit, its CPU
    seconds). Launch and exit are on time.monotonic(), which is one clock for every process here."""
    env = {**os.environ, **TF_ENV}
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    launch = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code, json.dumps(job)], cwd=ROOT, env=env,
                          capture_output=True, text=True, preexec_fn=(lambda: os.nice(niceness)) if niceness else None)
    exited = time.monotonic()
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"fresh python failed ({done.returncode}):\n{done.stderr[-3000:]}")
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    return json.loads(done.stdout.strip().splitlines()[-1]), launch, exited, cpu


def both_phases(r: dict[str, Any], run_key: str, done_key: str, launch: float, exited: float,
                cpu: float) -> tuple[dict[str, float], dict[str, float]]:
    """(wall phases, CPU phases) from a child's marks."""
    wall = phases(launch, r[run_key][0], [b[0] for b in r["begins"]], [e[0] for e in r["ends"]],
                  r[done_key][0], exited)
    cpu_phases = phases(0.0, r[run_key][1], [b[1] for b in r["begins"]], [e[1] for e in r["ends"]],
                        r[done_key][1], cpu)
    return wall, cpu_phases


def plain_keras(kind: str, arrays: Path, epochs: int, out_dir: Path, steps_per_execution: int | None = None,
                batch_size: int = BATCH_SIZE, pipeline: str = "numpy", niceness: int = 0) -> dict[str, Any]:
    """The plain Keras script on the same arrays; `pipeline` "numpy" (Keras' default) or "tf.data"."""
    job = {"model": kind, "arrays": str(arrays), "epochs": epochs, "batch_size": batch_size, "seed": SEED,
           "save_to": str(out_dir / f"plain-{kind}-{steps_per_execution or 0}-{pipeline}.keras"),
           "steps_per_execution": steps_per_execution, "pipeline": pipeline}
    r, launch, exited, cpu = fresh_python(PLAIN_KERAS, job, niceness)
    wall, cpu_phases = both_phases(r, "imported", "saved", launch, exited, cpu)
    durations = [e[0] - b[0] for b, e in zip(r["begins"], r["ends"])]
    t = lambda key: r[key][0]
    return {
        "total_s": exited - launch, "cpu_s": cpu, "phases": wall, "cpu_phases": cpu_phases,
        "interpreter_start_s": t("start") - launch, "import_s": t("imported") - t("import0"),
        "import_cpu_s": r["imported"][1] - r["import0"][1],
        "load_s": t("loaded") - t("imported"), "build_compile_s": t("compiled") - t("build"),
        "fit_s": t("fitted") - t("compiled"), "evaluate_s": t("evaluated") - t("fitted"),
        "save_s": t("saved") - t("evaluated"),
        "build_to_save_s": t("saved") - t("build"), "load_to_save_s": t("saved") - t("imported"),
        "launch_to_saved_s": t("saved") - launch,
        "epoch_s": durations, "steady_epoch_s": median(durations[1:]) or durations[0],
        "epoch_cpu_s": [e[1] - b[1] for b, e in zip(r["begins"], r["ends"])],
        "epoch_ends_s": [e[0] - launch for e in r["ends"]],
        "total_params": r["params"], "val_accuracy": r["val_accuracy"],
        "test_accuracy": r["test_accuracy"], "steps_per_execution": r["steps_per_execution"],
    }


def replay(run: dict[str, Any], dataset_dir: Path, run_dir: Path) -> dict[str, Any]:
    request = {"graph": run["graph"], "config": run["config"], "dataset_dir": str(dataset_dir),
               "run_dir": str(run_dir), "resume": False, "evaluate": True}
    r, launch, exited, cpu = fresh_python(REPLAY, request)
    if r["state"] != "completed":
        raise RuntimeError(f"the replay ended {r['state']}")
    wall, cpu_phases = both_phases(r, "run", "done", launch, exited, cpu)
    return {"total_s": exited - launch, "cpu_s": cpu, "phases": wall, "cpu_phases": cpu_phases,
            "import_s": r["imported"][0] - r["import0"][0], "import_cpu_s": r["imported"][1] - r["import0"][1],
            "elapsed_s": r["elapsed_s"], "spent": r["spent"], "cpu": r["cpu"], "calls": r["calls"],
            "checkpoints": r["checkpoints"], "batch_events": r["batch_events"], "missing": r["missing"]}


# --- the report ----------------------------------------------------------------------------------

def print_model(kind: str, ll: dict[str, Any], pk: dict[str, Any], rp: dict[str, Any] | None,
                matched: dict[str, Any] | None) -> None:
    ratio = ll["total_s"] / pk["total_s"]
    print(f"\n{kind}: {ll['total_params']:,} params (plain Keras: {pk['total_params']:,}), "
          f"{ll['steps_per_epoch']} steps/epoch; steps_per_execution: LayerLab {ll['steps_per_execution']}, "
          f"plain Keras {pk['steps_per_execution']} (Keras' default)")
    print(f"  LayerLab    POST -> completed (SSE)     {ll['total_s']:7.2f} s   "
          f"(POST itself {ll['post_s'] * 1000:.0f} ms;"
          f" run_training elapsed_s {ll['train_s']:.2f} s)")
    print(f"  plain Keras fresh process launch->exit {pk['total_s']:7.2f} s   (inside: build -> save "
          f"{pk['build_to_save_s']:.2f} s; data load -> save {pk['load_to_save_s']:.2f} s)")
    print(f"  ratio LayerLab / plain Keras           {ratio:7.3f}" +
          (f"     [{'ok  ' if ratio <= 1.05 else 'MISS'}] target <= 1.05" if kind == "convnet" else ""))
    print(f"  plain Keras launch -> saved (its interpreter teardown left out, as LayerLab does not wait for its "
          f"worker's) {pk['launch_to_saved_s']:.2f} s: ratio {ll['total_s'] / pk['launch_to_saved_s']:.3f}")
    print(f"  training only: LayerLab run_training {ll['train_s']:.2f} s / plain Keras data load -> save "
          f"{pk['load_to_save_s']:.2f} s = {ll['train_s'] / pk['load_to_save_s']:.3f}")
    if ll["worker_cpu_s"] is not None:
        print(f"  CPU seconds (load-robust): LayerLab worker process {ll['worker_cpu_s']:.2f} s, plain Keras process "
              f"{pk['cpu_s']:.2f} s, ratio {ll['worker_cpu_s'] / pk['cpu_s']:.3f}")
    if matched is not None:
        print(f"  plain Keras with steps_per_execution={matched['steps_per_execution']} (as LayerLab): "
              f"{matched['total_s']:.2f} s (CPU {matched['cpu_s']:.2f} s), epoch 1 {matched['epoch_s'][0]:.2f} s, "
              f"steady epoch {matched['steady_epoch_s']:.3f} s; "
              f"LayerLab / it = {ll['total_s'] / matched['total_s']:.3f}")
        cpu_of = lambda r, key: r["cpu_phases"][key] if r else float("nan")
        print(f"    CPU s, epoch 1 / epochs 2..N: plain Keras spe {pk['steps_per_execution']} "
              f"{cpu_of(pk, 'epoch1'):.2f} / {cpu_of(pk, 'later_epochs'):.2f}, plain Keras spe "
              f"{matched['steps_per_execution']} {cpu_of(matched, 'epoch1'):.2f} / "
              f"{cpu_of(matched, 'later_epochs'):.2f}"
              f", LayerLab replay {cpu_of(rp, 'epoch1'):.2f} / {cpu_of(rp, 'later_epochs'):.2f}")
    print(f"  accuracy: val {ll['val_accuracy']:.3f} vs {pk['val_accuracy']:.3f}, "
          f"test {ll['test_accuracy']:.3f} vs {pk['test_accuracy']:.3f} (LayerLab vs plain Keras)")
    rp_wall = rp["phases"] if rp else {}
    rp_cpu = rp["cpu_phases"] if rp else {}
    print(f"  {'phase':34s} {'LayerLab':>9s} {'replay':>8s} {'Keras':>8s} {'diff':>8s} | {'CPU: replay':>11s} "
          f"{'Keras':>7s} {'diff':>7s}")
    diffs, cpu_diffs = {}, {}
    for key, title in PHASE_TITLES.items():
        a, b = ll["phases"][key], pk["phases"][key]
        diffs[key] = a - b
        line = f"  {title:34s} {a:8.2f}s {rp_wall.get(key, float('nan')):7.2f}s {b:7.2f}s {a - b:+7.2f}s |"
        if rp:
            c, d = rp_cpu[key], pk["cpu_phases"][key]
            cpu_diffs[key] = c - d
            line += f" {c:10.2f}s {d:6.2f}s {c - d:+6.2f}s"
        print(line)
    line = (f"  {'total':34s} {ll['total_s']:8.2f}s {rp['total_s'] if rp else float('nan'):7.2f}s "
            f"{pk['total_s']:7.2f}s {ll['total_s'] - pk['total_s']:+7.2f}s |")
    if rp:
        line += f" {rp['cpu_s']:10.2f}s {pk['cpu_s']:6.2f}s {rp['cpu_s'] - pk['cpu_s']:+6.2f}s"
    print(line)
    print(f"  steady epoch (median of 2..N)      {ll['steady_epoch_s']:8.3f}s {'':8s} {pk['steady_epoch_s']:7.3f}s "
          f"({ll['checkpoints']} checkpoints, {ll['batch_events']} batch events in LayerLab)")
    order = sorted(diffs.items(), key=lambda kv: -abs(kv[1]))
    print("  largest wall differences: " + ", ".join(f"{PHASE_TITLES[k]} {v:+.2f} s" for k, v in order[:3]))
    if cpu_diffs:
        order = sorted(cpu_diffs.items(), key=lambda kv: -abs(kv[1]))
        print("  largest CPU differences:  " + ", ".join(f"{PHASE_TITLES[k]} {v:+.2f} s" for k, v in order[:3]))
    print(f"  plain Keras parts: interpreter {pk['interpreter_start_s']:.2f} s, import keras {pk['import_s']:.2f} s "
          f"(CPU {pk['import_cpu_s']:.2f} s), np.load {pk['load_s'] * 1000:.0f} ms, build+compile "
          f"{pk['build_compile_s'] * 1000:.0f} ms, fit {pk['fit_s']:.2f} s, evaluate {pk['evaluate_s'] * 1000:.0f} ms, "
          f"save {pk['save_s'] * 1000:.0f} ms")
    if rp is None:
        return
    s, c, n = rp["spent"], rp["cpu"], rp["calls"]
    ms = lambda key: s.get(key, 0.0) * 1000
    cms = lambda key: c.get(key, 0.0) * 1000
    print(f"  LayerLab's run_training replayed in a fresh process with timers (elapsed_s {rp['elapsed_s']:.2f} s "
          f"there vs {ll['train_s']:.2f} s in the server; wall ms / CPU ms):")
    if rp["missing"]:
        print(f"    (not timed, no longer in the app: {', '.join(rp['missing'])})")
    print(f"    import app.worker.train {rp['import_s']:.2f} s / CPU {rp['import_cpu_s']:.2f} s "
          f"(plain: import keras {pk['import_s']:.2f} s / CPU {pk['import_cpu_s']:.2f} s)")
    print(f"    setup: read_meta+read_arrays {ms('read_meta') + ms('read_arrays'):.0f}, check_training "
          f"{ms('check_training'):.0f}, build_model {ms('build_model'):.0f}/{cms('build_model'):.0f}, compile_model "
          f"{ms('compile_model'):.0f}, _batches (tf.data) {ms('_batches'):.0f}/{cms('_batches'):.0f}")
    print(f"    fit {ms('fit') / 1000:.2f} s: batch callback {ms('batch_callback'):.1f} ms in "
          f"{n.get('batch_callback', 0)} calls, validation {ms('validation'):.0f}/{cms('validation'):.0f} in "
          f"{n.get('validation', 0)} calls, epoch callback {ms('epoch_callback'):.0f}/{cms('epoch_callback'):.0f}")
    per = ms("save_checkpoint") / max(1, n.get("save_checkpoint", 0))
    print(f"    checkpoints: {n.get('save_checkpoint', 0)} saves, "
          f"{ms('save_checkpoint'):.0f}/{cms('save_checkpoint'):.0f}"
          f" ({per:.0f} ms each); final model.keras save {ms('save_model'):.0f}/{cms('save_model'):.0f} "
          f"(plain Keras save {pk['save_s'] * 1000:.0f})")
    rest = ms("evaluate_model") - sum(ms(k) for k in ("eval_model.evaluate", "eval_model.predict", "eval_report",
                                                       "eval_png"))
    print(f"    evaluate_model {ms('evaluate_model'):.0f}/{cms('evaluate_model'):.0f} = model.evaluate "
          f"{ms('eval_model.evaluate'):.0f}/{cms('eval_model.evaluate'):.0f} + model.predict "
          f"{ms('eval_model.predict'):.0f}/{cms('eval_model.predict'):.0f} + report {ms('eval_report'):.0f} + PNG "
          f"{ms('eval_png'):.0f} + rest {rest:.0f} (plain Keras evaluate {pk['evaluate_s'] * 1000:.0f})")
    pc, kc = rp["cpu_phases"], pk["cpu_phases"]
    print("  where the difference comes from (CPU seconds are the load-robust measure):")
    print(f"    LayerLab-only work (replay CPU): checkpoints {c.get('save_checkpoint', 0):.2f} s, model.predict + PNG "
          f"in evaluate_model {c.get('eval_model.predict', 0) + c.get('eval_png', 0):.2f} s, app imports over "
          f"keras' {rp['import_cpu_s'] - pk['import_cpu_s']:+.2f} s")
    print(f"    LayerLab saves on epochs 2..N {pc['later_epochs'] - kc['later_epochs']:+.2f} s CPU "
          f"(steps_per_execution {ll['steps_per_execution']} and a tf.data pipeline vs "
          f"{pk['steps_per_execution']} and numpy); epoch 1 differs by {pc['epoch1'] - kc['epoch1']:+.2f} s CPU")
    print(f"    wall-only differences are load: import wall/CPU {rp['import_s']:.1f}/{rp['import_cpu_s']:.1f} s "
          f"(replay) vs {pk['import_s']:.1f}/{pk['import_cpu_s']:.1f} s (plain Keras); plain Keras' interpreter "
          f"teardown ({pk['phases']['report_exit']:.2f} s wall, {kc['report_exit']:.2f} s CPU) is not waited for "
          f"by LayerLab (its worker exits {ll['worker_exit_after_s']:.2f} s after `completed`)")


def print_spe(spe: dict[int, dict[str, Any]], keras_dense: dict[str, Any]) -> None:
    print("\nsteps_per_execution (dense starter through LayerLab; steady epoch = median of epochs 2..N):")
    print(f"  {'spe':>4s} {'total':>7s} {'epoch 1':>8s} {'steady':>7s} {'vs 1':>6s} | longest epoch: batch events/s"
          f"       | later epochs | started->1st batch | max wait (after 1st batch) | worker CPU")
    base = spe.get(1, {}).get("steady_epoch_s")
    for n, r in spe.items():
        rate = r["longest_epoch_batch_rate"]
        print(f"  {n:4d} {r['total_s']:6.2f}s {r['epoch_s'][0]:7.3f}s {r['steady_epoch_s']:6.3f}s "
              f"{(r['steady_epoch_s'] / base if base else float('nan')):5.2f}x | "
              f"{r['longest_epoch_batch_events']:3d} in {r['longest_epoch_s']:5.2f}s (epoch {r['longest_epoch']})"
              f" = {rate:4.1f}/s [{'ok  ' if rate >= 2 else 'MISS'}] | {r['longest_later_epoch_batch_rate']:6.1f}/s    "
              f"| {r['started_to_first_batch_s'] or float('nan'):15.2f}s   | {r['max_update_wait_s']:5.2f}s "
              f"({r['max_update_wait_after_first_batch_s'] or float('nan'):4.2f}s){'':12s}| "
              f"{r['worker_cpu_s'] or float('nan'):6.2f}s")
    print(f"  plain Keras dense (steps_per_execution 1, numpy input): steady epoch "
          f"{keras_dense['steady_epoch_s']:.3f} s, epoch 1 {keras_dense['epoch_s'][0]:.3f} s")
    print("  (target: >= 2 batch events a second in the longest epoch, which is epoch 1 when it traces the train "
          "function. `later epochs`: the same rate in the longest of epochs 2..N; `max wait`: the longest gap "
          "between two live-curve updates (batch or epoch events) from `started` on, and after the first batch)")


def flat(prefix: str, d: dict[str, Any], out: dict[str, Any]) -> None:
    for key, value in d.items():
        name = f"{prefix}_{key}"
        if isinstance(value, dict):
            flat(name, value, out)
        elif isinstance(value, float):
            out[name] = round(value, 4)
        elif isinstance(value, list):
            out[name] = [round(v, 4) if isinstance(v, float) else v for v in value]
        else:
            out[name] = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--no-breakdown", action="store_true",
                        help="skip the timed replays of run_training and the matched plain Keras run")
    parser.add_argument("--no-spe", action="store_true", help="skip the steps_per_execution runs")
    args = parser.parse_args()
    bench_started = time.perf_counter()
    report: dict[str, Any] = {"epochs": args.epochs, "batch_size": BATCH_SIZE, "seed": SEED,
                              "cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    data_dir = tempfile.mkdtemp(prefix="layerlab-bench-")
    out_dir = Path(data_dir) / "bench-out"
    out_dir.mkdir()
    port = free_port()
    proc = None
    results: dict[str, Any] = {}
    spe: dict[int, dict[str, Any]] = {}
    try:
        proc, report["startup_s"] = start_server(data_dir, port)
        server = psutil.Process(proc.pid)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1",
                          timeout=httpx.Timeout(30, read=300)) as client:
            token = client.post("/workspaces").raise_for_status().json()["token"]
            client.headers["Authorization"] = f"Bearer {token}"
            t0 = time.perf_counter()
            dataset = client.post("/datasets", json={"key": "digits28"}).raise_for_status().json()
            report["dataset_prepare_s"] = time.perf_counter() - t0
            found = list(Path(data_dir).glob("builtin/digits28-*/arrays.npz"))
            assert len(found) == 1, found
            arrays = found[0]
            report["split_sizes"] = dataset["split_sizes"]
            models = {}
            for kind in MODELS:
                model = client.post("/models", json={"name": f"bench-{kind}", "starter": kind}
                                    ).raise_for_status().json()
                client.put(f"/models/{model['id']}/dataset", json={"dataset_id": dataset["id"]}
                           ).raise_for_status()
                models[kind] = model["id"]
            # Let the inspector's TensorFlow warm-up finish: it would otherwise compete with run 1.
            t0 = time.perf_counter()
            while client.get(f"/models/{models['convnet']}/summary").status_code == 503:
                time.sleep(0.1)
            report["inspector_ready_s"] = time.perf_counter() - t0
            body = {"epochs": args.epochs, "batch_size": BATCH_SIZE, "seed": SEED}
            print(f"LayerLab training overhead: digits28 {dataset['split_sizes']}, {args.epochs} epochs, "
                  f"batch {BATCH_SIZE}, seed {SEED}; {os.cpu_count()} CPUs, 1-min load {report['load_before']:.1f}")
            print("Plain Keras runs in a fresh `python -c` process (as LayerLab's spawned worker), so interpreter "
                  "start and the TensorFlow import count on both sides.")
            for kind in MODELS:
                # Plain Keras first, then LayerLab: both find TensorFlow's files in the page cache.
                pk = plain_keras(kind, arrays, args.epochs, out_dir)
                done = layerlab_run(client, server, models[kind], body)
                ll = layerlab_phases(done)
                rp = matched = None
                if not args.no_breakdown:
                    rp = replay(done["run"], arrays.parent, out_dir / f"replay-{kind}")
                    if kind == "convnet" and ll["steps_per_execution"] != pk["steps_per_execution"]:
                        matched = plain_keras(kind, arrays, args.epochs, out_dir, ll["steps_per_execution"])
                results[kind] = {"layerlab": ll, "keras": pk, "replay": rp, "matched": matched}
                print_model(kind, ll, pk, rp, matched)
            if not args.no_spe:
                default_spe = results["dense"]["layerlab"]["steps_per_execution"]
                for n in SPE_VALUES:
                    if n == default_spe:
                        spe[n] = results["dense"]["layerlab"]  # the run above already used it
                    else:
                        spe[n] = layerlab_phases(layerlab_run(client, server, models["dense"],
                                                              {**body, "steps_per_execution": n}))
                print_spe(spe, results["dense"]["keras"])
        report["load_after"] = os.getloadavg()[0]
    finally:
        if proc is not None:
            stop(proc)
        shutil.rmtree(data_dir, ignore_errors=True)

    for kind, r in results.items():
        ll, pk = r["layerlab"], r["keras"]
        report[f"{kind}_ratio"] = ll["total_s"] / pk["total_s"]
        report[f"{kind}_ratio_to_saved"] = ll["total_s"] / pk["launch_to_saved_s"]
        report[f"{kind}_train_ratio"] = ll["train_s"] / pk["load_to_save_s"]
        if ll["worker_cpu_s"]:
            report[f"{kind}_cpu_ratio"] = ll["worker_cpu_s"] / pk["cpu_s"]
        flat(f"{kind}_layerlab", ll, report)
        flat(f"{kind}_keras", pk, report)
        if r["replay"]:
            flat(f"{kind}_replay", r["replay"], report)
        if r["matched"]:
            flat(f"{kind}_keras_matched", {k: r["matched"][k] for k in
                                           ("total_s", "cpu_s", "epoch_s", "steady_epoch_s", "steps_per_execution",
                                            "cpu_phases")},
                 report)
    for n, r in spe.items():
        flat(f"spe{n}", {k: r[k] for k in ("total_s", "train_s", "worker_cpu_s", "steady_epoch_s", "epoch_s",
                                           "batch_events", "longest_epoch", "longest_epoch_s",
                                           "longest_epoch_batch_events", "longest_epoch_batch_rate",
                                           "longest_later_epoch_batch_rate", "started_to_first_batch_s",
                                           "max_update_wait_s", "max_update_wait_after_first_batch_s")}, report)
        if 1 in spe:
            report[f"spe{n}_epoch_ratio_vs_1"] = round(r["steady_epoch_s"] / spe[1]["steady_epoch_s"], 4)
    if "convnet" in results:
        report["convnet_ratio_ok"] = report["convnet_ratio"] <= 1.05
    report["bench_s"] = time.perf_counter() - bench_started
    print(f"\n(1-min load average {report['load_before']:.1f} before, {report.get('load_after', 0):.1f} after, "
          f"on {report['cpus']} CPUs; other load skews every wall figure, CPU seconds less so. "
          f"Bench took {report['bench_s']:.0f} s.)")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in report.items()}))


if __name__ == "__main__":
    main()
