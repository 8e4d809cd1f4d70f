"""Whether a GPU pays off here: the convnet starter trained on each device this machine has, with both times.

Run from the repository root on a machine with an NVIDIA GPU and TensorFlow's GPU build
(`LAYERLAB_TF=gpu scripts/install-image.sh`): `.venv/bin/python bench/gpu_check.py [--samples N] [--epochs N]`.
Without a GPU it says so and times the CPU alone.

The data is generated (28x28x1 images, 10 classes), so nothing is downloaded. Each device trains the same
model from the same seed with LayerLab's own build; the first epoch (graph tracing, cuDNN autotuning) is
reported apart from the steady ones. The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras
import numpy as np
import tensorflow as tf

from app.core.starters import STARTERS
from app.worker.build import build_model
from app.worker.devices import training_device


def images(samples: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, samples)
    x = rng.random((samples, 28, 28, 1), dtype="float32") * 0.2
    x[np.arange(samples), 2 + y * 2, 4:24, 0] += 0.8  # a bright row whose height is the class: learnable
    return x, y


def train_on(device: str, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int) -> dict[str, float]:
    keras.utils.set_random_seed(1)
    with tf.device(device):
        model = build_model(STARTERS["convnet"].graph())
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                      steps_per_execution=8)
        times: list[float] = []
        timer = keras.callbacks.LambdaCallback(on_epoch_begin=lambda *_: times.append(time.perf_counter()),
                                               on_epoch_end=lambda *_: times.append(time.perf_counter()))
        history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[timer])
    durations = [end - start for start, end in zip(times[::2], times[1::2])]
    steady = durations[1:] or durations
    return {"first_epoch_s": round(durations[0], 3), "steady_epoch_s": round(sum(steady) / len(steady), 3),
            "samples_per_s": round(len(x) / (sum(steady) / len(steady)), 1),
            "accuracy": round(float(history.history["accuracy"][-1]), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    x, y = images(args.samples)
    gpu_name, _ = training_device("auto")
    results: dict[str, object] = {"samples": args.samples, "epochs": args.epochs, "batch_size": args.batch_size,
                                  "cpu": train_on("/CPU:0", x, y, args.epochs, args.batch_size)}
    print(f"CPU: {results['cpu']}")
    if gpu_name.startswith("GPU"):
        results["gpu"] = train_on("/GPU:0", x, y, args.epochs, args.batch_size)
        results["gpu_name"] = gpu_name
        results["gpu_speedup"] = round(results["cpu"]["steady_epoch_s"] / results["gpu"]["steady_epoch_s"], 2)  # type: ignore[index]
        print(f"{gpu_name}: {results['gpu']} — {results['gpu_speedup']}x the CPU's steady epochs")
    else:
        print("No GPU: TensorFlow sees none here (the CPU build, or no NVIDIA driver).")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
