"""The Ray executor: the same training worker code, run by Ray actors on a Ray cluster (or a local Ray).

Chosen with LAYERLAB_EXECUTOR=ray (Ray is the optional extra `layerlab[ray]`), it runs in a process of its own,
the bridge (`app.jobs.ray_bridge`), which the server talks to. It keeps the local executor's contract
(`app.jobs.executor.Executor`):
- A run's dataset (its prepared arrays and metadata, put in once for every run on it) and the files it starts
  from (a checkpoint to resume, an imported model's weights) reach the actor through Ray's object store, not a
  shared disk; the actor trains in a folder of its own and hands every file of the run back the same way when
  the run ends, and the executor writes them into the server's run folder before it reports the end.
- Events come back through a Ray queue and are recorded by the web process, the only writer of run state.
- Stop sets a flag the actor's training loop reads between batches, as a local run's does.
- An actor that dies (its node lost, killed, out of memory) fails its run with the reason.
- Warm actors have TensorFlow imported already, so a run starts training at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from app.core.runs import RunState
from app.data.prepared import ARRAYS, META
from app.jobs.executor import deliver
from app.worker.ray_actor import CONCURRENCY_GROUPS, CONTROL, FILES, Trainer, run_files, write_files

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 5.0        # a cluster's head that does not answer this soon is taken as unreachable
POLL_S = 0.2                 # how often the event queue is read
FOLLOW_WAIT_S = 5.0          # a run's end is seen at once; this only bounds each wait for it
MAX_RUNS_PER_ACTOR = 25      # as the local executor's processes: a fresh actor after this many runs
DATASETS_KEPT = 8            # datasets kept in the object store for the next run on them


class RayUnavailable(RuntimeError):
    """Ray could not be started or reached; the message says which cluster and why."""


def probe(address: str) -> None:
    """Refuse an unreachable cluster at once: Ray itself keeps retrying for minutes before it gives up."""
    if not address or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=PROBE_TIMEOUT_S):
            pass
    except (OSError, ValueError) as error:
        raise RayUnavailable(f"cannot reach the Ray cluster at {address} ({error}). Start it (`ray start --head`), "
                             "or fix LAYERLAB_RAY_ADDRESS (host:port of its head, or empty for a local Ray "
                             "instance).") from error


def not_started(address: str, why: str) -> RayUnavailable:
    """The error for a cluster that answered (or a local instance) that Ray could not connect to or start."""
    where = f"the Ray cluster at {address}" if address else "a local Ray instance"
    return RayUnavailable(f"cannot start or reach {where}: {why}. Start it, or fix LAYERLAB_RAY_ADDRESS "
                          "(host:port of its head, or empty for a local Ray instance).")


class RayExecutor:
    """Runs on Ray actors; `address` empty starts a local Ray instance with `local_cpus` CPUs."""

    def __init__(self, on_event: Any, address: str = "", cpus_per_run: float = 1.0, gpus_per_run: float = 0.0,
                 warm_actors: int = 1, device: str = "auto", local_cpus: int | None = None, kept_actors: int = 1):
        os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # Ray's own future default
        try:
            import ray
            from ray.util.queue import Queue
        except ModuleNotFoundError as error:
            raise RayUnavailable("LAYERLAB_EXECUTOR is ray, but Ray is not installed: pip install -e \".[ray]\"") \
                from error
        self._ray = ray
        probe(address)  # even when this process is connected to Ray already: the setting names a cluster
        self._started_ray = not ray.is_initialized()
        if self._started_ray:
            try:
                ray.init(address=address or None, num_cpus=None if address else local_cpus,
                         include_dashboard=False, log_to_driver=False, configure_logging=False)
            except Exception as error:  # ConnectionError, TimeoutError, RuntimeError...
                why = str(error).strip() or type(error).__name__  # some of Ray's errors carry no message
                raise not_started(address, why) from error
        self._on_event = on_event
        self._device = device
        self._warm_actors = warm_actors
        # Actors whose run ended wait for the next one, up to as many as can run at once: on a cluster an idle
        # actor costs little, and each new one imports TensorFlow again.
        self._kept_actors = max(warm_actors, kept_actors)
        actor_options: dict[str, Any] = {"num_cpus": cpus_per_run, "num_gpus": gpus_per_run, "max_restarts": 0,
                                         "concurrency_groups": CONCURRENCY_GROUPS}
        self._actor_class: Any = ray.remote(**actor_options)(Trainer)
        # One queue for every run's events, as (run id, event): an actor per run would start a Ray worker process
        # per run. It is read in order by one thread; a run's end is reported once its events are all handed on.
        self._events: Any = Queue(actor_options={"num_cpus": 0})
        self._reading = threading.Lock()
        self._run_dirs: dict[int, Path] = {}
        self._lock = threading.Lock()
        self._spares: list[tuple[Any, int]] = []  # (actor, runs it has served)
        self._jobs: dict[int, Any] = {}           # run id -> actor
        self._datasets: OrderedDict[str, Any] = OrderedDict()  # dataset folder -> object-store ref, last used last
        self._closed = False
        threading.Thread(target=self._read_events_until_closed, daemon=True, name="layerlab-ray-events").start()

    # --- the Executor interface ------------------------------------------------------------------

    def warm_up(self) -> None:
        with self._lock:
            missing = self._warm_actors - len(self._spares)
            self._spares += [(self._actor_class.remote(self._device), 0) for _ in range(max(0, missing))]

    def submit(self, run_id: int, request: dict[str, Any]) -> None:
        actor: Any
        with self._lock:
            actor, served = self._spares.pop(0) if self._spares else (self._actor_class.remote(self._device), 0)
            self._jobs[run_id] = actor
        run_dir = Path(request["run_dir"])
        with self._lock:
            self._run_dirs[run_id] = run_dir
        ref = actor.train.remote(run_id, request, self._dataset_ref(Path(request["dataset_dir"])),
                                 self._ray.put(run_files(run_dir)), self._events)
        threading.Thread(target=self._follow, args=(run_id, actor, served + 1, ref, run_dir), daemon=True,
                         name=f"layerlab-ray-run-{run_id}").start()

    def _dataset_ref(self, dataset_dir: Path) -> Any:
        """The dataset in the object store, put there once for all the runs that train on it (a prepared
        dataset's folder never changes); the DATASETS_KEPT used last are kept."""
        key = str(dataset_dir)
        with self._lock:
            ref = self._datasets.pop(key, None)
        if ref is None:
            ref = self._ray.put({name: (dataset_dir / name).read_bytes() for name in (ARRAYS, META)})
        with self._lock:
            self._datasets[key] = ref
            while len(self._datasets) > DATASETS_KEPT:
                self._datasets.popitem(last=False)
        return ref

    def cancel(self, run_id: int) -> None:
        with self._lock:
            actor = self._jobs.get(run_id)
        if actor is not None:  # on the actor's control thread: it reads the stop between batches
            actor.stop.options(concurrency_group=CONTROL).remote(run_id)

    def running(self) -> set[int]:
        with self._lock:
            return set(self._jobs)

    def kill(self, run_id: int) -> None:
        """Used by tests: end a run's actor at once, as a lost node would."""
        with self._lock:
            actor = self._jobs.get(run_id)
        if actor is not None:
            self._ray.kill(actor, no_restart=True)

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            actors = [actor for actor, _ in self._spares] + list(self._jobs.values())
            self._spares = []
        for actor in [*actors, self._events.actor]:
            self._ray.kill(actor, no_restart=True)
        if self._started_ray:
            self._ray.shutdown()

    # --- one run -----------------------------------------------------------------------------------

    def _follow(self, run_id: int, actor: Any, served: int, ref: Any, run_dir: Path) -> None:
        """Wait for the actor's call to end; then hand on the events still queued, write the run's files and
        report its end."""
        ray = self._ray
        finished: dict[str, Any]
        while not ray.wait([ref], timeout=FOLLOW_WAIT_S)[0]:
            pass
        try:
            result, files = ray.get(ref)
            self._read_events()  # the actor put its events before it returned: all are handed on now
            write_files(run_dir, files)
            finished = {"type": "finished", **result}
            alive = True
        except Exception as error:  # the actor died: RayActorError, ActorDiedError, OutOfMemoryError...
            log.warning("run %s: its Ray actor ended: %s", run_id, error)
            finished = {"type": "finished", "state": RunState.FAILED, "reason": (
                f"The Ray worker training this run stopped ({type(error).__name__}): its node was lost, it was "
                "killed, or it ran out of memory. Its epochs up to the last one saved on the server are kept.")}
            alive = False
        with self._lock:
            self._jobs.pop(run_id, None)
            keep = alive and not self._closed and served < MAX_RUNS_PER_ACTOR and len(self._spares) < \
                self._kept_actors
            if keep:
                self._spares.append((actor, served))
        if not keep and alive:
            ray.kill(actor, no_restart=True)
        with self._lock:
            self._run_dirs.pop(run_id, None)
        self._deliver(run_id, finished)

    def _read_events_until_closed(self) -> None:
        while not self._closed:
            if not self._read_events():
                time.sleep(POLL_S)

    def _read_events(self) -> bool:
        """Hand on every event queued now, in order (a checkpoint's files are on the server before its news);
        whether there were any."""
        with self._reading:
            try:  # one call to the queue when it is empty, as it mostly is
                waiting = self._events.qsize()
                batch = self._events.get_nowait_batch(waiting) if waiting else []
            except Exception:  # the queue's actor lost with its node: the runs' calls say what happened
                return False
            for run_id, event in batch:
                with self._lock:
                    run_dir = self._run_dirs.get(run_id)
                files = event.pop(FILES, None)
                if files and run_dir is not None:
                    try:
                        write_files(run_dir, files)
                    except OSError:  # a full disk: the run's end says so; the other runs' events go on
                        log.exception("run %s: could not write its checkpoint's files", run_id)
                        continue
                self._deliver(run_id, event)
            return bool(batch)

    def _deliver(self, run_id: int, event: dict[str, Any]) -> None:
        deliver(self._on_event, run_id, event)
