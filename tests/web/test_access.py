"""Every route in the app's route table, asked without a session, with a participant's and with the instructor's.

In workshop mode nothing but the ways in (join, instructor sign-in), the health check and the static
files answers without a session, the API documentation and event streams included; a participant
gets 403 from every instructor route. In personal mode, nothing that belongs to a workspace is served
without one. New routes are covered as soon as they are added: the walk reads the route table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route

from app.config import Settings
from app.main import create_app
from app.web import deps
from tests.browser_like import ORIGIN, BrowserLikeClient

PASSWORD = "a long enough password"
WORKSHOP_PUBLIC = {("GET", "/join"), ("POST", "/join"), ("GET", "/instructor/sign-in"),
                   ("POST", "/instructor/sign-in"), ("GET", "/healthz"), ("POST", "/api/v1/workshops/join"),
                   ("POST", "/api/v1/instructor/session")}
# Personal mode: what a first visit may see (nothing of anyone's), and the creation of a workspace.
PERSONAL_PUBLIC = {("GET", "/"), ("GET", "/healthz"), ("GET", "/docs"), ("GET", "/openapi.json"),
                   ("GET", "/api/v1/catalog"), ("GET", "/api/v1/starters"), ("GET", "/api/v1/datasets/builtin"),
                   ("GET", "/api/v1/training-settings"), ("POST", "/api/v1/workspaces"), ("POST", "/models"),
                   ("GET", "/runs")}


def endpoints(app) -> Iterator[tuple[str, str, APIRoute | None]]:
    """(method, path with every parameter filled in, route) for each route; 1 stands for every id."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, Mount):
            yield "GET", "/static/app.css", None
            continue
        if not isinstance(route, Route) or context.path is None:
            continue
        path = re.sub(r"\{[^}]+\}", "1", context.path)
        for method in sorted(context.methods or ()):
            if method != "HEAD":
                yield method, path, route if isinstance(route, APIRoute) else None


def needs_instructor(route: APIRoute | None) -> bool:
    def walk(dependant) -> bool:
        return dependant.call is deps.instructor or any(walk(d) for d in dependant.dependencies)
    return route is not None and walk(route.dependant)


def call(client: TestClient, method: str, path: str):
    return client.request(method, path, json={} if method in ("POST", "PUT", "PATCH") else None,
                          follow_redirects=False, headers={"Accept": "text/event-stream"} if path.endswith("/events")
                          else None)


@pytest.fixture(scope="module")
def workshop_app(tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("access-workshop"), mode="workshop",
                        instructor_password=PASSWORD, join_attempts_per_minute=10_000)
    app = create_app(settings)
    app.state.inspector.start = lambda: None  # no TensorFlow needed to check doors
    with TestClient(app):
        yield app


def test_workshop_mode_refuses_every_route_without_a_session(workshop_app):
    anonymous = TestClient(workshop_app, headers={"Origin": ORIGIN})  # past the cross-site check, to the gate
    checked = 0
    for method, path, _ in endpoints(workshop_app):
        response = call(anonymous, method, path)
        if (method, path) in WORKSHOP_PUBLIC or path.startswith("/static/"):
            # Answered by the route itself (a wrong password is still a 401), not turned away at the door.
            assert "serves a workshop" not in response.text and response.status_code != 303, (method, path)
            continue
        checked += 1
        if method == "GET" and not path.startswith("/api/"):
            assert response.status_code == 303 and response.headers["location"] == "/join", (method, path)
        else:
            assert response.status_code == 401, (method, path, response.status_code, response.text[:200])
            assert "join" in (response.json()["detail"] if path.startswith("/api/") else response.text)
    assert checked > 100  # the walk really went through the table


