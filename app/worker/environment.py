"""What every worker process sets before it imports TensorFlow. A leaf module: it imports nothing of ours."""

from __future__ import annotations

import gc
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


def keep_imports_out_of_collections() -> None:
    """Called once TensorFlow is imported: the garbage collector leaves the objects that exist now (the
    imports' hundreds of thousands, alive as long as the process) out of every later collection. Clearing
    Keras' session between runs then takes milliseconds instead of a few tenths of a second."""
    gc.freeze()
