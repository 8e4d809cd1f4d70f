"""Hands each run's new events to the streams that follow it, without the database.

The scheduler records events in the database (so that a reconnecting stream can read
what it missed) and then publishes the same rows here. A stream subscribes, reads its
backlog once, and from then on waits on its own in-memory queue: while it waits it
holds no database connection and no thread, so hundreds of open streams cost nothing.

A stream whose reader is slow never holds up the others: its queue is bounded, and when
it overflows the stream is told to end; the browser reconnects with `Last-Event-ID` and
reads what it missed from the database.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from dataclasses import dataclass, field

QUEUE_LIMIT = 1000  # events a stream may fall behind before it is ended (to reconnect)
ALL_RUNS = 0  # subscribe to this run id to hear of every run's events (the instructor's dashboard)


@dataclass(frozen=True)
class StreamEvent:
    id: int
    type: str
    data_json: str


@dataclass(eq=False)
class Subscription:
    run_id: int
    owner: str  # the session (workspace) that opened the stream, for the per-session cap
    queue: asyncio.Queue[StreamEvent] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    overflowed: bool = False

    def _offer(self, event: StreamEvent) -> None:
        """Runs in the event loop."""
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self.queue = asyncio.Queue(1)  # drop the backlog; the stream ends at its next read
            self.queue.put_nowait(StreamEvent(0, "", ""))


class RunEventHub:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscriptions: dict[int, set[Subscription]] = defaultdict(set)
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self, run_id: int, owner: str) -> Subscription:
        subscription = Subscription(run_id, owner)
        with self._lock:
            self._subscriptions[run_id].add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            subscriptions = self._subscriptions.get(subscription.run_id)
            if subscriptions is not None:
                subscriptions.discard(subscription)
                if not subscriptions:
                    del self._subscriptions[subscription.run_id]

    def open_streams(self, owner: str | None = None) -> int:
        with self._lock:
            return sum(1 for subscriptions in self._subscriptions.values() for s in subscriptions
                       if owner is None or s.owner == owner)

    def announce(self, kind: str) -> None:
        """Tell the streams that follow every run that something else changed (someone joined, a score came)."""
        self.publish(ALL_RUNS, [StreamEvent(0, kind, "{}")])

    def publish(self, run_id: int, events: list[StreamEvent]) -> None:
        """Called from any thread once the events are committed."""
        loop = self._loop
        if loop is None or loop.is_closed() or not events:
            return
        with self._lock:
            subscriptions = list(self._subscriptions.get(run_id, set()) | self._subscriptions.get(ALL_RUNS, set()))
        if subscriptions:
            loop.call_soon_threadsafe(_deliver, subscriptions, events)


def _deliver(subscriptions: list[Subscription], events: list[StreamEvent]) -> None:
    """Runs in the event loop: one call per publish, whatever the number of streams."""
    for subscription in subscriptions:
        for event in events:
            subscription._offer(event)
