"""The event hub: streams get each run's events without the database, and a slow one never holds up others."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

from app.jobs.event_hub import QUEUE_LIMIT, RunEventHub, StreamEvent


def run_in_own_loop(scenario) -> None:
    """A loop of its own in a thread: the browser tests' Playwright keeps one running in the main thread."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result()


def test_events_reach_every_stream_of_their_run_only():
    async def scenario():
        hub = RunEventHub()
        hub.bind(asyncio.get_running_loop())
        a, b, other = hub.subscribe(1, "alice"), hub.subscribe(1, "bob"), hub.subscribe(2, "alice")
        hub.publish(1, [StreamEvent(10, "epoch", "{}"), StreamEvent(11, "state", "{}")])
        await asyncio.sleep(0)
        assert [a.queue.get_nowait().id for _ in range(2)] == [10, 11]
        assert b.queue.qsize() == 2 and other.queue.empty()
        assert (hub.open_streams(), hub.open_streams("alice")) == (3, 2)
        for subscription in (a, b, other):
            hub.unsubscribe(subscription)
        assert hub.open_streams() == 0

    run_in_own_loop(scenario)


def test_a_stream_that_falls_behind_is_ended_and_the_others_keep_up():
    async def scenario():
        hub = RunEventHub()
        hub.bind(asyncio.get_running_loop())
        slow, fast = hub.subscribe(1, "slow"), hub.subscribe(1, "fast")
        received = []
        for n in range(QUEUE_LIMIT + 5):
            hub.publish(1, [StreamEvent(n + 1, "batch", "{}")])
            await asyncio.sleep(0)
            received.append(fast.queue.get_nowait().id)  # the fast reader takes each as it comes
        assert received == list(range(1, QUEUE_LIMIT + 6))
        assert slow.overflowed and slow.queue.qsize() == 1  # its backlog dropped: it reconnects instead

    run_in_own_loop(scenario)
