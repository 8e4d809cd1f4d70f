"""Workshops: the instructor signs in and opens workshops; participants join with the code and a name.

One instructor per server (the password in the settings) owns every workshop and has a
workspace of their own, for models to pin as examples and datasets to make challenges from.
Each participant gets a workspace of their own, bound to sessions of kind `participant`; the
limits of their workshop apply on top of the server's wherever runs and datasets are created.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.config import Settings
from app.core.errors import Conflict, Forbidden, NotFound, Unauthorized, UserError, invalid_value
from app.core.graph import Graph
from app.core.passwords import hash_password, verify_password
from app.core.workshops import (
    WorkshopLimits,
    checked_display_name,
    checked_title,
    name_key,
    new_join_code,
    new_pin,
    normalize_code,
)
from app.data.catalog import DATASETS
from app.data.keras_cache import is_cached
from app.store import repository, runs, sessions
from app.store.tables import (
    ChallengeRecord,
    ModelRecord,
    Participant,
    WorkshopExample,
    WorkshopRecord,
    Workspace,
    is_possible_id,
    utcnow,
)

INSTRUCTOR_WORKSPACE = "instructor"
PARTICIPANT, INSTRUCTOR = "participant", "instructor"


@dataclass(frozen=True)
class Membership:
    """A participant's place in a workshop, as every request of theirs needs it."""

    participant_id: int
    display_name: str
    workshop_id: int
    workshop_name: str
    closed: bool
    limits: WorkshopLimits
    datasets: tuple[str, ...]


# --- the instructor ----------------------------------------------------------------------

def sign_in_instructor(db: Session, settings: Settings, password: Any, ttl: timedelta, kind: str = INSTRUCTOR) -> str:
    """A new instructor session's secret, or Unauthorized for a wrong password."""
    if not isinstance(password, str) or not verify_password(password, plain=settings.instructor_password,
                                                            hashed=settings.instructor_password_hash):
        raise Unauthorized("That is not the instructor password.", field="password")
    if db.get(Workspace, INSTRUCTOR_WORKSPACE) is None:
        db.add(Workspace(id=INSTRUCTOR_WORKSPACE))
        db.flush()
    return sessions.open_session(db, kind, ttl, INSTRUCTOR_WORKSPACE)[1]


def default_datasets(settings: Settings) -> list[str]:
    """Every built-in that works offline on this server: those without a download, and downloaded ones."""
    return [key for key, spec in DATASETS.items() if not spec.needs_download or is_cached(key, settings.dataset_cache)]


def create_workshop(db: Session, settings: Settings, name: Any, datasets: Any, limits: Any) -> WorkshopRecord:
    title = checked_title(name)
    keys = default_datasets(settings) if datasets in (None, []) else datasets
    if not isinstance(keys, list) or not all(isinstance(k, str) and k in DATASETS for k in keys):
        raise invalid_value("datasets", "a list of built-in dataset keys from " + ", ".join(DATASETS), datasets)
    checked = WorkshopLimits.parse(limits)
    for _ in range(5):  # a code already in use is drawn again
        workshop = WorkshopRecord(name=title, join_code=new_join_code(), limits_json=checked.model_dump_json(),
                                  datasets_json=json.dumps(list(dict.fromkeys(keys))))
        db.add(workshop)
        try:
            db.commit()
            return workshop
        except IntegrityError:
            db.rollback()
    raise Conflict("Could not draw an unused join code; try again.")


def list_workshops(db: Session) -> list[WorkshopRecord]:
    return list(db.scalars(select(WorkshopRecord).order_by(WorkshopRecord.id.desc())))


def get_workshop(db: Session, workshop_id: int) -> WorkshopRecord:
    workshop = db.get(WorkshopRecord, workshop_id) if is_possible_id(workshop_id) else None
    if workshop is None:
        raise NotFound(f"There is no workshop {workshop_id}.")
    return workshop


def close_workshop(db: Session, workshop: WorkshopRecord) -> None:
    """Nobody joins any more; participants keep read-only access to their work, to look at and export it."""
    if workshop.state != "closed":
        workshop.state, workshop.closed_at = "closed", utcnow()
        db.execute(update(ChallengeRecord).where(ChallengeRecord.workshop_id == workshop.id,
                                                 ChallengeRecord.state != "closed")
                   .values(state="closed", closed_at=workshop.closed_at))
        db.commit()


