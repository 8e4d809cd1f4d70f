"""What every worker process sets before it imports TensorFlow. A leaf module: it imports nothing of ours."""

from __future__ import annotations

import os


def quiet_tensorflow(device: str = "cpu") -> None:
    """Keras on TensorFlow, without its start-up chatter; on the CPU unless `device` (the setting
    LAYERLAB_DEVICE) lets it use a GPU. A GPU's memory is then taken as needed, not all at once, so that
    several workers can share one."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if device == "cpu":
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    else:
        os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
