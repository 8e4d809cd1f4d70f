"""MNIST and Fashion-MNIST: read from a cache folder, or fetched once from Keras' mirror.

The cache holds one `<name>.npz` per dataset (x_train, y_train, x_test, y_test as uint8),
the form `keras.datasets.mnist` downloads. The Docker image fills it at build time
(`cache_keras_datasets.py`), so a workshop room needs no internet.

Downloads use urllib directly rather than `keras.utils.get_file`: importing Keras costs
seconds that a worker preparing data need not pay, and `get_file` can only be bounded by
`socket.setdefaulttimeout`, a process-wide setting that would also cut the worker's other
connections short. Here each download has its own deadline for the first response
(DNS included, which no socket timeout covers) and a timeout on every read.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tempfile
import threading
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import Unavailable
from app.data.keras_cache import CONNECT_DEADLINE_S, KERAS_DATASETS, ORIGIN, cache_file, how_to_get

READ_TIMEOUT_S = 3.0       # time allowed between two chunks of a download once it flows
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
FASHION_FILES = {  # array name -> (file on the mirror, header bytes before the data)
    "y_train": ("train-labels-idx1-ubyte.gz", 8),
    "x_train": ("train-images-idx3-ubyte.gz", 16),
    "y_test": ("t10k-labels-idx1-ubyte.gz", 8),
    "x_test": ("t10k-images-idx3-ubyte.gz", 16),
}
EXPECTED_SIZES = {"x_train": 60000, "x_test": 10000}


def load_keras_dataset(name: str, cache_dir: Path, mirror: str | None = None) -> dict[str, np.ndarray]:
    """Return x_train, y_train, x_test, y_test (uint8; x as (n, 28, 28)) from the cache.

    When the file is missing, try the mirror once; when that fails, raise Unavailable
    within a few seconds with a message that says what to do.
    """
    path = cache_file(name, cache_dir)
    if not path.exists():
        try:
            download_keras_dataset(name, cache_dir, mirror=mirror)
        except OSError as exc:  # URLError, timeouts, refused connections, a full disk
            raise Unavailable(
                f"{name} is not cached on this server and could not be downloaded ({_reason(exc)}). "
                + how_to_get(name)) from None
    return _read_cached(name, path)


def _reason(exc: OSError) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason) or type(reason).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _read_cached(name: str, path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise Unavailable(f"The cached {path.name} cannot be read ({exc}); delete it and try again. "
                                 + how_to_get(name)) from None
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != (28, 28) or y.shape != (len(x),):
            raise Unavailable(
                f"The cached {path.name} holds x_{split} of shape {x.shape} and y_{split} of shape {y.shape}; "
                f"expected (n, 28, 28) images and n labels. Delete it and try again.")
    return arrays


def download_keras_dataset(name: str, cache_dir: Path, *, mirror: str | None = None,
                           read_timeout: float = READ_TIMEOUT_S,
                           connect_deadline: float = CONNECT_DEADLINE_S) -> Path:
    """Fetch `name` into `cache_dir/<name>.npz`; the file appears only once it is complete."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    origin = mirror or ORIGIN
    if name == "mnist":
        raw = _fetch(origin + "mnist.npz", read_timeout, connect_deadline)
        if hashlib.sha256(raw).hexdigest() != MNIST_SHA256:
            raise OSError("the downloaded mnist.npz does not match its published checksum")
        _write_atomically(cache_file(name, cache_dir), raw)
    elif name == "fashion_mnist":
        arrays = {key: _idx_array(_fetch(origin + file, read_timeout, connect_deadline), offset)
                  for key, (file, offset) in FASHION_FILES.items()}
        for key in ("x_train", "x_test"):
            if arrays[key].size != EXPECTED_SIZES[key] * 28 * 28:
                raise OSError(f"the downloaded {key} holds {arrays[key].size} bytes, not "
                              f"{EXPECTED_SIZES[key]} images of 28x28")
            arrays[key] = arrays[key].reshape(-1, 28, 28)
        _write_atomically(cache_file(name, cache_dir), _npz_bytes(arrays))
    else:
        raise ValueError(f"{name!r} is not one of {KERAS_DATASETS}")
    return cache_file(name, cache_dir)


def _idx_array(gz_bytes: bytes, offset: int) -> np.ndarray:
    try:
        return np.frombuffer(gzip.decompress(gz_bytes), np.uint8, offset=offset)
    except (OSError, EOFError, ValueError) as exc:
        raise OSError(f"a downloaded Fashion-MNIST file is damaged ({exc})") from None


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds poorly
    return buffer.getvalue()


def _write_atomically(path: Path, data: bytes) -> None:
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a cache built by root is read by the server's own user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fetch(url: str, read_timeout: float, connect_deadline: float) -> bytes:
    """Download `url` into memory; the files are at most tens of MB.

    The request runs in a daemon thread so that a name lookup that hangs (which no
    socket timeout covers) cannot hold the caller past `connect_deadline`.
    """
    outcome: dict[str, Any] = {}
    responded = threading.Event()
    finished = threading.Event()

    def run() -> None:
        try:
            with urllib.request.urlopen(url, timeout=read_timeout) as response:
                responded.set()
                outcome["data"] = response.read()
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc
        finally:
            responded.set()
            finished.set()

    threading.Thread(target=run, name=f"download {url.rsplit('/', 1)[-1]}", daemon=True).start()
    if not responded.wait(connect_deadline):
        raise TimeoutError(f"no answer from {url} within {connect_deadline:g} s")
    finished.wait()  # bounded: each read times out after read_timeout once the transfer stalls
    if "error" in outcome:
        error = outcome["error"]
        raise error if isinstance(error, OSError) else OSError(str(error))
    return outcome["data"]
