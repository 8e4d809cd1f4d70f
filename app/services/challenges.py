"""Class challenges: a task on a dataset whose test split stays hidden on the server.

The instructor makes a challenge from a dataset of their own workspace. The data worker
writes two folders (`app/data/challenge.py`): a public one, listed in every participant's
workspace of the workshop as a dataset they can train on, and a hidden one with the test
split, which no route serves. A participant submits a finished run; the data worker loads
its saved model, scores it on the hidden split, and only the scores come back.
"""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.core.errors import Conflict, NotFound, UserError, invalid_value
from app.core.runs import FINAL_MODEL, RunState
from app.core.training import stored_config
from app.core.workshops import CHALLENGE_METRICS, HIGHER_IS_BETTER, ChallengeBudget, checked_title, is_better, reaches
from app.data.prepared import DatasetMeta
from app.jobs.scheduler import Scheduler
from app.jobs.warm_worker import WarmWorker
from app.services import datasets
from app.services.workshops import INSTRUCTOR_WORKSPACE, Membership
from app.store.db import release_connection
from app.store.tables import (
    ChallengeRecord,
    DatasetRecord,
    Participant,
    RunRecord,
    Submission,
    WorkshopRecord,
    is_possible_id,
    utcnow,
)

CHALLENGES_FOLDER = "challenges"


def create_challenge(db: Session, settings: Settings, worker: WarmWorker, workshop: WorkshopRecord, *,
                     dataset_id: Any, metric: Any, budget: Any, target: Any, title: Any = None) -> ChallengeRecord:
    if workshop.state == "closed":
        raise Conflict("This workshop is closed; a challenge needs an open one.")
    if not isinstance(dataset_id, int):
        raise invalid_value("dataset_id", "the id of a dataset in the instructor's workspace", dataset_id)
    source = datasets.get_dataset(db, INSTRUCTOR_WORKSPACE, dataset_id)
    meta = datasets.meta_of(source)
    if source.state != "ready":
        raise Conflict(f"Dataset {dataset_id} is not ready yet.", field="dataset_id")
    if metric not in CHALLENGE_METRICS or CHALLENGE_METRICS[metric] != meta.task:
        fitting = [name for name, task in CHALLENGE_METRICS.items() if task == meta.task]
        raise invalid_value("metric", f"a {meta.task} metric: one of {', '.join(fitting)}", metric)
    if meta.split_sizes.get("test", 0) == 0:
        raise UserError(f"Dataset {source.name} has no test split to keep hidden; prepare it with a test "
                        "fraction above 0.", field="dataset_id")
    checked_budget = ChallengeBudget.parse(budget)
    checked_target = _checked_target(metric, target)
    name = checked_title(title, "title") if title else f"{source.name} challenge"
    folder = Path(CHALLENGES_FOLDER) / uuid.uuid4().hex
    release_connection(db)  # the split takes a moment in the data worker
    public_meta = DatasetMeta(**worker.call("split_for_challenge", {
        "source": str(settings.data_dir / source.folder), "public": str(settings.data_dir / folder / "public"),
        "hidden": str(settings.data_dir / folder / "hidden"), "name": name[:64], "challenge": name}))
    dataset = DatasetRecord(workspace_id=INSTRUCTOR_WORKSPACE, name=name[:64], source="challenge",
                            spec_json=json.dumps({"challenge": name}), state="ready", folder=str(folder / "public"),
                            meta_json=public_meta.to_json(), shared_workshop_id=workshop.id)
    db.add(dataset)
    db.flush()
    challenge = ChallengeRecord(workshop_id=workshop.id, title=name, dataset_id=dataset.id,
                                hidden_folder=str(folder / "hidden"), metric=metric,
                                budget_json=checked_budget.model_dump_json(), target=checked_target)
    db.add(challenge)
    db.commit()
    return challenge


def _checked_target(metric: str, target: Any) -> float | None:
    if target is None:
        return None
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not math.isfinite(target):
        raise invalid_value("target", f"a number: the {metric} an entry should reach", target)
    if metric in ("accuracy", "macro_f1") and not 0 < target <= 1:
        raise invalid_value("target", f"a {metric} between 0 and 1", target)
    return float(target)


def budget_of(challenge: ChallengeRecord) -> ChallengeBudget:
    return ChallengeBudget.model_validate_json(challenge.budget_json)


def challenges_of(db: Session, workshop_id: int) -> list[ChallengeRecord]:
    return list(db.scalars(select(ChallengeRecord).where(ChallengeRecord.workshop_id == workshop_id)
                           .order_by(ChallengeRecord.id.desc())))


def get_challenge(db: Session, challenge_id: int, workshop_id: int | None) -> ChallengeRecord:
    """The challenge; for a participant (`workshop_id` given), only one of their workshop's."""
    challenge = db.get(ChallengeRecord, challenge_id) if is_possible_id(challenge_id) else None
    if challenge is None or (workshop_id is not None and challenge.workshop_id != workshop_id):
        raise NotFound(f"There is no challenge {challenge_id} in this workshop.")
    return challenge


def close_challenge(db: Session, challenge: ChallengeRecord) -> None:
    if challenge.state != "closed":
        challenge.state, challenge.closed_at = "closed", utcnow()
        db.commit()


