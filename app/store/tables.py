"""Database tables: workspaces, their models and runs, searches, and workshops."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from app.core.runs import test_metrics

# The largest id a row can have: ids are INTEGER columns, 32-bit on PostgreSQL (64-bit on SQLite). A larger id in
# a request is an unknown id (404), never a query the database refuses.
MAX_ID = 2**31 - 1


def is_possible_id(value: int) -> bool:
    return 0 < value <= MAX_ID


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A moment in UTC, read back as written: SQLite keeps no time zone, so what it returns is marked UTC again
    (PostgreSQL's timestamptz comes back aware already). Every timestamp the API gives then ends in +00:00."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class Base(DeclarativeBase):
    pass


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class SessionRecord(Base):
    """A browser session (its cookie) or an API token: only the secret's SHA-256 is kept."""

    __tablename__ = "sessions"

    secret_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # browser or token
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class ModelRecord(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    graph_json: Mapped[str] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class GraphHistory(Base):
    """Earlier graphs of a model, newest last, for undo."""

    __tablename__ = "graph_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    graph_json: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class DatasetRecord(Base):
    """A dataset in a workspace: a built-in with its parameters, or an upload."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))  # builtin, csv, npz, images
    spec_json: Mapped[str] = mapped_column(Text)  # what to prepare: key, params, options
    state: Mapped[str] = mapped_column(String(16), default="preparing")  # preparing, ready, failed
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    folder: Mapped[str] = mapped_column(String(400))  # relative to the data directory
    meta_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A challenge's public dataset: listed in every workspace of this workshop (added later, so nullable).
    shared_workshop_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ModelDataset(Base):
    """Which dataset a model is attached to (one at most)."""

    __tablename__ = "model_datasets"

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)


class RunRecord(Base):
    """A training run: everything needed to rerun it is copied in when it starts."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"), nullable=True)
    model_name: Mapped[str] = mapped_column(String(64))
    graph_json: Mapped[str] = mapped_column(Text)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True)
    dataset_name: Mapped[str] = mapped_column(String(64))
    dataset_folder: Mapped[str] = mapped_column(String(400))
    config_json: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    epochs_done: Mapped[int] = mapped_column(Integer, default=0)
    resume: Mapped[bool] = mapped_column(default=False)
    evaluation_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Added before migrations, so nullable (see app/store/schema.py).
    name: Mapped[str | None] = mapped_column(String(80), nullable=True)  # None: described by what changed
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    params: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the model's parameter count
    # The run this one was made from (an applied suggestion's variant), when not from its model's previous run.
    parent_run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # test_metrics() of the evaluation: lists and dashboards read this instead of the whole test report.
    test_scores_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    def set_evaluation(self, evaluation: dict[str, Any]) -> None:
        self.evaluation_json = json.dumps(evaluation)
        self.test_scores_json = json.dumps(test_metrics(evaluation))

    @property
    def test_scores(self) -> dict[str, float]:
        return json.loads(self.test_scores_json) if self.test_scores_json else {}

    @property
    def evaluation(self) -> dict[str, Any] | None:
        """The parsed test report (read-only), parsed once per loaded record: it can hold thousands of
        numbers (predictions, a decision boundary) and lists read it several times per run."""
        if not self.evaluation_json:
            return None
        cached = self.__dict__.get("_parsed_evaluation")
        if cached is None or cached[0] is not self.evaluation_json:
            cached = (self.evaluation_json, json.loads(self.evaluation_json))
            self.__dict__["_parsed_evaluation"] = cached
        return cached[1]


class RunEvent(Base):
    """Append-only progress of a run; the id doubles as the SSE event id."""

    __tablename__ = "run_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(16))
    data_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class SearchRecord(Base):
    """A variant search of a model: its axes and budget; its trials become ordinary runs."""

    __tablename__ = "searches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"), nullable=True)
    model_name: Mapped[str] = mapped_column(String(64))
    graph_json: Mapped[str] = mapped_column(Text)       # the model when the search began
    config_json: Mapped[str] = mapped_column(Text)      # the settings every trial starts from
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True)
    spec_json: Mapped[str] = mapped_column(Text)        # axes, budget, strategy, metric
    state: Mapped[str] = mapped_column(String(16), default="running", index=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class SearchTrial(Base):
    """One point of a search: its parameters, and the run that trains it once there is room for it."""

    __tablename__ = "search_trials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)        # 1, 2, 3... in the order proposed
    params_json: Mapped[str] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), nullable=True,
                                               index=True)
    state: Mapped[str] = mapped_column(String(16), default="waiting")  # waiting, its run's state, or failed
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    value: Mapped[float | None] = mapped_column(nullable=True)  # the search's metric, once its run has ended


class WorkshopRecord(Base):
    """A workshop: participants join it with its code; the instructor sets what they may use."""

    __tablename__ = "workshops"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80))
    join_code: Mapped[str] = mapped_column(String(16), unique=True, index=True)
    datasets_json: Mapped[str] = mapped_column(Text)  # the built-in dataset keys on offer
    limits_json: Mapped[str] = mapped_column(Text)    # WorkshopLimits
    state: Mapped[str] = mapped_column(String(16), default="open")  # open, closed
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class Participant(Base):
    """Someone who joined a workshop: a display name, a workspace of their own, a PIN to come back with."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("workshop_id", "name_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workshop_id: Mapped[int] = mapped_column(ForeignKey("workshops.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), unique=True)
    display_name: Mapped[str] = mapped_column(String(40))
    name_key: Mapped[str] = mapped_column(String(40))  # the name case-folded: "Ada" and "ada" are one name
    pin_hash: Mapped[str] = mapped_column(String(200))
    joined_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class WorkshopExample(Base):
    """A model the instructor pinned for everyone in the workshop to copy."""

    __tablename__ = "workshop_examples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workshop_id: Mapped[int] = mapped_column(ForeignKey("workshops.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(40))
    graph_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ChallengeRecord(Base):
    """A class challenge: a public dataset (train and validation) and a hidden test split kept on the server."""

    __tablename__ = "challenges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workshop_id: Mapped[int] = mapped_column(ForeignKey("workshops.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(80))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True)
    hidden_folder: Mapped[str] = mapped_column(String(400))  # relative to the data directory; never served
    metric: Mapped[str] = mapped_column(String(16))
    budget_json: Mapped[str] = mapped_column(Text)
    target: Mapped[float | None] = mapped_column(nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="open")  # open, closed
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class Submission(Base):
    """A participant's finished run entered in a challenge, with its score on the hidden split."""

    __tablename__ = "challenge_submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), nullable=True)
    model_name: Mapped[str] = mapped_column(String(64))
    graph_json: Mapped[str] = mapped_column(Text)  # the architecture as submitted, kept if the run is deleted
    params: Mapped[int] = mapped_column(Integer)
    epochs: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="evaluating")  # evaluating, scored, failed
    score: Mapped[float | None] = mapped_column(nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
