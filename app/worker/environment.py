"""What every worker process sets before it imports TensorFlow. A leaf module: it imports nothing of ours."""

from __future__ import annotations

import os


def quiet_tensorflow() -> None:
    """Keras on TensorFlow, without its start-up chatter, on the CPU."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
