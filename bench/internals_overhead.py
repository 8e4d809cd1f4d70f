"""What recording internals during training costs: the same runs with `record_internals` on and off.

Run from the repository root: `.venv/bin/python bench/internals_overhead.py [--repeats N]`.

Each case trains through LayerLab's own run_training (the function a training worker runs), in this
process, on data built from scikit-learn's bundled sets, with the same seed each time:
- `dense`: the dense starter on digits at 28x28 (1078 training samples), 10 epochs;
- `convnet`: the convnet starter on the same digits, 4 epochs;
- `playground`: a 2-8-8-3 relu/tanh network on 180 points of blobs, 40 epochs of about 15 ms each,
  where the fixed cost of a record weighs most (and decision-boundary frames are recorded too).
Runs alternate off, on, off, on... after one warm-up run per case, so slow drifts of the shared
host hit both sides alike. Reported per case: the median wall time and CPU time (this process) of
each side, their ratios on / off (target: wall ratio <= 1.05), the records kept, and the time spent
inside the recorder's own callbacks (set-up and first record, each epoch's end, writing the kept
weights) as a share of its run's wall time: the same overhead measured directly, which the shared
host's noise moves far less than a difference of two medians.
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def cases(folder: Path) -> dict[str, tuple[Any, Path, dict[str, Any]]]:
    from app.core.starters import STARTERS
    from tests.factories import stack
    from tests.training.datasets import write_blobs, write_digits

    digits, blobs = write_digits(folder / "digits"), write_blobs(folder / "blobs")
    playground = stack(("Input", {"shape": [2]}), ("Dense", {"units": 8, "activation": "relu"}),
                       ("Dense", {"units": 8, "activation": "tanh"}), ("Dense", {"units": 3, "activation": "softmax"}))
    return {"dense": (STARTERS["dense"].graph(), digits, {"epochs": 10}),
            "convnet": (STARTERS["convnet"].graph(), digits, {"epochs": 4}),
            "playground": (playground, blobs, {"epochs": 40})}


RECORDER_TIME: list[float] = []


def time_the_recorder() -> None:
    """Wrap the recorder's callbacks so that the seconds spent in them add up in RECORDER_TIME."""
    from app.worker.recording import InternalsRecorder

    for name in ("on_train_begin", "on_epoch_end", "flush"):
        original = getattr(InternalsRecorder, name)

        def timed(self: Any, *args: Any, _original: Any = original) -> Any:
            began = time.perf_counter()
            try:
                return _original(self, *args)
            finally:
                RECORDER_TIME.append(time.perf_counter() - began)

        setattr(InternalsRecorder, name, timed)


def one_run(graph: Any, dataset: Path, run_dir: Path, config: dict[str, Any], record: bool) -> dict[str, Any]:
    from app.worker.train import run_training

    RECORDER_TIME.clear()
    request = {"graph": graph.model_dump(), "dataset_dir": str(dataset), "run_dir": str(run_dir),
               "config": {**config, "seed": 7, "record_internals": record}, "evaluate": False}
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_training(request, lambda event: None, lambda: False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert result["state"] == "completed", result["message"]
    internals = run_dir / "internals.json"
    records = len(json.loads(internals.read_text())["records"]) if internals.exists() else 0
    return {"wall_s": wall, "cpu_s": cpu, "records": records, "recorder_share": sum(RECORDER_TIME) / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each side per case")
    args = parser.parse_args()
    time_the_recorder()
    report: dict[str, Any] = {"repeats": args.repeats, "load_1min": round(os.getloadavg()[0], 2), "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, (graph, dataset, config) in cases(folder).items():
            one_run(graph, dataset, folder / f"{name}-warm-up", config, True)
            sides: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
            for i in range(args.repeats):
                for record in (False, True):
                    sides[record].append(one_run(graph, dataset, folder / f"{name}-{i}-{record}", config, record))
            off = {k: statistics.median(r[k] for r in sides[False]) for k in ("wall_s", "cpu_s")}
            on = {k: statistics.median(r[k] for r in sides[True]) for k in ("wall_s", "cpu_s")}
            figures = {"off_wall_s": round(off["wall_s"], 3), "on_wall_s": round(on["wall_s"], 3),
                       "wall_ratio": round(on["wall_s"] / off["wall_s"], 3),
                       "cpu_ratio": round(on["cpu_s"] / off["cpu_s"], 3),
                       "recorder_share": round(statistics.median(r["recorder_share"] for r in sides[True]), 4),
                       "records": sides[True][-1]["records"], "epochs": config["epochs"]}
            report["cases"][name] = figures
            print(f"{name:11s} off {figures['off_wall_s']:7.3f} s  on {figures['on_wall_s']:7.3f} s  "
                  f"wall ratio {figures['wall_ratio']:.3f}  cpu ratio {figures['cpu_ratio']:.3f}  "
                  f"recorder {100 * figures['recorder_share']:.1f}% of the run  "
                  f"records {figures['records']} of {config['epochs']} epochs", flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
