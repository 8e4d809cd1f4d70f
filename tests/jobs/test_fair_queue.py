"""The run queue is a round robin between workspaces: the order itself, and the scheduler that follows it."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.core.runs import RunState
from app.jobs.event_hub import RunEventHub
from app.jobs.fair_queue import start_order
from app.jobs.scheduler import Scheduler
from app.store.db import make_engine, make_session_factory
from app.store.tables import RunRecord, Workspace

T0 = datetime(2026, 1, 1, tzinfo=UTC)

# --- the order ----------------------------------------------------------------------------------------------


def test_one_workspace_queueing_many_runs_does_not_hold_up_the_others():
    queued = [(1, "a"), (2, "a"), (3, "a"), (4, "a"), (5, "a"), (6, "b"), (7, "c")]
    assert start_order(queued, {}) == [1, 6, 7, 2, 3, 4, 5]


def test_within_a_round_workspaces_with_fewer_runs_running_go_first():
    assert start_order([(1, "a"), (2, "b"), (3, "c")], {"a": 1}) == [2, 3, 1]
    # Rounds still come first: b's 2nd run waits for a's 1st, however much a has running.
    queued = [(1, "a"), (2, "a"), (3, "b"), (4, "b")]
    assert start_order(queued, {"a": 2, "b": 1}) == [3, 1, 4, 2]


def test_then_the_workspace_whose_last_run_started_longest_ago_goes_first():
    queued = [(2, "a"), (6, "b"), (7, "c")]
    # a's run has just ended (nothing running), b had its turn earlier, c never had one.
    last_started = {"a": T0 + timedelta(minutes=5), "b": T0}
    assert start_order(queued, {}, last_started) == [7, 6, 2]
    assert start_order(queued, {}) == [2, 6, 7]  # no run started anywhere: the oldest queued run first


def test_workspaces_keep_their_order_from_round_to_round():
    # y queued first, so y is ahead of z in every round, though z's 2nd run is older than y's.
    assert start_order([(10, "y"), (11, "z"), (15, "z"), (20, "y")], {}) == [10, 11, 20, 15]


def test_the_order_is_a_deterministic_round_robin():
    rng = random.Random(7)
    for _ in range(200):
        workspaces = [f"w{i}" for i in range(rng.randint(1, 6))]
        ids = rng.sample(range(1, 1000), rng.randint(0, 30))
        queued = sorted((run_id, rng.choice(workspaces)) for run_id in ids)
        running = {w: rng.randint(0, 2) for w in workspaces if rng.random() < 0.5}
        last_started = {w: T0 + timedelta(seconds=rng.randint(0, 3)) for w in workspaces if rng.random() < 0.5}
        order = start_order(queued, running, last_started)

        assert sorted(order) == sorted(ids)
        shuffled = queued[:]
        rng.shuffle(shuffled)
        assert start_order(shuffled, dict(running), dict(last_started)) == order
        owner = dict(queued)
        turn_of: dict[int, int] = {}
        seen: dict[str, list[int]] = defaultdict(list)
        for run_id in order:
            seen[owner[run_id]].append(run_id)
            turn_of[run_id] = len(seen[owner[run_id]])
        assert all(runs == sorted(runs) for runs in seen.values())  # a workspace's own runs: oldest first
        rounds = [turn_of[run_id] for run_id in order]
        assert rounds == sorted(rounds)  # every 1st queued run before any 2nd, and so on


# --- the scheduler ------------------------------------------------------------------------------------------


class RecordingExecutor:
    """Trains nothing: remembers which runs it was given, in order."""

    def __init__(self) -> None:
        self.submitted: list[int] = []

    def warm_up(self) -> None:
        pass

    def submit(self, run_id: int, request: dict[str, Any]) -> None:
        self.submitted.append(run_id)

    def cancel(self, run_id: int) -> None:
        pass

    def running(self) -> set[int]:
        return set()

    def shutdown(self) -> None:
        pass


@pytest.fixture
def sessions(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'layerlab.db'}")
    factory = make_session_factory(engine)
    with factory() as session:
        session.add_all([Workspace(id=w) for w in ("a", "b", "c")])
        session.commit()
    yield factory
    engine.dispose()


def make_scheduler(sessions, tmp_path: Path, max_running: int, per_workspace: int) -> Scheduler:
    return Scheduler(sessions, tmp_path, max_running, per_workspace, RunEventHub(), lambda sink: RecordingExecutor())


def queue_run(scheduler: Scheduler, workspace_id: str) -> int:
    """As the training service does: record the run as queued, then let the scheduler start what it can."""
    with scheduler.sessions() as session:
        run = RunRecord(workspace_id=workspace_id, model_name="Net", graph_json="{}", dataset_name="data",
                        dataset_folder="datasets/1", config_json="{}", state=RunState.QUEUED)
        session.add(run)
        session.commit()
        run_id = run.id
    scheduler.dispatch()
    return run_id


def shown_queue(scheduler: Scheduler) -> list[tuple[int, int]]:
    """(position, run id) as an instructor sees it; each run's own position agrees."""
    with scheduler.sessions() as session:
        queue = scheduler.queue(session)
        assert [scheduler.queue_position(session, run) for _, run in queue] == [p for p, _ in queue]
        return [(position, run.id) for position, run in queue]


def finish(scheduler: Scheduler, run_id: int) -> None:
    scheduler.record_event(run_id, {"type": "finished", "state": RunState.COMPLETED})


def test_runs_start_in_the_order_of_the_positions_shown(sessions, tmp_path):
    scheduler = make_scheduler(sessions, tmp_path, max_running=1, per_workspace=1)
    executor = scheduler.executor
    assert isinstance(executor, RecordingExecutor)
    a_runs = [queue_run(scheduler, "a") for _ in range(5)]
    b_run, c_run = queue_run(scheduler, "b"), queue_run(scheduler, "c")
    assert executor.submitted == [a_runs[0]]

    # b and c, who queued one run each after a queued five, go before a's 2nd run.
    shown = shown_queue(scheduler)
    assert shown == list(enumerate([b_run, c_run, *a_runs[1:]], start=1))
    with sessions() as session:
        assert scheduler.queue_position(session, session.get(RunRecord, a_runs[0])) is None  # running

    # Each time the running run ends, the run shown first starts, and the others move up in the same order;
    # a's next run does not jump ahead when a's run ends and a has nothing running any more.
    for _ in range(len(shown)):
        running = executor.submitted[-1]
        expected = shown_queue(scheduler)
        finish(scheduler, running)
        assert executor.submitted[-1] == expected[0][1]
        assert shown_queue(scheduler) == [(position - 1, run_id) for position, run_id in expected[1:]]
    assert executor.submitted == [a_runs[0], b_run, c_run, *a_runs[1:]]
    finish(scheduler, executor.submitted[-1])
    assert shown_queue(scheduler) == []


def test_a_workspace_at_its_running_limit_is_passed_over(sessions, tmp_path):
    scheduler = make_scheduler(sessions, tmp_path, max_running=3, per_workspace=1)
    executor = scheduler.executor
    assert isinstance(executor, RecordingExecutor)
    a_runs = [queue_run(scheduler, "a") for _ in range(3)]
    b_run = queue_run(scheduler, "b")
    assert executor.submitted == [a_runs[0], b_run]  # a free slot is left: a already has its one run running
    assert shown_queue(scheduler) == [(1, a_runs[1]), (2, a_runs[2])]
    c_run = queue_run(scheduler, "c")
    assert executor.submitted == [a_runs[0], b_run, c_run]
    finish(scheduler, a_runs[0])
    assert executor.submitted[-1] == a_runs[1]
