"""Which device a training worker trains on, in words, from what TensorFlow sees in this process."""

from __future__ import annotations

import tensorflow as tf


def training_device(setting: str, placed_on: str | None = None) -> tuple[str, str | None]:
    """The device runs train on ("GPU 2 (NVIDIA H200)", "CPU"), and, when the setting cannot be met, why.
    `placed_on` is the machine's index of the one GPU this process was given: TensorFlow numbers it 0."""
    gpus = tf.config.list_physical_devices("GPU") if setting != "cpu" else []
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        name, index = details.get("device_name"), placed_on or "0"
        return (f"GPU {index} ({name})" if name else f"GPU {index}"), None
    if setting == "gpu":
        return "CPU", ("LAYERLAB_DEVICE is gpu, but TensorFlow sees no GPU in the training worker. Install "
                       "TensorFlow's GPU build (LAYERLAB_TF=gpu scripts/install-image.sh) on a machine with an "
                       "NVIDIA driver, or set LAYERLAB_DEVICE=auto to train on the CPU.")
    return "CPU", None