def limits_of(workshop: WorkshopRecord) -> WorkshopLimits:
    return WorkshopLimits.model_validate_json(workshop.limits_json)


def datasets_of(workshop: WorkshopRecord) -> list[str]:
    return list(json.loads(workshop.datasets_json))


# --- participants --------------------------------------------------------------------------

@dataclass(frozen=True)
class Joined:
    participant: Participant
    secret: str
    pin: str | None  # shown once, at the first joining; None when coming back with it


def join(db: Session, code: Any, display_name: Any, pin: Any, ttl: timedelta) -> Joined:
    """Join the workshop with this code as a new participant, or come back as one with the PIN."""
    workshop = db.scalar(select(WorkshopRecord).where(WorkshopRecord.join_code == normalize_code(str(code or ""))))
    if workshop is None:
        raise NotFound("There is no workshop with this code. Check the code on the projector (letters and "
                       "digits; case and dashes do not matter).", field="code")
    name = checked_display_name(display_name)
    existing = db.scalar(select(Participant).where(Participant.workshop_id == workshop.id,
                                                   Participant.name_key == name_key(name)))
    if existing is not None:
        if not pin:
            raise Conflict(f"Someone in this workshop is already called {name}. If that is you, add the PIN you "
                           "were shown when you joined; otherwise choose another name.", field="display_name")
        if not isinstance(pin, str) or not verify_password(pin.strip(), hashed=existing.pin_hash):
            raise Unauthorized("That PIN does not match this name.", field="pin")
        return Joined(existing, sessions.open_session(db, PARTICIPANT, ttl, existing.workspace_id)[1], None)
    if workshop.state == "closed":
        raise Conflict("This workshop is closed: nobody can join it any more. Participants can still come back "
                       "with their name and PIN to look at and export their work.", field="code")
    new = new_pin()
    workspace_id, secret = sessions.open_session(db, PARTICIPANT, ttl)
    participant = Participant(workshop_id=workshop.id, workspace_id=workspace_id, display_name=name,
                              name_key=name_key(name), pin_hash=hash_password(new))
    db.add(participant)
    try:
        db.commit()
    except IntegrityError:  # the same name joined at the same moment
        db.rollback()
        raise Conflict(f"Someone in this workshop is already called {name}; choose another name.",
                       field="display_name") from None
    return Joined(participant, secret, new)


def membership(db: Session, workspace_id: str) -> Membership | None:
    """The workshop a workspace takes part in, or None (the instructor's, or a personal workspace)."""
    row = db.execute(select(Participant, WorkshopRecord)
                     .join(WorkshopRecord, Participant.workshop_id == WorkshopRecord.id)
                     .where(Participant.workspace_id == workspace_id)).first()
    if row is None:
        return None
    participant, workshop = row
    return Membership(participant.id, participant.display_name, workshop.id, workshop.name,
                      workshop.state == "closed", limits_of(workshop), tuple(datasets_of(workshop)))


def participants(db: Session, workshop: WorkshopRecord) -> list[Participant]:
    return list(db.scalars(select(Participant).where(Participant.workshop_id == workshop.id)
                           .order_by(Participant.display_name)))


def get_participant(db: Session, workshop: WorkshopRecord, participant_id: int) -> Participant:
    participant = db.get(Participant, participant_id) if is_possible_id(participant_id) else None
    if participant is None or participant.workshop_id != workshop.id:
        raise NotFound(f"There is no participant {participant_id} in this workshop.")
    return participant


def mint_token(db: Session, participant: Participant, ttl: timedelta) -> str:
    """A bearer token for a participant's scripts and notebooks (in workshop mode only the instructor makes them)."""
    return sessions.open_session(db, PARTICIPANT, ttl, participant.workspace_id)[1]


def is_participant_workspace(db: Session, workspace_id: str) -> bool:
    return db.scalar(select(Participant.id).where(Participant.workspace_id == workspace_id)) is not None


# --- limits, where runs and datasets are made ---------------------------------------------------

