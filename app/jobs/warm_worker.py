"""A long-lived spawned worker process answering requests over a pipe.

The web process never imports TensorFlow or decodes uploads itself; it asks a
warm worker. Requests are serialized; a worker that dies is replaced and asked
once more, and one that hangs past the deadline is replaced and the caller told.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from typing import Any

from app.core.errors import Unavailable, UserError
from app.worker.service import serve

log = logging.getLogger(__name__)

class WarmWorker:
    def __init__(self, name: str, timeout: float = 60.0, preload_keras: bool = False):
        self.name = name
        self.timeout = timeout
        self.preload_keras = preload_keras
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Any = None
        self._ready = False

    def start(self) -> None:
        """Spawn the worker without waiting for it; the first request waits."""
        with self._lock:
            if self._process is None:
                self._spawn()

    def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(target=serve, args=(child, self.preload_keras),
                                        name=f"layerlab-{self.name}", daemon=True)
        self._process.start()
        child.close()
        self._conn, self._ready = parent, False

    def _kill(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5)
        self._process, self._conn, self._ready = None, None, False

    def stop(self) -> None:
        with self._lock:
            if self._conn is not None and self._process is not None and self._process.is_alive():
                try:
                    self._conn.send(("stop", None))
                    self._process.join(timeout=3)
                except (BrokenPipeError, OSError):
                    pass
            self._kill()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def call(self, kind: str, payload: Any, timeout: float | None = None) -> Any:
        """Send one request and return the answer.

        Raises the worker's UserError as it was raised there (a bad layer, a bad file), or
        Unavailable when the worker crashed, hung or failed unexpectedly.
        """
        with self._lock:
            status, body = self._request((kind, payload), timeout or self.timeout)
        if status == "refused":
            raise UserError.from_wire(body)
        if status == "error":
            log.error("%s worker failed on %s: %s", self.name, kind, body["message"])
            raise Unavailable(f"The {self.name} worker failed on this request ({body['message'][:200]}).")
        return body

    def _request(self, message: tuple[str, Any], timeout: float) -> tuple[str, Any]:
        for attempt in (1, 2):
            if self._process is None or not self._process.is_alive():
                self._kill()
                self._spawn()
            deadline = time.monotonic() + timeout
            try:
                if not self._ready:
                    self._receive(deadline)  # the worker's "ready" once it has started
                    self._ready = True
                self._conn.send(message)
                return self._receive(deadline)
            except TimeoutError as exc:  # before OSError, its base class
                log.warning("%s worker did not answer in %.0f s; restarting it", self.name, timeout)
                self._kill()
                self._spawn()
                raise Unavailable(
                    f"The {self.name} worker did not answer in time; it has been restarted. "
                    "Try again in a few seconds.") from exc
            except (EOFError, OSError) as exc:
                log.warning("%s worker died (%s); starting a new one", self.name, exc)
                self._kill()
                if attempt == 2:
                    raise Unavailable(f"The {self.name} worker keeps failing; try again in a "
                                            "few seconds.") from exc
        raise AssertionError("unreachable")

    def _receive(self, deadline: float) -> tuple[str, Any]:
        while not self._conn.poll(0.05):
            if time.monotonic() > deadline:
                raise TimeoutError("no answer before the deadline")
            if self._process is None or not self._process.is_alive():
                raise EOFError("the worker exited")
        return self._conn.recv()
