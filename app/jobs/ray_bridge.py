"""The Ray executor as the web server uses it: `RayExecutor` (app.jobs.ray_executor) run in a process of its own.

A Ray driver whose cluster is lost ends its own process about a minute later (Ray gives up on its head and
exits). Kept in a child process, that ends the bridge, not the web server: the server fails the runs that were
training with the reason, keeps answering, and starts a fresh bridge for the next run, which reaches the cluster
again once it is back. Messages over the pipe: to the child ("warm_up",), ("submit", run_id, request),
("cancel", run_id), ("kill", run_id), ("shutdown",); from it ("ready",) or ("unavailable", why) once, then
("event", run_id, event).
"""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

from app.core.runs import RunState
from app.jobs.executor import EventSink, deliver
from app.jobs.ray_executor import RayExecutor, RayUnavailable, not_started, probe

START_TIMEOUT_S = 120.0  # connecting to a cluster, or starting a local Ray instance, takes seconds
SHUTDOWN_GRACE_S = 15.0


def serve(conn: Any, options: dict[str, Any]) -> None:
    """The bridge process: a RayExecutor driven by the messages on `conn`, its events sent back on it."""
    sending = threading.Lock()

    def send_event(run_id: int, event: dict[str, Any]) -> None:
        with sending:
            conn.send(("event", run_id, event))

    try:
        executor = RayExecutor(send_event, **options)
    except RayUnavailable as error:
        conn.send(("unavailable", str(error)))
        return
    conn.send(("ready",))
    while True:
        try:
            operation, *arguments = conn.recv()
        except (EOFError, OSError):
            break  # the server went away
        if operation == "shutdown":
            break
        getattr(executor, operation)(*arguments)
    executor.shutdown()


class _Bridge:
    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Any):
        self.process, self.conn = process, conn
        self.sending = threading.Lock()
        self.runs: set[int] = set()  # handed to this bridge, not yet finished

    def send(self, *message: Any) -> bool:
        try:
            with self.sending:
                self.conn.send(message)
            return True
        except (BrokenPipeError, EOFError, OSError):
            return False


class RayBridge:
    """The `Executor` the server talks to in ray mode; `options` are RayExecutor's (address, CPUs per run...)."""

    def __init__(self, on_event: EventSink, options: dict[str, Any]):
        self._on_event = on_event
        self._options = options
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._runs: set[int] = set()   # submitted, not yet finished (a run being handed over is in no bridge yet)
        self._closed = False
        self._bridge: _Bridge | None = self._start()  # refuses a cluster it cannot reach, at once

    def _start(self) -> _Bridge:
        address = self._options.get("address", "")
        parent, child = self._context.Pipe()
        process = self._context.Process(target=serve, args=(child, self._options), name="layerlab-ray", daemon=True)
        process.start()
        child.close()
        if not parent.poll(START_TIMEOUT_S):
            process.kill()
            raise not_started(address, f"no answer within {START_TIMEOUT_S:.0f} s")
        try:
            first = parent.recv()
        except (EOFError, OSError) as error:
            raise not_started(address, f"the process connecting to Ray stopped (exit code {process.exitcode})") \
                from error
        if first[0] == "unavailable":
            process.join(timeout=SHUTDOWN_GRACE_S)
            raise RayUnavailable(first[1])
        bridge = _Bridge(process, parent)
        threading.Thread(target=self._read, args=(bridge,), daemon=True, name="layerlab-ray-events").start()
        return bridge

    def _read(self, bridge: _Bridge) -> None:
        """Hand the bridge's events on; when it ends, fail the runs it was training, with the reason."""
        while True:
            try:
                _, run_id, event = bridge.conn.recv()
            except (EOFError, OSError):
                break
            if event.get("type") == "finished":
                with self._lock:
                    self._runs.discard(run_id)
                    bridge.runs.discard(run_id)
            deliver(self._on_event, run_id, event)
        bridge.process.join(timeout=SHUTDOWN_GRACE_S)
        with self._lock:
            if self._bridge is bridge:
                self._bridge = None
            lost = set() if self._closed else set(bridge.runs)  # a fresh bridge's runs are not this one's
            self._runs -= lost
        for run_id in sorted(lost):
            deliver(self._on_event, run_id, {"type": "finished", "state": RunState.FAILED, "reason": (
                "LayerLab lost its connection to the Ray cluster while this run trained (its head stopped "
                "answering). Its epochs up to the last one saved on the server are kept: resume it once the "
                "cluster is back.")})

    def _live_bridge(self) -> _Bridge:
        """The bridge, started afresh when the last one ended (the cluster may be back); RayUnavailable if not."""
        with self._lock:
            bridge = self._bridge
        if bridge is not None and bridge.process.is_alive():
            try:
                probe(self._options.get("address", ""))  # a lost head: say so now, not after Ray's minute of retries
            except RayUnavailable:
                bridge.process.kill()  # its runs fail with the reason; the next run starts a fresh bridge
                raise
            return bridge
        bridge = self._start()
        with self._lock:
            self._bridge = bridge
        return bridge

    # --- the Executor interface ------------------------------------------------------------------

    def warm_up(self) -> None:
        with self._lock:
            bridge = self._bridge
        if bridge is not None:
            bridge.send("warm_up")

    def submit(self, run_id: int, request: dict[str, Any]) -> None:
        with self._lock:
            self._runs.add(run_id)
        try:
            bridge = self._live_bridge()
        except RayUnavailable as error:
            self._refuse(run_id, str(error))
            return
        with self._lock:
            bridge.runs.add(run_id)
        if not bridge.send("submit", run_id, request):
            bridge.process.kill()  # the next run starts a fresh bridge
            self._refuse(run_id, "the process connecting to Ray has stopped.")

    def _refuse(self, run_id: int, why: str) -> None:
        """Fail a run that could not be handed to Ray, from another thread: the scheduler is submitting it."""
        with self._lock:
            waiting = run_id in self._runs  # not failed already by the end of the bridge it was handed to
            self._runs.discard(run_id)
            if self._bridge is not None:
                self._bridge.runs.discard(run_id)
        if not waiting:
            return
        event = {"type": "finished", "state": RunState.FAILED,
                 "reason": f"The run could not start on Ray: {why} Start it again once the cluster is back."}
        threading.Thread(target=deliver, args=(self._on_event, run_id, event), daemon=True).start()

    def cancel(self, run_id: int) -> None:
        self._tell("cancel", run_id)

    def kill(self, run_id: int) -> None:
        """Used by tests: end a run's actor at once, as a lost node would."""
        self._tell("kill", run_id)

    def _tell(self, operation: str, run_id: int) -> None:
        with self._lock:
            bridge = self._bridge if self._bridge is not None and run_id in self._bridge.runs else None
        if bridge is not None:
            bridge.send(operation, run_id)

    def running(self) -> set[int]:
        with self._lock:
            return set(self._runs)

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            bridge = self._bridge
        if bridge is None:
            return
        bridge.send("shutdown")
        bridge.process.join(timeout=SHUTDOWN_GRACE_S)
        if bridge.process.is_alive():
            bridge.process.kill()
