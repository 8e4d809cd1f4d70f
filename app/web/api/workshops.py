"""Workshops over JSON: the instructor's session, workshops, participants, examples and challenges.

Only served in workshop mode (LAYERLAB_MODE=workshop).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request

from app.core.errors import Forbidden, NotFound, Unauthorized
from app.core.graph import Graph
from app.core.workshops import shown_code
from app.services import challenges, workshops
from app.services.workshop_room import room
from app.store import repository, runs
from app.store.tables import ChallengeRecord, Participant, WorkshopExample, WorkshopRecord
from app.web.api.models import model_out
from app.web.api.schemas import (
    ChallengeCreate,
    ExamplePin,
    InstructorSignIn,
    JoinRequest,
    ModelOut,
    SubmissionCreate,
    WorkshopCreate,
)
from app.web.auth import Principal, check_guess_rate, count_wrong_guess, session_ttl
from app.web.deps import (
    DataWorkerDep,
    InstructorDep,
    InstructorWorkshop,
    PrincipalDep,
    SchedulerDep,
    SessionDep,
    SettingsDep,
    _found,
)

router = APIRouter(tags=["workshops"])
T = TypeVar("T")


def guarded_guess(request: Request, attempt: Callable[[], T], door: str = "join") -> T:
    """Run a join (`door` "join") or sign-in ("instructor") attempt; wrong codes, PINs and passwords count
    towards the address's limit at that door. The doors count apart: a room behind one address that mistypes
    its join code does not lock its instructor out."""
    check_guess_rate(request, door)
    try:
        return attempt()
    except (NotFound, Unauthorized):
        count_wrong_guess(request, door)
        raise


def workshop_out(workshop: WorkshopRecord) -> dict[str, Any]:
    return {"id": workshop.id, "name": workshop.name, "join_code": workshop.join_code,
            "join_code_shown": shown_code(workshop.join_code), "state": workshop.state,
            "datasets": workshops.datasets_of(workshop), "limits": workshops.limits_of(workshop).model_dump(),
            "created_at": workshop.created_at.isoformat()}


def challenge_out(challenge: ChallengeRecord) -> dict[str, Any]:
    return {"id": challenge.id, "workshop_id": challenge.workshop_id, "title": challenge.title,
            "dataset_id": challenge.dataset_id, "metric": challenge.metric, "target": challenge.target,
            "budget": challenges.budget_of(challenge).model_dump(), "state": challenge.state}


def example_out(example: WorkshopExample) -> dict[str, Any]:
    return {"id": example.id, "name": example.name, "author": example.author,
            "created_at": example.created_at.isoformat()}


# --- who is who ---------------------------------------------------------------------------------

@router.post("/instructor/session", status_code=201)
def sign_in_instructor(body: InstructorSignIn, request: Request, session: SessionDep,
                       settings: SettingsDep) -> dict[str, Any]:
    """Sign in as the instructor with the password from the server's settings; returns a bearer token."""
    token = guarded_guess(request, lambda: workshops.sign_in_instructor(session, settings, body.password,
                                                                        session_ttl(settings)), door="instructor")
    return {"token": token, "expires_in_days": settings.session_days}


