"""A warm worker process that builds models with Keras for the live summary.

The web process never imports TensorFlow. It keeps one spawned worker that has
imported Keras already, so an edit pays a build (tens of milliseconds), not
TensorFlow's start-up (seconds). Requests are serialized over a pipe; a worker
that dies or hangs is replaced, and the caller gets a clear error instead.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import threading
import time
from collections import OrderedDict
from typing import Any

from app.core.graph import Graph
from app.worker.service import serve

log = logging.getLogger(__name__)


class InspectorUnavailable(Exception):
    """The worker could not answer (still starting, crashed or timed out)."""


class LayerRefused(Exception):
    """Keras refused a layer; carries the layer id and the explanation."""

    def __init__(self, layer_id: str, message: str):
        super().__init__(message)
        self.layer_id = layer_id
        self.message = message


class Inspector:
    def __init__(self, timeout: float = 60.0, cache_size: int = 512):
        self.timeout = timeout
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Any = None
        self._ready = False
        self._cache: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        self._cache_size = cache_size

    def start(self) -> None:
        """Spawn the worker without waiting for it; the first request waits."""
        with self._lock:
            self._spawn()

    def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(target=serve, args=(child,), name="layerlab-inspector",
                                        daemon=True)
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

    def summarize(self, graph: Graph, with_text: bool = False) -> dict[str, Any]:
        """Keras' summary of a graph that passed validation; raises LayerRefused for a bad layer."""
        payload = {"graph": graph.model_dump(mode="json"), "with_text": with_text}
        key = json.dumps(payload, sort_keys=True)
        with self._lock:
            cached = self._cache.get(key)
            if cached is None:
                cached = self._request(("summarize", payload))
                self._cache[key] = cached
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(key)
        kind, body = cached
        if kind == "layer_error":
            raise LayerRefused(body["layer_id"], body["message"])
        return body

    def _request(self, message: tuple[str, Any]) -> tuple[str, Any]:
        # A worker found dead (killed, out of memory) is replaced and asked once more;
        # one that hangs past the deadline is replaced and the caller is told.
        for attempt in (1, 2):
            if self._process is None or not self._process.is_alive():
                self._kill()
                self._spawn()
            deadline = time.monotonic() + self.timeout
            try:
                if not self._ready:
                    self._receive(deadline)  # the worker's "ready" after importing Keras
                    self._ready = True
                self._conn.send(message)
                kind, body = self._receive(deadline)
                break
            except TimeoutError as exc:  # before OSError, its base class
                log.warning("inspector worker did not answer in %.0f s; restarting it", self.timeout)
                self._kill()
                self._spawn()
                raise InspectorUnavailable(
                    "The worker that builds models with Keras did not answer in time; it has been "
                    "restarted. Try the edit again in a few seconds.") from exc
            except (EOFError, OSError) as exc:
                log.warning("inspector worker died (%s); starting a new one", exc)
                self._kill()
                if attempt == 2:
                    raise InspectorUnavailable("The worker that builds models with Keras keeps failing; "
                                               "try again in a few seconds.") from exc
        if kind == "error":
            raise InspectorUnavailable(f"Keras failed while building this model: {body['message']}")
        return kind, body

    def _receive(self, deadline: float) -> tuple[str, Any]:
        while not self._conn.poll(0.05):
            if time.monotonic() > deadline:
                raise TimeoutError("no answer before the deadline")
            if self._process is None or not self._process.is_alive():
                raise EOFError("the worker exited")
        return self._conn.recv()
