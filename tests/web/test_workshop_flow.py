"""A whole workshop over the API: an instructor and three participants on one real server.

The instructor opens a workshop and a challenge on Digits; participants join, build and train
real Keras models, submit a run that is scored on the hidden test split, and the instructor sees
them on the dashboard, stops a run and closes the workshop.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.web.live_server import app_without_warm_up, attach, create_model, ok, start_run, wait_for_run

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"


def client_for(server: TestClient, token: str | None = None) -> TestClient:
    client = TestClient(server.app, headers={"Authorization": f"Bearer {token}"} if token else {})
    client.portal = server.portal  # the app's own event loop, as one uvicorn process would have
    return client


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir: Path = tmp_path_factory.mktemp("workshop")
    settings = Settings(data_dir=data_dir, mode="workshop", instructor_password=PASSWORD, max_running_runs=1,
                        join_attempts_per_minute=1000)
    with TestClient(app_without_warm_up(settings)) as server:
        yield server


@pytest.fixture(scope="module")
def instructor(room: TestClient) -> TestClient:
    token = ok(room.post("/api/v1/instructor/session", json={"password": PASSWORD}), 201)["token"]
    return client_for(room, token)


@pytest.fixture(scope="module")
def workshop(instructor: TestClient) -> dict:
    return ok(instructor.post("/api/v1/workshops", json={
        "name": "Morning group", "datasets": ["digits", "iris"],
        "limits": {"runs_at_once": 1, "max_epochs": 6, "max_params": 20_000}}), 201)


@pytest.fixture(scope="module")
def challenge(instructor: TestClient, workshop: dict) -> dict:
    source = ok(instructor.post("/api/v1/datasets", json={"key": "digits"}), 201)
    return ok(instructor.post(f"/api/v1/workshops/{workshop['id']}/challenges", json={
        "dataset_id": source["id"], "metric": "accuracy", "target": 0.8,
        "budget": {"params": 5_000, "epochs": 6, "submissions": 2}}), 201)


def join(room: TestClient, workshop: dict, name: str) -> tuple[TestClient, dict]:
    joined = ok(room.post("/api/v1/workshops/join", json={"code": workshop["join_code"].lower(),
                                                          "display_name": name}), 201)
    return client_for(room, joined["token"]), joined


def small_model_on(client: TestClient, dataset_id: int, name: str) -> dict:
    """The dense starter, made small enough for the budget: 64 -> 32 -> 10."""
    model = create_model(client, "dense", name)
    attach(client, model["id"], dataset_id, fit_output=True)
    layers = ok(client.get(f"/api/v1/models/{model['id']}"))["layers"]
    for layer in layers:
        if layer["type"] == "Dense" and layer["params"].get("units", 0) > 10:
            ok(client.patch(f"/api/v1/models/{model['id']}/layers/{layer['id']}", json={"params": {"units": 32}}))
    return model


def ok_page(response) -> str:
    assert response.status_code == 200, f"{response.status_code}: {response.text[:1000]}"
    return response.text


def people_id(instructor: TestClient, workshop: dict, name: str) -> int:
    people = ok(instructor.get(f"/api/v1/workshops/{workshop['id']}/participants"))
    return next(p["id"] for p in people if p["display_name"] == name)


def test_a_workshop_from_joining_to_closing(room, instructor, workshop, challenge):
    # Nothing is reachable without a session; the ways in are.
    assert room.get("/api/v1/models").status_code == 401
    assert room.get("/", follow_redirects=False).headers["location"] == "/join"
    assert room.post("/api/v1/workspaces").status_code == 401
    assert room.post("/api/v1/instructor/session", json={"password": "wrong password!"}).status_code == 401

    ada, ada_joined = join(room, workshop, "Ada")
    bob, _ = join(room, workshop, "Bob")
    cy, _ = join(room, workshop, "Cy")
    assert ada_joined["pin"].isdigit() and len(ada_joined["pin"]) == 6
    assert ok(ada.get("/api/v1/me"))["display_name"] == "Ada"

    # The challenge's data is in every participant's list, with its test split standing in for validation.
    listed = {d["id"]: d for d in ok(ada.get("/api/v1/datasets"))}
    shared = listed[challenge["dataset_id"]]
    sizes = shared["split_sizes"]
    assert sizes["test"] == sizes["val"]
    # Workshop limits: the datasets on offer and the epochs.
    refused = ada.post("/api/v1/datasets", json={"key": "wine"})
    assert refused.status_code == 422 and "offers" in refused.json()["detail"]
    model = small_model_on(ada, challenge["dataset_id"], "Small")
    too_long = ada.post(f"/api/v1/models/{model['id']}/runs", json={"epochs": 50})
    assert too_long.status_code == 422 and "at most 6 epochs" in too_long.json()["detail"]

    run = start_run(ada, model["id"], epochs=4)
    # Bob's run waits for the one training slot; the queue takes turns.
    bob_model = small_model_on(bob, challenge["dataset_id"], "Mine")
    bob_run = start_run(bob, bob_model["id"], epochs=6)
    queue = ok(instructor.get(f"/api/v1/workshops/{workshop['id']}/queue"))
    assert queue["slots"] == 1
    assert [w["display_name"] for w in queue["waiting"]] in (["Bob"], [])  # Bob waits, unless Ada already ended

    # A participant cannot see another's run, model or stream, nor call the instructor's endpoints.
    assert cy.get(f"/api/v1/runs/{run['id']}").status_code == 404
    assert cy.get(f"/api/v1/runs/{run['id']}/events").status_code == 404
    assert cy.get(f"/api/v1/models/{model['id']}").status_code == 404
    assert cy.get(f"/api/v1/runs/{run['id']}/model").status_code == 404
    assert cy.get(f"/api/v1/workshops/{workshop['id']}/participants").status_code == 403
    assert cy.post("/api/v1/workspaces").status_code == 403
    assert cy.delete(f"/api/v1/datasets/{challenge['dataset_id']}").status_code == 403

    finished = wait_for_run(ada, run["id"], timeout=180)
    assert finished["state"] == "completed"
    # The instructor stops Bob's run (queued or already training).
    ok(instructor.post(f"/api/v1/runs/{bob_run['id']}/stop"))
    assert wait_for_run(bob, bob_run["id"], timeout=120)["state"] in ("cancelled", "stopped")
    # ...but may not change it.
    assert instructor.delete(f"/api/v1/runs/{bob_run['id']}").status_code == 403

    # Ada submits; the score comes from the hidden split, and only the score.
    entry = ok(ada.post(f"/api/v1/challenges/{challenge['id']}/submissions", json={"run_id": run["id"]}), 201)
    assert entry["state"] == "scored" and 0.0 <= entry["score"] <= 1.0
    assert set(entry) == {"id", "run_id", "state", "score", "metric", "params", "reason", "submissions_left"}
    again = ada.post(f"/api/v1/challenges/{challenge['id']}/submissions", json={"run_id": run["id"]})
    assert again.status_code == 409
    assert cy.post(f"/api/v1/challenges/{challenge['id']}/submissions", json={"run_id": run["id"]}).status_code == 404

    # Over the budget: the dense starter as it comes has 8,970 parameters.
    big = create_model(cy, "dense", "Big")
    attach(cy, big["id"], challenge["dataset_id"], fit_output=True)
    big_run = wait_for_run(cy, start_run(cy, big["id"], epochs=1)["id"], timeout=180)
    over = cy.post(f"/api/v1/challenges/{challenge['id']}/submissions", json={"run_id": big_run["id"]})
    assert over.status_code == 422 and "allows up to 5,000" in over.json()["detail"]

    # The pages show the same: the instructor's dashboard and a participant's run, the board.
    dashboard = ok_page(instructor.get(f"/workshops/{workshop['id']}"))
    # The best runs' curves are named by who trained them and on which data (a room may use several sets).
    data_name = ok(instructor.get(f"/api/v1/runs/{run['id']}"))["dataset_name"]
    assert f"Ada · {data_name} (test" in dashboard
    looked_at = ok_page(instructor.get(f"/runs/{run['id']}"))
    assert "Small" in looked_at and 'id="run-code-link"' in looked_at and 'id="download-model"' in looked_at
    # What the instructor may not do to a participant's run is not offered (the server refuses it anyway).
    assert not any(f'id="{button}"' in looked_at for button in
                   ("delete-run-button", "train-again-button", "evaluate-button", "reuse-button", "run-details"))
    assert 'id="delete-run-button"' in ok_page(ada.get(f"/runs/{run['id']}"))  # its owner still may
    ada_page = f"/workshops/{workshop['id']}/participants/{people_id(instructor, workshop, 'Ada')}"
    assert "Small" in ok_page(instructor.get(ada_page))
    assert "Board" in ok_page(ada.get(f"/challenges/{challenge['id']}"))

    board = ok(bob.get(f"/api/v1/challenges/{challenge['id']}/board"))
    assert [(e["display_name"], e["score"]) for e in board["ranked"]] == [("Ada", entry["score"])]
    assert bob.get(f"/api/v1/challenges/{challenge['id']}/entries/{entry['id']}").status_code == 403
    assert ok(instructor.get(f"/api/v1/challenges/{challenge['id']}/entries/{entry['id']}"))["graph"]["nodes"]

    people = {p["display_name"]: p for p in ok(instructor.get(f"/api/v1/workshops/{workshop['id']}/participants"))}
    assert set(people) == {"Ada", "Bob", "Cy"}
    assert people["Ada"]["state"] == "finished" and people["Ada"]["best"]["run_id"] == run["id"]
    assert people["Cy"]["state"] == "finished" and people["Cy"]["runs"] == 1
    assert ok(instructor.get(f"/api/v1/runs/{run['id']}"))["state"] == "completed"  # any run, read-only

    # Pinned examples are copied into a participant's workspace.
    example = ok(instructor.post(f"/api/v1/workshops/{workshop['id']}/examples",
                                 json={"model_id": model["id"], "participant_id": people["Ada"]["id"]}), 201)
    again = ok(instructor.post(f"/api/v1/workshops/{workshop['id']}/examples",
                               json={"model_id": model["id"], "participant_id": people["Ada"]["id"]}), 201)
    assert again["id"] == example["id"]  # the same model, unchanged: one example, not two alike
    copied = ok(cy.post(f"/api/v1/workshops/{workshop['id']}/examples/{example['id']}/copy"), 201)
    assert copied["name"] == "Small" and ok(cy.get(f"/api/v1/models/{copied['id']}"))["layers"]

    # Closing: nobody new joins, participants keep read-only access, everyone sees the architectures.
    ok(instructor.post(f"/api/v1/workshops/{workshop['id']}/close"))
    assert room.post("/api/v1/workshops/join", json={"code": workshop["join_code"],
                                                     "display_name": "Dee"}).status_code == 409
    assert ada.get(f"/api/v1/runs/{run['id']}/model").status_code == 200
    assert 'id="delete-run-button"' not in ok_page(ada.get(f"/runs/{run['id']}"))  # read-only now
    blocked = ada.post("/api/v1/models", json={"name": "late", "starter": "dense"})
    assert blocked.status_code == 403 and "read-only" in blocked.json()["detail"]
    assert bob.get(f"/api/v1/challenges/{challenge['id']}/entries/{entry['id']}").status_code == 200
    closed = ada.post(f"/api/v1/challenges/{challenge['id']}/submissions", json={"run_id": run["id"]})
    assert closed.status_code == 403
    back = ok(room.post("/api/v1/workshops/join", json={"code": workshop["join_code"], "display_name": "ada",
                                                        "pin": ada_joined["pin"]}), 201)
    assert back["pin"] is None and ok(client_for(room, back["token"]).get("/api/v1/models"))


def test_the_hidden_split_never_leaves_the_server(room, instructor, challenge):
    """The public folder holds the training and validation splits only, and no answer names the hidden one."""
    import numpy as np

    from app.store.tables import ChallengeRecord, DatasetRecord

    data_dir = room.app.state.settings.data_dir
    with room.app.state.sessions() as db:
        hidden_folder = db.get(ChallengeRecord, challenge["id"]).hidden_folder
        public_folder = db.get(DatasetRecord, challenge["dataset_id"]).folder
    source = next(d for d in ok(instructor.get("/api/v1/datasets")) if d["source"] == "builtin")
    with np.load(data_dir / public_folder / "arrays.npz") as shown, \
            np.load(data_dir / hidden_folder / "arrays.npz") as hidden:
        assert np.array_equal(shown["x_test"], shown["x_val"]) and np.array_equal(shown["y_test"], shown["y_val"])
        assert len(hidden["y_test"]) == source["split_sizes"]["test"] > 0
        assert len(hidden["y_train"]) == len(hidden["y_val"]) == 0
        assert len(shown["y_train"]) + len(shown["y_val"]) == (source["split_sizes"]["train"]
                                                               + source["split_sizes"]["val"])
    answers = [instructor.get(f"/api/v1/datasets/{challenge['dataset_id']}").text,
               instructor.get(f"/api/v1/challenges/{challenge['id']}").text,
               instructor.get(f"/api/v1/challenges/{challenge['id']}/board").text,
               instructor.get("/openapi.json").text]
    secret_name = Path(hidden_folder).parts[-2]
    assert not any(secret_name in text for text in answers)
