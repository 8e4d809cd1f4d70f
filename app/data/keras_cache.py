"""Whether MNIST and Fashion-MNIST can be had now: cached on this server, or downloadable.

Pure Python and quick, so the web process can mark the dataset list and refuse a dataset
that cannot be fetched within a few seconds, without waiting for the data worker (which
may be busy preparing someone else's upload). The download itself happens in the worker
(`keras_datasets`).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
KERAS_DATASETS = ("mnist", "fashion_mnist")
CONNECT_DEADLINE_S = 3.0  # time allowed to reach the mirror (name lookup included) before giving up
# A failed probe is remembered this long, so that a room without internet is told at once
# and the dataset list can say so, instead of every choice waiting for the deadline again.
UNREACHABLE_MEMORY_S = 60.0

_failures: dict[str, tuple[float, str]] = {}  # mirror -> (when, why) of its last failed probe
_lock = threading.Lock()


def cache_file(name: str, cache_dir: Path) -> Path:
    return Path(cache_dir) / f"{name}.npz"


def is_cached(name: str, cache_dir: Path) -> bool:
    return cache_file(name, cache_dir).exists()


def recent_mirror_failure(mirror: str = ORIGIN) -> str | None:
    """Why the mirror could not be reached, if a probe failed in the last minute."""
    with _lock:
        failure = _failures.get(mirror)
    if failure and time.monotonic() - failure[0] < UNREACHABLE_MEMORY_S:
        return failure[1]
    return None


def probe_mirror(mirror: str = ORIGIN, deadline_s: float = CONNECT_DEADLINE_S) -> str | None:
    """None when the mirror accepts a connection within the deadline, else the reason it did not.

    The name lookup runs in a daemon thread: a resolver that hangs is not covered by any
    socket timeout, and must not hold the request past the deadline.
    """
    remembered = recent_mirror_failure(mirror)
    if remembered:
        return remembered
    address = urlsplit(mirror)
    host = address.hostname or ""
    port = address.port or (443 if address.scheme == "https" else 80)
    outcome: dict[str, object] = {}

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=deadline_s):
                outcome["ok"] = True
        except OSError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=connect, name="mirror probe", daemon=True)
    worker.start()
    worker.join(deadline_s)
    if outcome.get("ok"):
        return None
    error = outcome.get("error")
    reason = f"no answer from {host} within {deadline_s:g} s" if error is None else f"{host}: {_reason(error)}"
    with _lock:
        _failures[mirror] = (time.monotonic(), reason)
    return reason


def forget_mirror_failures() -> None:
    with _lock:
        _failures.clear()


def _reason(error: object) -> str:
    text = str(getattr(error, "strerror", None) or error) or type(error).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def how_to_get(name: str) -> str:
    # The server's folders are not named: the message may be shown to any participant.
    return (f"Upload {name} as an NPZ dataset (arrays x_train, y_train, x_test, y_test), or use the "
            f"LayerLab Docker image, whose build caches MNIST and Fashion-MNIST. An administrator can "
            f"also fill the server's dataset cache with `python -m app.data.cache_keras_datasets "
            f"<cache folder>` on a machine with internet.")