def check_run_allowed(db: Session, workspace_id: str, *, epochs: int, params: int | None, adding: int) -> None:
    member = membership(db, workspace_id)
    if member is None:
        return
    if member.closed:
        raise Forbidden("This workshop is closed: your work is read-only now (you can still look at and export it).")
    limits = member.limits
    if epochs > limits.max_epochs:
        raise invalid_value("epochs", f"at most {limits.max_epochs} epochs in this workshop", epochs)
    if params is not None and params > limits.max_params:
        raise UserError(f"This model has {params:,} parameters; this workshop allows up to {limits.max_params:,}. "
                        "Make a layer smaller (fewer units or filters), or add pooling before a Dense layer.",
                        field="params")
    active = runs.active_runs(db, workspace_id)
    if active + adding > limits.runs_at_once:
        raise Conflict(f"You have {active} run{'s' if active != 1 else ''} queued or running, and this workshop "
                       f"allows {limits.runs_at_once} at once. Wait for it to finish, or stop it.")


def check_dataset_allowed(db: Session, workspace_id: str, *, builtin: str | None = None,
                          upload_bytes: int | None = None) -> None:
    member = membership(db, workspace_id)
    if member is None:
        return
    if member.closed:
        raise Forbidden("This workshop is closed: your work is read-only now.")
    if builtin is not None and builtin not in member.datasets:
        names = ", ".join(DATASETS[k].title for k in member.datasets if k in DATASETS)
        raise invalid_value("dataset", f"one of the datasets this workshop offers ({names})", builtin)
    if upload_bytes is not None:
        if not member.limits.uploads:
            raise Forbidden("Uploads are off in this workshop: use one of the datasets it offers.", field="file")
        if upload_bytes > member.limits.max_upload_mb * 1024 * 1024:
            raise UserError(f"This workshop takes uploads up to {member.limits.max_upload_mb} MB; this file has "
                            f"{upload_bytes / 1024 / 1024:.1f} MB.", field="file")


# --- examples ------------------------------------------------------------------------------------

def pin_example(db: Session, workshop: WorkshopRecord, model_id: int, participant_id: int | None) -> WorkshopExample:
    """Pin a model for everyone to copy: a participant's (`participant_id`), or the instructor's own."""
    owner, author = INSTRUCTOR_WORKSPACE, "Instructor"
    if participant_id is not None:
        participant = get_participant(db, workshop, participant_id)
        owner, author = participant.workspace_id, participant.display_name
    model = repository.get_model(db, owner, model_id)
    same = db.scalar(select(WorkshopExample).where(
        WorkshopExample.workshop_id == workshop.id, WorkshopExample.author == author,
        WorkshopExample.name == model.name, WorkshopExample.graph_json == model.graph_json).limit(1))
    if same is not None:
        return same  # pinned already, unchanged since: one example, not two alike
    example = WorkshopExample(workshop_id=workshop.id, name=model.name, author=author, graph_json=model.graph_json)
    db.add(example)
    db.commit()
    return example


def examples(db: Session, workshop_id: int) -> list[WorkshopExample]:
    return list(db.scalars(select(WorkshopExample).where(WorkshopExample.workshop_id == workshop_id)
                           .order_by(WorkshopExample.id.desc())))


def get_example(db: Session, workshop_id: int, example_id: int) -> WorkshopExample:
    example = db.get(WorkshopExample, example_id) if is_possible_id(example_id) else None
    if example is None or example.workshop_id != workshop_id:
        raise NotFound(f"There is no example {example_id} in this workshop.")
    return example


def unpin_example(db: Session, example: WorkshopExample) -> None:
    db.delete(example)
    db.commit()


def copy_example(db: Session, settings: Settings, workspace_id: str, example: WorkshopExample) -> ModelRecord:
    if repository.count_models(db, workspace_id) >= settings.max_models_per_workspace:
        raise Conflict(f"This workspace already holds {settings.max_models_per_workspace} models, the most "
                       "allowed. Delete one first.")
    name = repository.unused_model_name(db, workspace_id, example.name)
    return repository.create_model(db, workspace_id, name, Graph.model_validate_json(example.graph_json))