def close_all(db: Session, workshop_id: int) -> None:
    for challenge in challenges_of(db, workshop_id):
        close_challenge(db, challenge)


def submissions_left(db: Session, challenge: ChallengeRecord, participant_id: int) -> int:
    made = db.scalar(select(func.count()).where(Submission.challenge_id == challenge.id,
                                                Submission.participant_id == participant_id)) or 0
    return max(0, budget_of(challenge).submissions - made)


def submit(db: Session, settings: Settings, scheduler: Scheduler, worker: WarmWorker, challenge: ChallengeRecord,
           member: Membership, run: RunRecord) -> Submission:
    """Check the run against the challenge and its budget, then score it on the hidden split."""
    if challenge.state == "closed":
        raise Conflict("This challenge is closed: it takes no more submissions.")
    if run.dataset_id != challenge.dataset_id:
        raise UserError(f"Run {run.id} was trained on {run.dataset_name}; a submission must be trained on the "
                        "challenge's dataset.", field="run_id")
    if run.state != RunState.COMPLETED or not (scheduler.run_folder(run.id) / FINAL_MODEL).exists():
        raise Conflict(f"Run {run.id} is {run.state}; only a run that finished training can be submitted.",
                       field="run_id")
    if stored_config(run.config_json)["target"] == "input":
        raise UserError(f"Run {run.id} learned to give back its input (training target: input), so it cannot be "
                        "scored on the challenge's labels. Submit a run trained with target labels.", field="run_id")
    budget = budget_of(challenge)
    if run.params is not None and run.params > budget.params:
        raise UserError(f"This model has {run.params:,} parameters; the challenge allows up to {budget.params:,}.",
                        field="run_id")
    if run.epochs_done > budget.epochs:
        raise UserError(f"This run trained {run.epochs_done} epochs; the challenge allows up to {budget.epochs}.",
                        field="run_id")
    if db.scalar(select(Submission.id).where(Submission.challenge_id == challenge.id, Submission.run_id == run.id)):
        raise Conflict(f"Run {run.id} is already on the board.", field="run_id")
    if submissions_left(db, challenge, member.participant_id) == 0:
        raise Conflict(f"You have used all {budget.submissions} submissions of this challenge.")
    entry = Submission(challenge_id=challenge.id, participant_id=member.participant_id, run_id=run.id,
                       model_name=run.model_name, graph_json=run.graph_json, params=run.params or 0,
                       epochs=run.epochs_done)
    db.add(entry)
    db.commit()
    payload = {"run_dir": str(scheduler.run_folder(run.id)), "model": FINAL_MODEL,
               "config": json.loads(run.config_json), "dataset_dir": str(settings.data_dir / challenge.hidden_folder)}
    release_connection(db)  # scoring takes seconds
    try:
        scores = worker.call("score_on_hidden_split", payload)
        entry.score, entry.state = scores.get(challenge.metric), "scored"
        if entry.score is None:
            entry.state, entry.reason = "failed", f"The model gave no {challenge.metric} on this data."
    except UserError as error:
        entry.state, entry.reason = "failed", error.message
    db.commit()
    return entry


def board(db: Session, challenge: ChallengeRecord) -> dict[str, Any]:
    """Every scored entry, the best of each participant ranked, and the smallest entry that reaches the target."""
    rows = db.execute(select(Submission, Participant.display_name)
                      .join(Participant, Submission.participant_id == Participant.id)
                      .where(Submission.challenge_id == challenge.id).order_by(Submission.id)).all()
    entries = [_entry(challenge, entry, name) for entry, name in rows]
    scored = [e for e in entries if e["score"] is not None]
    best: dict[str, dict[str, Any]] = {}
    for entry in scored:
        held = best.get(entry["display_name"])
        if held is None or is_better(challenge.metric, entry["score"], held["score"]):
            best[entry["display_name"]] = entry
    sign = -1 if challenge.metric in HIGHER_IS_BETTER else 1
    ranked = sorted(best.values(), key=lambda e: (sign * e["score"], e["params"], e["id"]))
    reaching = [e for e in scored if e["reached"]]
    smallest = min(reaching, key=lambda e: (e["params"], e["id"]))["id"] if reaching else None
    return {"challenge_id": challenge.id, "title": challenge.title, "metric": challenge.metric,
            "target": challenge.target, "state": challenge.state, "budget": budget_of(challenge).model_dump(),
            "ranked": [{**e, "rank": i + 1} for i, e in enumerate(ranked)], "entries": entries,
            "smallest_reaching_target": smallest}


def _entry(challenge: ChallengeRecord, entry: Submission, display_name: str) -> dict[str, Any]:
    return {"id": entry.id, "display_name": display_name, "model_name": entry.model_name, "score": entry.score,
            "params": entry.params, "epochs": entry.epochs, "state": entry.state, "reason": entry.reason,
            "reached": reaches(challenge.metric, entry.score, challenge.target), "run_id": entry.run_id,
            "participant_id": entry.participant_id, "submitted_at": entry.created_at.isoformat()}


def get_entry(db: Session, challenge: ChallengeRecord, entry_id: int) -> Submission:
    entry = db.get(Submission, entry_id) if is_possible_id(entry_id) else None
    if entry is None or entry.challenge_id != challenge.id:
        raise NotFound(f"There is no entry {entry_id} on this board.")
    return entry
