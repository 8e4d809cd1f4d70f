"""Engine and session factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.store.schema import upgrade_database

POOL_TIMEOUT_S = 10  # a request waits this long for a free connection before it is told to retry


def make_engine(url: str, pool_size: int = 10, busy_timeout_s: float = 5.0, upgrade: bool = True) -> Engine:
    """The engine for `url`, its schema brought up to date unless `upgrade` is off (DatabaseUnreachable when
    the database cannot be reached)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout_s},
                               pool_size=pool_size,
                               max_overflow=pool_size, pool_timeout=POOL_TIMEOUT_S)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
    else:
        try:
            engine = create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size,
                                   pool_timeout=POOL_TIMEOUT_S)
        except ModuleNotFoundError as error:
            raise DatabaseUnreachable(f"the database driver {error.name} is not installed. For PostgreSQL, "
                                      "install LayerLab with: pip install -e \".[postgres]\"") from error
    if upgrade:
        apply_migrations(engine)
    return engine


def apply_migrations(engine: Engine) -> list[str]:
    """Apply the migrations the database lacks (what was done, in words), or say why it cannot be reached."""
    try:
        return upgrade_database(engine)
    except OperationalError as error:
        reason = str(error.orig or error).strip().splitlines()[0]
        raise DatabaseUnreachable(f"cannot reach the database {engine.url.render_as_string(hide_password=True)} "
                                  f"({reason}). Start it, or fix LAYERLAB_DATABASE_URL.") from error


class DatabaseUnreachable(RuntimeError):
    """The database could not be reached at start-up; the message says which one and why."""


def release_connection(session: Session) -> None:
    """End the session's transaction, so that its database connection goes back to the pool while the
    request waits for a worker; the records it loaded stay usable (sessions do not expire on commit)."""
    session.commit()


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE touched (SQLAlchemy types its result too loosely to say)."""
    return int(cast("CursorResult[Any]", result).rowcount or 0)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
