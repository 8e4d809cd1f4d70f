"""The order in which queued runs start: round robin between workspaces.

In a workshop each participant is one workspace; one who queues five runs must not make the
others wait for all five. Queued runs are taken in rounds: every workspace's 1st queued run comes
before any workspace's 2nd, every 2nd before any 3rd, and so on. Within a round, workspaces with
fewer runs running come first; then the workspace whose last run started longest ago (one that
never had a run start first of all); then the workspace whose oldest queued run is oldest.

The last start matters when a run ends: its workspace has no run running any more, yet the others
that were waiting keep their turn before its next run. The workspaces keep the same order from one
round to the next, so the position shown to a user is the order the scheduler starts runs in,
as long as nothing is queued and nothing ends meanwhile (a workspace at its running limit is
passed over when a slot is free).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime


def start_order(queued: Iterable[tuple[int, str]], running: Mapping[str, int],
                last_started: Mapping[str, datetime] | None = None) -> list[int]:
    """The queued runs' ids in the order they start.

    `queued`: (run id, workspace id) pairs, oldest first (they are sorted by id here all the same);
    `running`: how many runs each workspace has running (missing: none);
    `last_started`: when each workspace last had a run start (missing: never).
    """
    last_started = last_started or {}
    rounds: dict[str, int] = {}  # the workspace's queued runs seen so far
    oldest: dict[str, int] = {}  # the workspace's oldest queued run
    placed: list[tuple[int, str, int]] = []  # (round, workspace, run id)
    for run_id, workspace_id in sorted(queued):
        turn = rounds.get(workspace_id, 0)
        rounds[workspace_id] = turn + 1
        oldest.setdefault(workspace_id, run_id)
        placed.append((turn, workspace_id, run_id))

    def key(item: tuple[int, str, int]) -> tuple[int, int, tuple[int] | tuple[int, datetime], int]:
        turn, workspace_id, _ = item
        started = last_started.get(workspace_id)
        return (turn, running.get(workspace_id, 0), (0,) if started is None else (1, started), oldest[workspace_id])

    return [run_id for _, _, run_id in sorted(placed, key=key)]
