"""Which GPU a local training process may use: runs are spread one per GPU, each process seeing only its own.

The web process never imports TensorFlow, so it learns the machine's GPUs from the NVIDIA driver's list in /proc
(or from CUDA_VISIBLE_DEVICES when the server itself was limited to some GPUs). A training process is given its
GPU when it starts and keeps it for its life: CUDA fixes the devices a process sees when TensorFlow loads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")  # one folder per GPU the driver sees


def local_gpus(setting: str, device: str, environ: Mapping[str, str] = os.environ,
               driver_gpus: Path = NVIDIA_GPUS) -> list[str]:
    """The GPUs (CUDA indices) to place runs on, from LAYERLAB_GPUS: none when training is on the CPU or the
    setting is `none`; the listed ones; or, for `auto`, those CUDA_VISIBLE_DEVICES names, else every GPU the
    driver lists."""
    if device == "cpu" or setting == "none":
        return []
    if setting != "auto":
        return [gpu.strip() for gpu in setting.split(",")]
    if "CUDA_VISIBLE_DEVICES" in environ:
        return [gpu.strip() for gpu in environ["CUDA_VISIBLE_DEVICES"].split(",") if gpu.strip()]
    count = sum(1 for _ in driver_gpus.iterdir()) if driver_gpus.is_dir() else 0
    return [str(index) for index in range(count)]


def least_busy(gpus: list[str], in_use: Iterable[str | None]) -> str | None:
    """The GPU running the fewest runs (the first listed among equals), or None when there are no GPUs."""
    if not gpus:
        return None
    taken = list(in_use)
    return min(gpus, key=taken.count)