def test_a_participant_gets_403_from_every_instructor_route(workshop_app):
    server = TestClient(workshop_app)
    token = server.post("/api/v1/instructor/session", json={"password": PASSWORD}).json()["token"]
    instructor = TestClient(workshop_app, headers={"Authorization": f"Bearer {token}"})
    workshop = instructor.post("/api/v1/workshops", json={"name": "Doors"}).json()
    joined = server.post("/api/v1/workshops/join", json={"code": workshop["join_code"], "display_name": "Pat"})
    participant = TestClient(workshop_app, headers={"Authorization": f"Bearer {joined.json()['token']}"})
    instructor_routes = [(m, p) for m, p, r in endpoints(workshop_app) if needs_instructor(r)]
    assert len(instructor_routes) > 15
    for method, path in instructor_routes:
        response = call(participant, method, path)
        assert response.status_code == 403, (method, path, response.status_code)
        assert "instructor" in (response.json()["detail"] if path.startswith("/api/") else response.text)
    # ...and the documentation and schema are there for everyone with a session.
    assert participant.get("/openapi.json").status_code == 200
    assert participant.get("/docs").status_code == 200


def test_a_bad_bearer_token_or_cookie_gets_nowhere(workshop_app):
    forged = TestClient(workshop_app, headers={"Authorization": "Bearer not-a-real-token"})
    assert forged.get("/api/v1/models").status_code == 401
    assert "instructor" in forged.get("/api/v1/models").json()["detail"]
    tampered = TestClient(workshop_app, cookies={"layerlab_session": "tampered"})
    assert tampered.get("/runs", follow_redirects=False).headers["location"] == "/join"


def test_personal_mode_serves_nothing_of_a_workspace_without_one(tmp_path):
    app = create_app(Settings(data_dir=tmp_path))
    app.state.inspector.start = lambda: None
    with TestClient(app) as anonymous:
        for method, path, _ in endpoints(app):
            if (method, path) in PERSONAL_PUBLIC or path.startswith("/static/"):
                continue
            response = call(anonymous, method, path)
            assert response.status_code in (401, 403, 404), (method, path, response.status_code)
        # The workshop routes are not served at all in personal mode.
        assert anonymous.post("/api/v1/instructor/session", json={"password": PASSWORD}).status_code == 404
        assert anonymous.get("/join").status_code == 404


def test_a_cookie_session_page_form_without_its_csrf_token_is_refused(workshop_app):
    browser = BrowserLikeClient(workshop_app)
    server = TestClient(workshop_app)
    token = server.post("/api/v1/instructor/session", json={"password": PASSWORD}).json()["token"]
    code = TestClient(workshop_app, headers={"Authorization": f"Bearer {token}"}).post(
        "/api/v1/workshops", json={"name": "Forms"}).json()["join_code"]
    joined = browser.post("/join", data={"code": code, "display_name": "Quinn"})
    assert joined.status_code == 200 and joined.url.path == "/welcome" and "Your PIN" in joined.text
    pin = re.search(r'<p class="pin" id="pin">(\d{6})</p>', joined.text)
    assert pin and pin.group(1) in browser.get("/welcome").text  # a reload shows it again, for a while
    set_pin = next(c for c in joined.history[0].headers.get_list("set-cookie") if c.startswith("layerlab_new_pin="))
    assert "Path=/welcome" in set_pin and "Max-Age=600" in set_pin and "HttpOnly" in set_pin
    other = BrowserLikeClient(workshop_app)  # someone else, later on a computer where Quinn's PIN lingers
    assert other.post("/join", data={"code": code, "display_name": "Rae"}).url.path == "/welcome"
    lingering = next(c for c in browser.cookies.jar if c.name == "layerlab_new_pin")
    other.cookies.set(lingering.name, lingering.value, domain=lingering.domain, path=lingering.path)
    assert pin.group(1) not in other.get("/welcome").text  # only the PIN of whoever is signed in
    browser.cookies.delete("layerlab_new_pin")
    later = browser.get("/welcome").text  # once it has expired: the page says so, and the session goes on
    assert 'id="pin-gone"' in later and pin.group(1) not in later
    back = browser.get("/join", follow_redirects=False)  # joined already: the workshop, not the form again
    assert back.status_code == 303 and back.headers["location"] == "/workshop"
    assert browser.get(f"/join?code={code}").status_code == 200  # a code of another workshop still opens the form
    models_before = browser.get("/api/v1/models").json()
    same_cookie_no_token = TestClient(workshop_app, cookies=dict(browser.cookies), headers={"Origin": ORIGIN})
    forged = same_cookie_no_token.post("/models", data={"name": "Sneaky", "starter": "dense"})
    assert forged.status_code == 403 and "security token" in forged.text
    assert browser.get("/api/v1/models").json() == models_before
    made = browser.post("/models", data={"name": "Honest", "starter": "dense"}, follow_redirects=False)
    assert made.status_code == 303


