"""What the instructor's dashboard costs as the room grows.

Run from the repository root: `.venv/bin/python bench/workshop_dashboard.py [--participants 200]`.

A workshop-mode app on a fresh SQLite file is filled directly through the store: N participants,
each with 4 finished runs (8 epochs of events each, a test score) plus, for a third of them, a run
training and, for another third, a run waiting. Then it times, in one process and one run:
  - baseline: GET /api/v1/me (a request that resolves the session and answers at once),
  - GET /workshops/{id}/room (the fragment the dashboard fetches on every change),
  - GET /api/v1/workshops/{id}/participants,
each 40 times, and prints p50/p95 and their ratio against the baseline, for 20, 60 and N participants.
No training runs: the runs are written as finished, so only the dashboard's own reading is measured.
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import Settings
from app.main import create_app
from app.store.tables import Participant, RunEvent, RunRecord, utcnow

PASSWORD = "benchmark password"
REPEATS = 40


def fill(app, server: TestClient, workshop: dict, start: int, count: int) -> None:
    """Participants `start`..`start+count-1` join; their runs and epochs are written straight to the store."""
    joined = []
    for i in range(start, start + count):
        response = server.post("/api/v1/workshops/join", json={"code": workshop["join_code"],
                                                               "display_name": f"Participant {i:03d}"})
        assert response.status_code == 201, response.text
        joined.append((i, response.json()["participant_id"]))
    with app.state.sessions() as db:
        for i, participant_id in joined:
            workspace = db.scalar(select(Participant.workspace_id).where(Participant.id == participant_id))
            states = ["completed"] * 4 + (["running"] if i % 3 == 0 else ["queued"] if i % 3 == 1 else [])
            for n, state in enumerate(states):
                run = RunRecord(workspace_id=workspace, model_name=f"Net {n}", graph_json="{}", dataset_name="Digits",
                                dataset_folder="builtin/x", config_json=json.dumps({"epochs": 8}), state=state,
                                epochs_done=8 if state == "completed" else 2, params=3000 + 100 * n,
                                started_at=utcnow() if state != "queued" else None)
                if state == "completed":
                    run.set_evaluation({"accuracy": 0.8 + 0.01 * ((i + n) % 15), "loss": 0.5})
                db.add(run)
                db.flush()
                for epoch in range(1, run.epochs_done + 1):
                    db.add(RunEvent(run_id=run.id, type="epoch", data_json=json.dumps(
                        {"epoch": epoch, "logs": {"loss": 1 / epoch, "val_accuracy": 0.5 + 0.05 * epoch}})))
        db.commit()


def timed(client: TestClient, path: str) -> list[float]:
    times = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return sorted(times)


def p95(values: list[float]) -> float:
    return values[int(0.95 * (len(values) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=200)
    largest = parser.parse_args().participants
    settings = Settings(data_dir=Path(tempfile.mkdtemp()), mode="workshop", instructor_password=PASSWORD,
                        join_attempts_per_minute=100_000, max_running_runs=1000)
    app = create_app(settings)
    app.state.inspector.start = lambda: None
    figures: dict[str, dict[str, float]] = {}
    with TestClient(app) as server:
        token = server.post("/api/v1/instructor/session", json={"password": PASSWORD}).json()["token"]
        instructor = TestClient(app, headers={"Authorization": f"Bearer {token}"})
        workshop = instructor.post("/api/v1/workshops", json={"name": "Bench"}).json()
        app.state.scheduler.dispatch = lambda: None  # the written runs stay as written
        filled = 0
        for size in sorted({20, 60, largest}):
            fill(app, server, workshop, filled, size - filled)
            filled = size
            base = timed(instructor, "/api/v1/me")
            room = timed(instructor, f"/workshops/{workshop['id']}/room")
            people = timed(instructor, f"/api/v1/workshops/{workshop['id']}/participants")
            row = {"baseline_p50_ms": statistics.median(base), "baseline_p95_ms": p95(base),
                   "room_p50_ms": statistics.median(room), "room_p95_ms": p95(room),
                   "participants_api_p50_ms": statistics.median(people), "participants_api_p95_ms": p95(people)}
            row["room_p50_ratio"] = row["room_p50_ms"] / row["baseline_p50_ms"]
            figures[str(size)] = {k: round(v, 2) for k, v in row.items()}
            print(f"{size:4d} participants: room p50/p95 {row['room_p50_ms']:.1f}/{row['room_p95_ms']:.1f} ms "
                  f"(x{row['room_p50_ratio']:.1f} the baseline's {row['baseline_p50_ms']:.1f} ms); participants "
                  f"API p50/p95 {row['participants_api_p50_ms']:.1f}/{row['participants_api_p95_ms']:.1f} ms")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
