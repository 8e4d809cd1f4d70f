"""The schema comes from Alembic migrations, on SQLite and on PostgreSQL alike: a new database gets exactly the
tables the code declares, and a database made before migrations is upgraded in place with its rows kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text

from app.store.migrations.first_schema import first_schema
from app.store.schema import current_revision, head_revision, upgrade_database
from app.store.tables import Base

# Columns that versions before migrations added to the runs table one by one
LATER_COLUMNS = ("name", "notes", "params", "parent_run_id")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'layerlab.db'}")
    else:
        engine = create_engine(request.getfixturevalue("postgres").new_database())
    yield engine
    engine.dispose()


def test_a_new_database_gets_exactly_the_declared_tables_through_the_migrations(engine):
    assert upgrade_database(engine) == [f"upgraded from an empty database to {head_revision()}"]
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    assert upgrade_database(engine) == []  # nothing left to do


def test_a_database_made_before_migrations_is_upgraded_in_place_and_keeps_its_rows(engine):
    old = first_schema()  # the tables as the last version before migrations made them...
    old.create_all(engine)
    with engine.begin() as connection:
        for column in LATER_COLUMNS:  # ...from an older one still, before these columns existed
            connection.execute(text(f"ALTER TABLE runs DROP COLUMN {column}"))
        connection.execute(text("INSERT INTO workspaces (id, created_at) VALUES ('w1', '2026-01-01')"))
        connection.execute(text("INSERT INTO runs (workspace_id, model_name, graph_json, dataset_name, "
                                "dataset_folder, config_json, state, epochs_done, resume, created_at) "
                                "VALUES ('w1', 'Net', '{}', 'data', 'f', '{}', 'completed', 3, false, "
                                "'2026-01-01')"))
    done = upgrade_database(engine)
    assert done[:len(LATER_COLUMNS)] == [f"added runs.{column}" for column in LATER_COLUMNS]
    assert "stamped a database made before migrations as 0001" in done
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        row = connection.execute(text(f"SELECT model_name, epochs_done, {', '.join(LATER_COLUMNS)} FROM runs")).one()
        assert tuple(row) == ("Net", 3, None, None, None, None)
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    assert upgrade_database(engine) == []
