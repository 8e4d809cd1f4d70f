"""Which device a training worker trains on, in words, from what TensorFlow sees in this process."""

from __future__ import annotations

import tensorflow as tf


def training_device(setting: str) -> tuple[str, str | None]:
    """The device runs train on ("GPU 0 (NVIDIA H200)", "CPU"), and, when the setting cannot be met, why."""
    gpus = tf.config.list_physical_devices("GPU") if setting != "cpu" else []
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        name = details.get("device_name")
        return (f"GPU 0 ({name})" if name else "GPU 0"), None
    if setting == "gpu":
        return "CPU", ("LAYERLAB_DEVICE is gpu, but TensorFlow sees no GPU in the training worker. Install "
                       "TensorFlow's GPU build (LAYERLAB_TF=gpu scripts/install-image.sh) on a machine with an "
                       "NVIDIA driver, or set LAYERLAB_DEVICE=auto to train on the CPU.")
    return "CPU", None
