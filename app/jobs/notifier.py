"""Wakes the event streams of a run when the scheduler records something new.

The scheduler runs in executor threads; streams wait in the event loop. Each
waiter is an asyncio.Event set through the loop, so no stream polls in a tight loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict


class RunNotifier:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[int, set[asyncio.Event]] = defaultdict(set)
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self, run_id: int) -> asyncio.Event:
        event = asyncio.Event()
        with self._lock:
            self._waiters[run_id].add(event)
        return event

    def unsubscribe(self, run_id: int, event: asyncio.Event) -> None:
        with self._lock:
            waiters = self._waiters.get(run_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[run_id]

    def open_streams(self) -> int:
        with self._lock:
            return sum(len(w) for w in self._waiters.values())

    def notify(self, run_id: int) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with self._lock:
            waiters = list(self._waiters.get(run_id, ()))
        for event in waiters:
            loop.call_soon_threadsafe(event.set)
