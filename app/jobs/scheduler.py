"""The scheduler: the only writer of run state.

Runs wait in a queue that is fair between workspaces (the database is the queue: the queued
runs). It is a round robin: each workspace's oldest queued run in turn, the workspace that has
waited longest for a turn first (app/jobs/fair_queue.py). Runs start in that order when the
global and per-workspace limits allow, and the scheduler records every event the executor
reports. On start-up, runs that a previous server left running become `interrupted`, keeping
their finished epochs, and can be resumed.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.core.errors import Conflict
from app.core.internals import DEFAULT_HISTOGRAM_BINS
from app.core.runs import (
    ACTIVE_STATES,
    CHECKPOINT,
    ENDED_STATES,
    INITIAL_WEIGHTS,
    RESUMABLE_STATES,
    RunState,
    run_folder,
)
from app.jobs.event_hub import RunEventHub, StreamEvent
from app.jobs.executor import Executor
from app.jobs.fair_queue import start_order
from app.store.tables import RunEvent, RunRecord, utcnow

log = logging.getLogger(__name__)

INTERRUPTED_REASON = ("The server stopped while this run was training. Its epochs up to the last saved "
                      "one are kept; resume it to continue from there.")


class Scheduler:
    def __init__(self, sessions: sessionmaker[Session], data_dir: Path, max_running: int,
                 max_running_per_workspace: int, hub: RunEventHub,
                 executor_factory: Callable[[Callable[[int, dict[str, Any]], None]], Executor],
                 histogram_bins: int = DEFAULT_HISTOGRAM_BINS):
        self.sessions = sessions
        self.histogram_bins = histogram_bins  # of the histograms recorded inside the model
        self.data_dir = data_dir
        self.max_running = max_running
        self.max_running_per_workspace = max_running_per_workspace
        self.hub = hub
        self.executor = executor_factory(self.record_event)
        self._lock = threading.RLock()
        self._closing = False
        # Told each run that ends (its id), outside the lock: variant searches queue their next trials.
        self.run_ended_listeners: list[Callable[[int], None]] = []

    def run_folder(self, run_id: int) -> Path:
        return run_folder(self.data_dir, run_id)

    # --- start-up and shutdown -------------------------------------------------

    def recover(self) -> None:
        """Runs left running by a previous server become interrupted; the queue starts again."""
        self._interrupt_running()
        self.dispatch()

    def shutdown(self) -> None:
        """Stop the workers; their runs become interrupted (resumable), not failed."""
        with self._lock:
            self._closing = True  # the workers' deaths below are ours, not failures
        self.executor.shutdown()
        try:
            self._interrupt_running()
        except SQLAlchemyError:  # a full disk or a lost database: the next start marks them interrupted
            log.exception("could not mark the running runs interrupted at shutdown")

    def _interrupt_running(self) -> None:
        with self._lock, self.sessions() as session:
            stranded = list(session.scalars(select(RunRecord.id).where(RunRecord.state == RunState.RUNNING)))
            session.execute(update(RunRecord).where(RunRecord.id.in_(stranded))
                            .values(state=RunState.INTERRUPTED, reason=INTERRUPTED_REASON, finished_at=utcnow()))
            for run_id in stranded:
                self._add_event(session, run_id, "state", {"state": RunState.INTERRUPTED, "reason": INTERRUPTED_REASON})
            self._commit(session)

    # --- commands ----------------------------------------------------------------

    def dispatch(self) -> None:
        """Start queued runs in the queue's order (round robin between workspaces) while the limits allow;
        a workspace at its running limit is passed over."""
        with self._lock, self.sessions() as session:
            per_workspace = self._running_per_workspace(session)
            slots = self.max_running - sum(per_workspace.values())
            for run in self._in_start_order(session, per_workspace):
                if slots <= 0:
                    break
                if per_workspace.get(run.workspace_id, 0) >= self.max_running_per_workspace:
                    continue
                run.state, run.started_at = RunState.RUNNING, utcnow()
                self._add_event(session, run.id, "state", {"state": RunState.RUNNING})
                self._commit(session)
                per_workspace[run.workspace_id] = per_workspace.get(run.workspace_id, 0) + 1
                slots -= 1
                self.executor.submit(run.id, self._request(run))

    def _request(self, run: RunRecord) -> dict[str, Any]:
        return {
            "run_id": run.id,
            "graph": json.loads(run.graph_json),
            "config": json.loads(run.config_json),
            "dataset_dir": str(self.data_dir / run.dataset_folder),
            "run_dir": str(self.run_folder(run.id)),
            "resume": run.resume,
            "evaluate": True,
            "initial_weights": (self.run_folder(run.id) / INITIAL_WEIGHTS).exists(),
            "histogram_bins": self.histogram_bins,
        }

    def stop(self, run_id: int) -> None:
        with self._lock, self.sessions() as session:
            run = session.get(RunRecord, run_id)
            if run is None or run.state not in ACTIVE_STATES:
                state = run.state if run else "missing"
                raise Conflict(f"Run {run_id} is {state}; only queued or running runs can be stopped.")
            if run.state == RunState.QUEUED:
                run.state, run.reason, run.finished_at = RunState.CANCELLED, "Stopped before it started.", utcnow()
                self._add_event(session, run_id, "state", {"state": RunState.CANCELLED, "reason": run.reason})
                self._commit(session)
            else:
                self.executor.cancel(run_id)
                return
        self._tell_run_ended(run_id)

    def _tell_run_ended(self, run_id: int) -> None:
        for listener in self.run_ended_listeners:
            listener(run_id)

    def resume(self, run_id: int) -> None:
        with self._lock, self.sessions() as session:
            run = session.get(RunRecord, run_id)
            has_checkpoint = (self.run_folder(run_id) / CHECKPOINT).exists()
            if run is None or run.state not in RESUMABLE_STATES or not has_checkpoint:
                state = run.state if run else "missing"
                raise Conflict(f"Run {run_id} is {state}" + ("" if has_checkpoint else " and has no saved epoch")
                               + "; only interrupted, stopped or failed runs with a finished epoch can be resumed.")
            run.state, run.resume, run.reason, run.finished_at = RunState.QUEUED, True, None, None
            self._add_event(session, run_id, "state", {"state": RunState.QUEUED, "resumed": True})
            self._commit(session)
        self.dispatch()

    # --- events from the executor (called from its threads) ----------------------

    def record_event(self, run_id: int, event: dict[str, Any]) -> None:
        kind = str(event.get("type", "unknown"))
        if self._closing and kind == "finished":
            return  # shutting down: shutdown() marks the run interrupted instead
        with self._lock, self.sessions() as session:
            run = session.get(RunRecord, run_id)
            if run is None:
                return
            if kind == "finished":
                self._finish(session, run, event)
            else:
                if kind == "epoch":
                    run.epochs_done = max(run.epochs_done, int(event.get("epoch", 0)))
                self._add_event(session, run_id, kind, {k: v for k, v in event.items() if k != "type"})
                self._commit(session)
        if kind == "finished" and not self._closing:
            self.dispatch()
            self._tell_run_ended(run_id)

    def _finish(self, session: Session, run: RunRecord, event: dict[str, Any]) -> None:
        if run.state != RunState.RUNNING:
            return  # an ended run's state never changes
        state = event.get("state", RunState.FAILED)
        run.state = state if state in ENDED_STATES else RunState.FAILED
        run.reason = event.get("message") or event.get("reason")
        run.finished_at = utcnow()
        if event.get("evaluation") is not None:
            run.set_evaluation(event["evaluation"])
        summary = {k: v for k, v in event.items() if k not in ("type", "evaluation")}
        self._add_event(session, run.id, "finished", summary)
        self._add_event(session, run.id, "state", {"state": run.state, "reason": run.reason})
        self._commit(session)

    @staticmethod
    def _add_event(session: Session, run_id: int, kind: str, data: dict[str, Any]) -> None:
        session.add(RunEvent(run_id=run_id, type=kind, data_json=json.dumps(data)))

    def _commit(self, session: Session) -> None:
        """A run's state and the events that announce it are committed together, then handed to the
        streams that follow the run: a stream that reads the new state always finds its event too."""
        added = [obj for obj in session.new if isinstance(obj, RunEvent)]
        session.commit()
        by_run: dict[int, list[StreamEvent]] = {}
        for event in sorted(added, key=lambda e: e.id):
            by_run.setdefault(event.run_id, []).append(StreamEvent(event.id, event.type, event.data_json))
        for run_id, events in by_run.items():
            self.hub.publish(run_id, events)

    # --- questions -----------------------------------------------------------------

    def queue(self, session: Session) -> list[tuple[int, RunRecord]]:
        """Every queued run with its position (1 for the next to start), in the order they start."""
        return list(enumerate(self._in_start_order(session, self._running_per_workspace(session)), start=1))

    def queue_position(self, session: Session, run: RunRecord) -> int | None:
        """1 for the next run to start, or None when the run is not queued."""
        if run.state != RunState.QUEUED:
            return None
        queued = [(run_id, workspace_id) for run_id, workspace_id in session.execute(
            select(RunRecord.id, RunRecord.workspace_id).where(RunRecord.state == RunState.QUEUED))]
        order = start_order(queued, self._running_per_workspace(session), self._last_started(session))
        return order.index(run.id) + 1 if run.id in order else None

    def _in_start_order(self, session: Session, running: dict[str, int]) -> list[RunRecord]:
        queued = {run.id: run for run in session.scalars(select(RunRecord).where(RunRecord.state == RunState.QUEUED))}
        order = start_order([(run.id, run.workspace_id) for run in queued.values()], running,
                            self._last_started(session))
        return [queued[run_id] for run_id in order]

    @staticmethod
    def _last_started(session: Session) -> dict[str, datetime]:
        """When each workspace with queued runs last had a run start (none: never)."""
        waiting = select(RunRecord.workspace_id).where(RunRecord.state == RunState.QUEUED)
        rows = session.execute(select(RunRecord.workspace_id, func.max(RunRecord.started_at))
                               .where(RunRecord.workspace_id.in_(waiting), RunRecord.started_at.is_not(None))
                               .group_by(RunRecord.workspace_id))
        return {workspace_id: started for workspace_id, started in rows if started is not None}

    @staticmethod
    def _running_per_workspace(session: Session) -> dict[str, int]:
        counts = session.execute(select(RunRecord.workspace_id, func.count())
                                 .where(RunRecord.state == RunState.RUNNING).group_by(RunRecord.workspace_id))
        return {workspace_id: count for workspace_id, count in counts}
