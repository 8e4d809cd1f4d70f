"""The class challenge's pages: publishing one, the board, submitting a run, an entry's architecture."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from app.core.errors import Forbidden, UserError
from app.core.graph import Graph
from app.core.runs import RunState
from app.core.validation import validate
from app.core.workshops import HIGHER_IS_BETTER
from app.services import challenges, datasets
from app.services.editing import ModelState
from app.services.workshops import INSTRUCTOR_WORKSPACE
from app.store import runs
from app.store.tables import ChallengeRecord, ModelRecord, RunRecord
from app.web.api.workshops import VisibleChallenge, architecture_visible
from app.web.deps import (
    DataWorkerDep,
    InstructorDep,
    InstructorWorkshop,
    PrincipalDep,
    SchedulerDep,
    SessionDep,
    SettingsDep,
)
from app.web.errors import status_of
from app.web.instructor_pages import dashboard_page
from app.web.pages import FormDep, redirect_to
from app.web.templating import render

router = APIRouter(include_in_schema=False)


def _number(form: Any, name: str, kind: type = int) -> Any:
    value = form.get(name)
    if value in (None, ""):
        return None
    try:
        return kind(value)
    except ValueError:
        raise UserError(f"Invalid value received for `{name}`. Expected a number. Received: {name}={value!r}"[:200],
                        field=name) from None


@router.post("/workshops/{workshop_id}/challenges", name="create_challenge_page")
def create_challenge(request: Request, form: FormDep, workshop: InstructorWorkshop, session: SessionDep,
                     settings: SettingsDep, worker: DataWorkerDep, scheduler: SchedulerDep) -> Response:
    try:
        budget = {k: v for k in ("params", "epochs", "submissions") if (v := _number(form, k)) is not None}
        chosen = str(form.get("dataset") or "")
        if chosen.startswith("builtin:"):  # a built-in on offer, added to the instructor's workspace first
            dataset_id: int | None = datasets.add_builtin(session, settings, worker, INSTRUCTOR_WORKSPACE,
                                                          chosen.removeprefix("builtin:"), None, None).id
        else:
            dataset_id = _number({"dataset": chosen}, "dataset")
        challenge = challenges.create_challenge(
            session, settings, worker, workshop, dataset_id=dataset_id, metric=form.get("metric"),
            budget=budget, target=_number(form, "target", float), title=form.get("title") or None)
    except UserError as error:
        return dashboard_page(request, session, scheduler, workshop, error, status_of(error))
    request.app.state.event_hub.announce("challenge")
    return redirect_to(request, request.app.url_path_for("challenge", challenge_id=str(challenge.id)))


def _board(request: Request, session: Any, challenge: ChallengeRecord, who: Any, error: UserError | None = None,
           result: Any = None) -> Response:
    board = challenges.board(session, challenge)
    eligible: list[RunRecord] = []
    left = None
    if who.member is not None:
        eligible = list(session.scalars(select(RunRecord).where(
            RunRecord.workspace_id == who.workspace_id, RunRecord.dataset_id == challenge.dataset_id,
            RunRecord.state == RunState.COMPLETED).order_by(RunRecord.id.desc()).limit(30)))
        left = challenges.submissions_left(session, challenge, who.member.participant_id)
    points = [{"x": e["params"], "y": e["score"], "best": e["id"] == board["smallest_reaching_target"],
               "label": f"{e['display_name']}: {e['score']:.4g} with {e['params']:,} parameters"}
              for e in board["entries"] if e["score"] is not None]
    context = {"challenge": challenge, "board": board, "points": points, "eligible": eligible, "left": left,
               "who": who, "show_architecture": architecture_visible(who, challenge), "error": error,
               "result": result, "higher_is_better": challenge.metric in HIGHER_IS_BETTER}
    return render(request, "challenge.html", context, status_code=status_of(error) if error else 200)


@router.get("/challenges/{challenge_id}", response_class=HTMLResponse, name="challenge")
def challenge_page(request: Request, challenge: VisibleChallenge, who: PrincipalDep, session: SessionDep) -> Response:
    return _board(request, session, challenge, who)


@router.post("/challenges/{challenge_id}/submit", name="submit_to_challenge")
def submit(request: Request, form: FormDep, challenge: VisibleChallenge, who: PrincipalDep, session: SessionDep,
           settings: SettingsDep, scheduler: SchedulerDep, worker: DataWorkerDep) -> Response:
    try:
        if who.member is None:
            raise Forbidden("Only participants submit runs to a challenge.")
        run = runs.get_run(session, who.workspace_id, _number(form, "run_id") or 0)
        entry = challenges.submit(session, settings, scheduler, worker, challenge, who.member, run)
    except UserError as error:
        return _board(request, session, challenge, who, error)
    request.app.state.event_hub.announce("submission")
    return _board(request, session, challenge, who, result=entry)


@router.post("/challenges/{challenge_id}/close", name="close_challenge_page")
def close(request: Request, who: InstructorDep, form: FormDep, challenge: VisibleChallenge,
          session: SessionDep) -> Response:
    challenges.close_challenge(session, challenge)
    return redirect_to(request, request.app.url_path_for("challenge", challenge_id=str(challenge.id)))


@router.get("/challenges/{challenge_id}/entries/{entry_id}", response_class=HTMLResponse, name="challenge_entry")
def entry_page(request: Request, entry_id: int, challenge: VisibleChallenge, who: PrincipalDep,
               session: SessionDep, settings: SettingsDep) -> Response:
    entry = challenges.get_entry(session, challenge, entry_id)
    if not architecture_visible(who, challenge):
        raise Forbidden("Entries' architectures are shown to everyone once the challenge closes.")
    graph = Graph.model_validate_json(entry.graph_json)
    record = ModelRecord(id=0, workspace_id="", name=entry.model_name, graph_json=entry.graph_json)
    board = challenges.board(session, challenge)
    author = next((e["display_name"] for e in board["entries"] if e["id"] == entry.id), "")
    state = ModelState(record, graph, validate(graph, settings.limits))
    return render(request, "challenge_entry.html", {"challenge": challenge, "entry": entry, "author": author,
                                                     "state": state})
