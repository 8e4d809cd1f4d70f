"""Keras' summary of a graph, from a warm worker that has imported Keras already.

An edit then pays a model build (tens of milliseconds), not TensorFlow's start-up
(seconds). Answers are cached by graph, so undo and reselecting cost nothing.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app.core.errors import Unavailable, UserError
from app.core.graph import Graph
from app.jobs.warm_worker import WarmWorker


class Inspector(WarmWorker):
    def __init__(self, timeout: float = 60.0, cache_size: int = 512):
        super().__init__("inspector", timeout=timeout, preload_keras=True)
        self._cache: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._cache_size = cache_size
        self._building: dict[str, threading.Lock] = {}
        self._prefetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="layerlab-prefetch")

    def _key_lock(self, key: str) -> threading.Lock:
        with self._cache_lock:
            lock = self._building.get(key)
            if lock is None:
                lock = self._building[key] = threading.Lock()
                if len(self._building) > self._cache_size:
                    self._building.pop(next(iter(self._building)))
            return lock

    def prefetch(self, graph: Graph) -> None:
        """Start building the summary of a just-edited graph, so that the request for it finds it ready."""
        self._prefetcher.submit(self._summarize_quietly, graph)

    def _summarize_quietly(self, graph: Graph) -> None:
        try:
            self.summarize(graph)
        except UserError:
            pass  # the request that wants the summary will report it

    def stop(self) -> None:
        self._prefetcher.shutdown(wait=False, cancel_futures=True)
        super().stop()

    def summarize(self, graph: Graph, with_text: bool = False) -> dict[str, Any]:
        """Keras' summary of a graph that passed validation.

        Raises UserError at the layer Keras refuses, or Unavailable when the worker cannot answer.
        """
        payload = {"graph": graph.model_dump(mode="json"), "with_text": with_text}
        key = json.dumps(payload, sort_keys=True)
        with self._key_lock(key):  # a request arriving during its prefetch waits for that answer
            with self._cache_lock:
                cached = self._cache.get(key)
                if cached is not None:
                    self._cache.move_to_end(key)
            if cached is None:
                try:
                    cached = ("ok", self.call("summarize", payload))
                except Unavailable:
                    raise  # not cached: the next request tries again
                except UserError as exc:
                    cached = ("refused", exc.to_wire())
                with self._cache_lock:
                    self._cache[key] = cached
                    if len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
        status, body = cached
        if status == "refused":
            raise UserError.from_wire(body)
        return body