def test_every_page_of_a_workshop_carries_the_security_headers(workshop_app):
    server = TestClient(workshop_app)
    token = server.post("/api/v1/instructor/session", json={"password": PASSWORD}).json()["token"]
    instructor = TestClient(workshop_app, headers={"Authorization": f"Bearer {token}"})
    workshop = instructor.post("/api/v1/workshops", json={"name": "Headers"}).json()
    pages = ["/join", "/instructor/sign-in", "/workshops", f"/workshops/{workshop['id']}",
             f"/workshops/{workshop['id']}/projector", f"/workshops/{workshop['id']}/qr.svg", "/", "/runs",
             "/healthz"]
    for path in pages:
        response = instructor.get(path)
        assert response.status_code == 200, path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
        assert response.headers["x-content-type-options"] == "nosniff", path
    assert anonymous_headers(workshop_app)


def anonymous_headers(app) -> bool:
    response = TestClient(app).get("/api/v1/models")
    return response.status_code == 401 and response.headers["x-frame-options"] == "DENY"


def test_workshop_mode_refuses_to_start_without_a_long_enough_password(tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="instructor password"):
        Settings(data_dir=tmp_path, mode="workshop")
    with pytest.raises(ValidationError, match="at least 12 characters"):
        Settings(data_dir=tmp_path, mode="workshop", instructor_password="short")
    from app.core.passwords import hash_password

    hashed = Settings(data_dir=tmp_path, mode="workshop", instructor_password_hash=hash_password(PASSWORD))
    assert hashed.workshop_mode


def test_joining_refuses_bad_names_wrong_codes_and_pins_and_slows_down_guessing(tmp_path):
    app = create_app(Settings(data_dir=tmp_path, mode="workshop", instructor_password=PASSWORD,
                              join_attempts_per_minute=4))
    app.state.inspector.start = lambda: None
    with TestClient(app) as server:
        token = server.post("/api/v1/instructor/session", json={"password": PASSWORD}).json()["token"]
        code = server.post("/api/v1/workshops", json={"name": "Names"},
                           headers={"Authorization": f"Bearer {token}"}).json()["join_code"]

        def join(**body):
            return server.post("/api/v1/workshops/join", json={"code": code, **body})

        html = join(display_name="<script>alert(1)</script>")
        assert html.status_code == 422 and "display_name" in html.json()["detail"]
        assert join(display_name="   ").status_code == 422
        first = join(display_name="Ada Lovelace")
        assert first.status_code == 201
        taken = join(display_name="ada  lovelace")  # the same name, whatever the case and spacing
        assert taken.status_code == 409 and "PIN" in taken.json()["detail"]
        # Wrong codes and PINs count towards the address's limit; right answers do not.
        assert server.post("/api/v1/workshops/join", json={"code": "WRONG123", "display_name": "X"}).status_code == 404
        assert join(display_name="Ada Lovelace", pin="000000" if first.json()["pin"] != "000000" else "111111"
                    ).status_code == 401
        assert server.post("/api/v1/workshops/join", json={"code": "WRONG124", "display_name": "X"}).status_code == 404
        assert server.post("/api/v1/workshops/join", json={"code": "WRONG125", "display_name": "X"}).status_code == 404
        limited = join(display_name="Ada Lovelace", pin=first.json()["pin"])
        assert limited.status_code == 429 and limited.headers["retry-after"]
        assert "Too many wrong codes or PINs from this address" in limited.json()["detail"]
        # The instructor's door counts apart: a room that mistypes its code does not lock its instructor out.
        assert server.post("/api/v1/instructor/session", json={"password": PASSWORD}).status_code == 201
        for _ in range(4):
            assert server.post("/api/v1/instructor/session", json={"password": "guessing it here"}).status_code == 401
        locked = server.post("/api/v1/instructor/session", json={"password": PASSWORD})
        assert locked.status_code == 429 and "Too many wrong passwords" in locked.json()["detail"]
        with app.state.sessions() as db:
            from sqlalchemy import func, select

            from app.store.tables import Participant
            assert db.scalar(select(func.count()).select_from(Participant)) == 1  # nothing else was stored
