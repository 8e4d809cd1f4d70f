"""Workshop pages for everyone: joining, the instructor's sign-in, leaving, and a participant's workshop page.

Served in workshop mode only; the instructor's pages are in `instructor_pages.py`, the
challenge board in `challenge_pages.py`.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.core.errors import NotFound, UserError
from app.core.workshops import PIN_DIGITS, shown_code
from app.services import challenges, workshops
from app.store import runs, sessions
from app.web.api.workshops import guarded_guess
from app.web.auth import COOKIE_NAME, principal_of, session_ttl
from app.web.challenge_pages import router as challenge_router
from app.web.deps import PrincipalDep, SchedulerDep, SessionDep, SettingsDep
from app.web.errors import status_of
from app.web.instructor_pages import router as instructor_router
from app.web.pages import FormDep, redirect_to
from app.web.templating import render

router = APIRouter(include_in_schema=False)

NEW_PIN_COOKIE = "layerlab_new_pin"
NEW_PIN_SHOWN_S = 600  # the welcome page shows a new participant's PIN for 10 minutes, reloads included
NEW_PIN = re.compile(rf"(\d+)-(\d{{{PIN_DIGITS}}})")  # the participant's id, and their PIN


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


@router.get("/join", response_class=HTMLResponse, name="join")
def join_page(request: Request, session: SessionDep, code: str = "") -> Response:
    who = principal_of(request, session, None)  # this browser's session, if it has one (the page is public)
    if not code and who is not None and who.member is not None:  # joined already: their workshop, not the form
        return redirect_to(request, request.app.url_path_for("workshop_home"))
    return render(request, "join.html", {"values": {"code": shown_code(code.upper()[:16])}, "error": None})


@router.post("/join", name="join_workshop")
def join(request: Request, form: FormDep, session: SessionDep, settings: SettingsDep) -> Response:
    values = {name: _field(form, name) for name in ("code", "display_name", "pin")}
    try:
        joined = guarded_guess(request, lambda: workshops.join(session, values["code"], values["display_name"],
                                                               values["pin"] or None, session_ttl(settings)))
    except UserError as error:
        return render(request, "join.html", {"values": values, "error": error}, status_code=status_of(error))
    request.state.new_session_cookie = joined.secret
    request.app.state.event_hub.announce("joined")
    if joined.pin is None:  # came back with the PIN
        return redirect_to(request, request.app.url_path_for("home"))
    # Post, then redirect: the welcome page can be reloaded, and it shows the new PIN for a while (the server
    # keeps only its hash), from a cookie that only that page receives.
    welcome_path = request.app.url_path_for("welcome")
    response = redirect_to(request, welcome_path)
    response.set_cookie(NEW_PIN_COOKIE, f"{joined.participant.id}-{joined.pin}", max_age=NEW_PIN_SHOWN_S,
                        path=welcome_path, httponly=True, samesite="lax", secure=settings.secure_cookies)
    return response


@router.get("/welcome", response_class=HTMLResponse, name="welcome")
def welcome(request: Request, who: PrincipalDep) -> Response:
    if who.member is None:
        raise NotFound("This page welcomes workshop participants who have just joined.")
    # Only the PIN of whoever is signed in now: on a shared computer, not the one of someone who has left.
    shown = NEW_PIN.fullmatch(request.cookies.get(NEW_PIN_COOKIE, ""))
    pin = shown.group(2) if shown and int(shown.group(1)) == who.member.participant_id else None
    return render(request, "welcome.html", {"member": who.member, "pin": pin})


@router.get("/instructor/sign-in", response_class=HTMLResponse, name="instructor_sign_in")
def sign_in_page(request: Request) -> Response:
    return render(request, "instructor_sign_in.html", {"error": None})


@router.post("/instructor/sign-in", name="instructor_sign_in_post")
def sign_in(request: Request, form: FormDep, session: SessionDep, settings: SettingsDep) -> Response:
    try:
        secret = guarded_guess(request, lambda: workshops.sign_in_instructor(
            session, settings, form.get("password"), session_ttl(settings)), door="instructor")
    except UserError as error:
        return render(request, "instructor_sign_in.html", {"error": error}, status_code=status_of(error))
    request.state.new_session_cookie = secret
    return redirect_to(request, request.app.url_path_for("workshops"))


@router.post("/logout", name="logout")
def logout(request: Request, form: FormDep, session: SessionDep) -> Response:
    """End this browser's session; a participant comes back with the code, their name and PIN."""
    secret = request.cookies.get(COOKIE_NAME)
    if secret:
        sessions.revoke(session, secret)
    request.state.session_ended = True
    return redirect_to(request, request.app.url_path_for("join"))


@router.get("/workshop", response_class=HTMLResponse, name="workshop_home")
def workshop_home(request: Request, who: PrincipalDep, session: SessionDep, scheduler: SchedulerDep) -> Response:
    """A participant's view of their workshop: its limits, the examples to copy, the challenges, the queue."""
    if who.member is None:
        raise NotFound("This page is for workshop participants; the instructor's pages are under Workshops.")
    member = who.member
    waiting = [(run, scheduler.queue_position(session, run))
               for run in runs.list_runs(session, who.workspace_id, limit=20) if run.state == "queued"]
    context = {"member": member, "examples": workshops.examples(session, member.workshop_id),
               "challenges": challenges.challenges_of(session, member.workshop_id), "waiting": waiting}
    return render(request, "workshop_home.html", context)


@router.post("/workshop/examples/{example_id}/copy", name="copy_example")
def copy_example(request: Request, example_id: int, form: FormDep, who: PrincipalDep, session: SessionDep,
                 settings: SettingsDep) -> Response:
    workshop_id = who.member.workshop_id if who.member else None
    if workshop_id is None:
        raise NotFound("Examples are copied by workshop participants.")
    model = workshops.copy_example(session, settings, who.workspace_id,
                                   workshops.get_example(session, workshop_id, example_id))
    return redirect_to(request, request.app.url_path_for("editor", model_id=str(model.id)))


router.include_router(instructor_router)
router.include_router(challenge_router)
