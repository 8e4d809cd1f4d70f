"""Executors run training jobs somewhere and report their events back.

The scheduler talks to the `Executor` interface only, so a cluster executor (Ray)
can replace the local one by configuration. The local executor gives each run its
own spawned process (spawn, not fork: TensorFlow does not survive a fork).
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any, Protocol

import psutil

from app.core.runs import RunState
from app.jobs.gpu_placement import least_busy
from app.worker.runner import run_job

log = logging.getLogger(__name__)

EventSink = Callable[[int, dict[str, Any]], None]
WATCH_INTERVAL_S = 0.5  # how often a running process's memory and silence are checked
STARTUP_ALLOWANCE_S = 180.0  # silence allowed before the first event: a cold process imports TensorFlow
# A process serves runs one after another (importing TensorFlow costs more than a small run), up to
# this many, and while it stays below this size; then a fresh one takes over.
MAX_RUNS_PER_PROCESS = 25
REUSE_BELOW_MB = 1500
STOP_GRACE_SECONDS = 10.0  # a worker that ignores a stop this long is killed


def deliver(sink: EventSink, run_id: int, event: dict[str, Any]) -> None:
    """Hand an event to the scheduler; a recording problem is logged, and never stops the thread reading a run."""
    try:
        sink(run_id, event)
    except Exception:
        log.exception("could not record event %s of run %s", event.get("type"), run_id)


class Executor(Protocol):
    def warm_up(self) -> None: ...  # a hint: a run is likely soon
    def submit(self, run_id: int, request: dict[str, Any]) -> None: ...
    def cancel(self, run_id: int) -> None: ...
    def running(self) -> set[int]: ...
    def shutdown(self) -> None: ...


class _Worker:
    """A training process that has imported TensorFlow (or is importing it) and trains one run at a time."""

    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Any, stop: Any, gpu: str | None):
        self.process, self.conn, self.stop = process, conn, stop
        self.gpu = gpu  # the only GPU it sees, for its whole life; None: what the machine gives it
        self.runs = 0  # runs it has been given

    def reusable(self) -> bool:
        """Whether it may take another run: alive, not worn by many runs, not grown too big."""
        if not self.process.is_alive() or self.runs >= MAX_RUNS_PER_PROCESS:
            return False
        try:
            return psutil.Process(self.process.pid).memory_info().rss < REUSE_BELOW_MB * 2**20
        except (psutil.Error, ValueError):
            return False

    def retire(self) -> None:
        """Ask it to exit (it is idle); kill it if it cannot be asked."""
        try:
            self.conn.send(None)
            self.conn.close()
        except (BrokenPipeError, OSError):
            self.process.kill()


class _Job:
    def __init__(self, worker: _Worker):
        self.worker = worker
        self.process = worker.process
        self.stop = worker.stop
        self.finished = False


@dataclass(frozen=True)
class WorkerLimits:
    """What a training process may use before it is stopped, with the run failed and the reason given."""

    memory_mb: int = 4096          # resident memory of the process
    silence_s: float = 900.0       # time without any event (a process that hangs)


class LocalExecutor:
    """One spawned process per run; events come back over a pipe, read by one thread per run.

    With `warm_spares`, up to that many idle processes are kept ready with TensorFlow imported
    (started by `warm_up`, and by runs that end), so a run starts training at once instead of
    after seconds of imports. The thread that reads a
    run's events also watches its process: one that needs more memory than allowed, or says
    nothing for too long, is killed and its run failed with the reason, and nothing else is touched.

    With `gpus` (CUDA indices), each process sees one of them only, and a run goes to a process on the GPU
    running the fewest runs: one run per GPU while one is free (`app.jobs.gpu_placement`).
    """

    def __init__(self, on_event: EventSink, warm_spares: int = 1, limits: WorkerLimits = WorkerLimits(),
                 device: str = "cpu", gpus: list[str] | None = None):
        self._on_event = on_event
        self._device = device
        self._gpus = gpus or []
        self._limits = limits
        self._jobs: dict[int, _Job] = {}
        self._spares: list[_Worker] = []
        self._warm_spares = warm_spares
        self._closed = False
        self._lock = threading.Lock()
        self._context = multiprocessing.get_context("spawn")

    def _start_process(self, name: str, gpu: str | None) -> _Worker:
        parent, child = self._context.Pipe()
        stop = self._context.Event()
        process = self._context.Process(target=run_job, args=(child, stop, self._device, gpu), name=name,
                                        daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent, stop, gpu)

    def _least_busy_gpu(self, *, counting_spares: bool) -> str | None:
        """The GPU for the next process or run (None without GPUs); the caller holds the lock."""
        in_use = [job.worker.gpu for job in self._jobs.values()]
        if counting_spares:
            in_use += [spare.gpu for spare in self._spares]
        return least_busy(self._gpus, in_use)

    def warm_up(self) -> None:
        """Start the spare processes (in the background: spawning takes a moment)."""
        if not self._warm_spares:
            return

        def fill() -> None:
            with self._lock:
                missing = 0 if self._closed else self._warm_spares - len(self._spares)
            for _ in range(max(0, missing)):
                with self._lock:
                    gpu = self._least_busy_gpu(counting_spares=True)
                spare = self._start_process("layerlab-spare", gpu)
                with self._lock:
                    if self._closed:
                        spare.process.kill()
                    else:
                        self._spares.append(spare)
        threading.Thread(target=fill, daemon=True, name="layerlab-spares").start()

    def _take_spare(self, gpu: str | None) -> _Worker | None:
        """An idle process on `gpu` (dead ones are dropped); a spare on another GPU waits for a run there."""
        with self._lock:
            self._spares = [spare for spare in self._spares if spare.process.is_alive()]
            spare = next((spare for spare in self._spares if spare.gpu == gpu), None)
            if spare is not None:
                self._spares.remove(spare)
            return spare

    def submit(self, run_id: int, request: dict[str, Any]) -> None:
        with self._lock:
            gpu = self._least_busy_gpu(counting_spares=False)
        worker = self._take_spare(gpu) or self._start_process(f"layerlab-run-{run_id}", gpu)
        worker.stop.clear()  # a stop asked of its previous run is not this run's
        worker.runs += 1
        worker.conn.send(request)
        job = _Job(worker)
        with self._lock:
            self._jobs[run_id] = job
        threading.Thread(target=self._pump, args=(run_id, job, worker.conn), daemon=True,
                         name=f"layerlab-run-{run_id}-events").start()
        # No new spare now: importing TensorFlow would compete with this run for the CPU, and when the
        # run ends its process becomes the spare.

    def _pump(self, run_id: int, job: _Job, receiver: Any) -> None:
        """Hand the run's events on; when it ends, give its process back (or retire it); when the process
        dies, or breaks its limits, fail the run with the reason."""
        reason: str | None = None
        last_event: float | None = None  # until the first event the process may still be importing TensorFlow
        began = time.monotonic()
        while True:
            ready = wait([receiver, job.process.sentinel], timeout=WATCH_INTERVAL_S)
            if receiver in ready:
                try:
                    event = receiver.recv()
                except (EOFError, OSError):
                    break
                last_event = time.monotonic()
                if event.get("type") == "finished":
                    job.finished = True
                    with self._lock:
                        self._jobs.pop(run_id, None)
                    self._keep_or_retire(job.worker)  # before the news: the next run may take it
                self._deliver(run_id, event)
                if job.finished:
                    return
            elif ready and not receiver.poll():
                break
            elif not ready:
                reason = self._over_limits(job, time.monotonic() - (last_event or began),
                                           started=last_event is not None)
                if reason is not None:
                    job.process.kill()
                    break
        job.process.join(timeout=STOP_GRACE_SECONDS)
        receiver.close()
        with self._lock:
            self._jobs.pop(run_id, None)
        code = job.process.exitcode
        self._deliver(run_id, {"type": "finished", "state": RunState.FAILED, "reason": reason or (
            f"The training process stopped unexpectedly (exit code {code}): it was killed or ran "
            "out of memory. Its epochs up to the last saved one are kept; try a smaller batch size "
            "or model.")})

    def _keep_or_retire(self, worker: _Worker) -> None:
        """A worker whose run has ended becomes a spare again, unless enough are idle or it is worn."""
        with self._lock:
            keep = not self._closed and len(self._spares) < self._warm_spares and worker.reusable()
            if keep:
                self._spares.append(worker)
        if not keep:
            worker.retire()

    def _over_limits(self, job: _Job, silent_s: float, started: bool) -> str | None:
        """Why the run's process must be stopped now, or None while it keeps within its limits."""
        limits = self._limits
        try:
            resident_mb = psutil.Process(job.process.pid).memory_info().rss / 2**20
        except (psutil.Error, ValueError):
            resident_mb = 0.0
        if resident_mb > limits.memory_mb:
            return (f"The model needed more than {limits.memory_mb} MB of memory (LAYERLAB_WORKER_MEMORY_MB), "
                    "so its training process was stopped. Try a smaller batch size, fewer units or filters, "
                    "or pooling earlier in the network. Its epochs up to the last saved one are kept.")
        if silent_s > (limits.silence_s if started else max(limits.silence_s, STARTUP_ALLOWANCE_S)):
            return (f"The training process reported nothing for {silent_s:.0f} s "
                    f"(LAYERLAB_WORKER_SILENCE_S), so it was taken as hung and stopped. Its epochs up to "
                    "the last saved one are kept.")
        return None

    def _deliver(self, run_id: int, event: dict[str, Any]) -> None:
        deliver(self._on_event, run_id, event)

    def cancel(self, run_id: int) -> None:
        with self._lock:
            job = self._jobs.get(run_id)
        if job is None:
            return
        job.stop.set()

        def kill_if_still_running() -> None:
            if not job.finished and job.process.is_alive():
                log.warning("run %s ignored its stop; killing it", run_id)
                job.process.kill()

        timer = threading.Timer(STOP_GRACE_SECONDS, kill_if_still_running)
        timer.daemon = True
        timer.start()

    def running(self) -> set[int]:
        with self._lock:
            return set(self._jobs)

    def kill(self, run_id: int) -> None:
        """Used by tests and shutdown: end a run's process at once."""
        with self._lock:
            job = self._jobs.get(run_id)
        if job is not None and job.process.is_alive():
            job.process.kill()

    def spare_pids(self) -> list[int]:
        with self._lock:
            return [s.process.pid for s in self._spares if s.process.is_alive() and s.process.pid is not None]

    def pid(self, run_id: int) -> int | None:
        with self._lock:
            job = self._jobs.get(run_id)
        return job.process.pid if job else None

    def gpu(self, run_id: int) -> str | None:
        """The GPU a running run's process sees (None: no placement)."""
        with self._lock:
            job = self._jobs.get(run_id)
        return job.worker.gpu if job else None

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            processes = [job.process for job in self._jobs.values()] + [s.process for s in self._spares]
            self._spares = []
        for process in processes:
            if process.is_alive():
                process.kill()