@router.post("/workshops/join", status_code=201)
def join_workshop(body: JoinRequest, request: Request, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """Join with the code and a display name (201 with a bearer token and the PIN to come back with), or come
    back as an existing participant with the name and PIN."""
    joined = guarded_guess(request, lambda: workshops.join(session, body.code, body.display_name, body.pin,
                                                           session_ttl(settings)))
    participant = joined.participant
    request.app.state.event_hub.announce("joined")
    return {"token": joined.secret, "pin": joined.pin, "participant_id": participant.id,
            "workshop_id": participant.workshop_id, "display_name": participant.display_name,
            "expires_in_days": settings.session_days}


@router.get("/me")
def who_am_i(who: PrincipalDep) -> dict[str, Any]:
    """The caller's role, and for a participant their workshop, name and limits."""
    member = who.member
    return {"role": who.role, "read_only": who.read_only,
            "workshop_id": member.workshop_id if member else None,
            "workshop_name": member.workshop_name if member else None,
            "display_name": member.display_name if member else None,
            "limits": member.limits.model_dump() if member else None}


# --- the instructor's workshops ----------------------------------------------------------------------

@router.get("/workshops")
def list_workshops(who: InstructorDep, session: SessionDep) -> list[dict[str, Any]]:
    """Every workshop of this server, newest first, with its join code, datasets and limits."""
    return [workshop_out(w) for w in workshops.list_workshops(session)]


@router.post("/workshops", status_code=201)
def create_workshop(body: WorkshopCreate, who: InstructorDep, session: SessionDep,
                    settings: SettingsDep) -> dict[str, Any]:
    """Open a workshop: its name, the built-in datasets on offer (default: all that work offline here) and
    each participant's limits. The answer has the join code for the projector."""
    return workshop_out(workshops.create_workshop(session, settings, body.name, body.datasets, body.limits))


@router.get("/workshops/{workshop_id}")
def get_workshop(workshop: InstructorWorkshop) -> dict[str, Any]:
    """One workshop: its join code, datasets on offer, limits and state."""
    return workshop_out(workshop)


@router.post("/workshops/{workshop_id}/close")
def close_workshop(workshop: InstructorWorkshop, session: SessionDep) -> dict[str, Any]:
    """Close the workshop: nobody joins any more, its challenges close, and participants keep read-only access."""
    workshops.close_workshop(session, workshop)
    return workshop_out(workshop)


@router.get("/workshops/{workshop_id}/participants")
def list_participants(workshop: InstructorWorkshop, session: SessionDep,
                      scheduler: SchedulerDep) -> list[dict[str, Any]]:
    """Each participant: display name, state (editing, queued, training, finished), runs and best result."""
    return [{"id": row.participant.id, "display_name": row.participant.display_name, "state": row.state,
             "detail": row.detail, "runs": row.runs, "run_ids": row.run_ids, "active_run_id": row.active_run_id,
             "best": row.best, "joined_at": row.participant.joined_at.isoformat()}
            for row in room(session, scheduler, workshop)["rows"]]


@router.get("/workshops/{workshop_id}/queue")
def workshop_queue(workshop: InstructorWorkshop, session: SessionDep, scheduler: SchedulerDep) -> dict[str, Any]:
    """What trains now and what waits (in the order runs will start), with the server's training slots."""
    view = room(session, scheduler, workshop)
    return {"slots": view["slots"], "busy": view["busy"],
            "training": [{"run_id": t["run"].id, "display_name": t["participant"].display_name,
                          "model_name": t["run"].model_name, "progress": t["progress"]} for t in view["training"]],
            "waiting": [{"position": q["position"], "run_id": q["run"].id, "model_name": q["run"].model_name,
                         "display_name": q["participant"].display_name} for q in view["queue"]]}


def _participant(participant_id: int, workshop: InstructorWorkshop, session: SessionDep) -> Participant:
    return _found(session, workshops.get_participant(session, workshop, participant_id))


WorkshopParticipant = Annotated[Participant, Depends(_participant)]


@router.get("/workshops/{workshop_id}/participants/{participant_id}/models")
def participant_models(participant: WorkshopParticipant, session: SessionDep,
                       settings: SettingsDep) -> list[ModelOut]:
    """A participant's models, read-only."""
    return [model_out(m, settings) for m in repository.list_models(session, participant.workspace_id)]


@router.post("/workshops/{workshop_id}/participants/{participant_id}/tokens", status_code=201)
def mint_participant_token(participant: WorkshopParticipant, session: SessionDep,
                           settings: SettingsDep) -> dict[str, Any]:
    """A bearer token for a participant's scripts (in workshop mode, only the instructor makes tokens)."""
    return {"token": workshops.mint_token(session, participant, session_ttl(settings)),
            "participant_id": participant.id, "expires_in_days": settings.session_days}


# --- examples -----------------------------------------------------------------------------------------

def _workshop_for(workshop_id: int, who: PrincipalDep, session: SessionDep) -> WorkshopRecord:
    """A workshop the caller belongs to: the instructor's any, a participant's their own."""
    if who.role != "instructor" and (who.member is None or who.member.workshop_id != workshop_id):
        raise NotFound(f"There is no workshop {workshop_id} of yours.")
    return _found(session, workshops.get_workshop(session, workshop_id))


MemberWorkshop = Annotated[WorkshopRecord, Depends(_workshop_for)]


@router.get("/workshops/{workshop_id}/examples")
def list_examples(workshop: MemberWorkshop, session: SessionDep) -> list[dict[str, Any]]:
    """The models pinned as examples in this workshop (the instructor's, or a participant's own)."""
    return [example_out(e) for e in workshops.examples(session, workshop.id)]


@router.post("/workshops/{workshop_id}/examples", status_code=201)
def pin_example(body: ExamplePin, workshop: InstructorWorkshop, session: SessionDep) -> dict[str, Any]:
    """Pin a model (the instructor's own, or a participant's) for everyone in the workshop to copy."""
    return example_out(workshops.pin_example(session, workshop, body.model_id, body.participant_id))


@router.delete("/workshops/{workshop_id}/examples/{example_id}", status_code=204)
def unpin_example(example_id: int, workshop: InstructorWorkshop, session: SessionDep) -> None:
    """Take an example off the workshop's list; copies already made stay."""
    workshops.unpin_example(session, workshops.get_example(session, workshop.id, example_id))


@router.post("/workshops/{workshop_id}/examples/{example_id}/copy", status_code=201)
def copy_example(example_id: int, workshop: MemberWorkshop, who: PrincipalDep, session: SessionDep,
                 settings: SettingsDep) -> ModelOut:
    """Copy a pinned example into the caller's workspace as a new model."""
    example = workshops.get_example(session, workshop.id, example_id)
    return model_out(workshops.copy_example(session, settings, who.workspace_id, example), settings)


# --- challenges -----------------------------------------------------------------------------------------

@router.post("/workshops/{workshop_id}/challenges", status_code=201)
def create_challenge(body: ChallengeCreate, workshop: InstructorWorkshop, session: SessionDep,
                     settings: SettingsDep, worker: DataWorkerDep) -> dict[str, Any]:
    """Publish a challenge on a dataset of the instructor's workspace. Its test split stays hidden on the
    server; the answer's `dataset_id` is the dataset participants train on (training and validation only)."""
    return challenge_out(challenges.create_challenge(
        session, settings, worker, workshop, dataset_id=body.dataset_id, metric=body.metric,
        budget=body.budget, target=body.target, title=body.title))


@router.get("/workshops/{workshop_id}/challenges")
def list_challenges(workshop: MemberWorkshop, session: SessionDep) -> list[dict[str, Any]]:
    """The workshop's challenges, newest first."""
    return [challenge_out(c) for c in challenges.challenges_of(session, workshop.id)]


def challenge_for(challenge_id: int, who: PrincipalDep, session: SessionDep) -> ChallengeRecord:
    """A challenge the caller may see: any for the instructor, their workshop's for a participant."""
    if who.role == "personal":
        raise NotFound(f"There is no challenge {challenge_id}.")
    workshop_id = None if who.role == "instructor" else who.member.workshop_id if who.member else -1
    return _found(session, challenges.get_challenge(session, challenge_id, workshop_id))


VisibleChallenge = Annotated[ChallengeRecord, Depends(challenge_for)]


@router.get("/challenges/{challenge_id}")
def get_challenge(challenge: VisibleChallenge, who: PrincipalDep, session: SessionDep) -> dict[str, Any]:
    """A challenge: its dataset, metric, target, budget and state; for a participant, submissions left."""
    out = challenge_out(challenge)
    if who.member is not None:
        out["submissions_left"] = challenges.submissions_left(session, challenge, who.member.participant_id)
    return out


@router.post("/challenges/{challenge_id}/submissions", status_code=201)
def submit_run(body: SubmissionCreate, request: Request, challenge: VisibleChallenge, who: PrincipalDep,
               session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
               worker: DataWorkerDep) -> dict[str, Any]:
    """Enter a finished run: its model is scored on the hidden test split, and the score comes back."""
    if who.member is None:
        raise Forbidden("Only participants submit runs to a challenge.")
    run = runs.get_run(session, who.workspace_id, body.run_id)
    entry = challenges.submit(session, settings, scheduler, worker, challenge, who.member, run)
    request.app.state.event_hub.announce("submission")
    return {"id": entry.id, "run_id": entry.run_id, "state": entry.state, "score": entry.score,
            "metric": challenge.metric, "params": entry.params, "reason": entry.reason,
            "submissions_left": challenges.submissions_left(session, challenge, who.member.participant_id)}


@router.get("/challenges/{challenge_id}/board")
def challenge_board(challenge: VisibleChallenge, session: SessionDep) -> dict[str, Any]:
    """Entries with display name, score and parameter count; the best of each participant ranked."""
    return challenges.board(session, challenge)


@router.get("/challenges/{challenge_id}/entries/{entry_id}")
def challenge_entry(entry_id: int, challenge: VisibleChallenge, who: PrincipalDep,
                    session: SessionDep) -> dict[str, Any]:
    """An entry's architecture: for the instructor at any time, for everyone once the challenge is closed."""
    entry = challenges.get_entry(session, challenge, entry_id)
    if not architecture_visible(who, challenge):
        raise Forbidden("Entries' architectures are shown to everyone once the challenge closes.")
    return {"id": entry.id, "model_name": entry.model_name, "params": entry.params, "score": entry.score,
            "graph": Graph.model_validate_json(entry.graph_json).model_dump()}


@router.post("/challenges/{challenge_id}/close")
def close_challenge(who: InstructorDep, challenge: VisibleChallenge, session: SessionDep) -> dict[str, Any]:
    """Close a challenge: no more submissions, and every entry's architecture is shown to everyone."""
    challenges.close_challenge(session, challenge)
    return challenge_out(challenge)


def architecture_visible(who: Principal, challenge: ChallengeRecord) -> bool:
    return who.role == "instructor" or challenge.state == "closed"
