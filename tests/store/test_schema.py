"""A database made by an earlier version gets the new columns, and keeps its rows."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from app.store.schema import create_or_upgrade

NEW_COLUMNS = ("name", "notes", "params", "parent_run_id")


def test_missing_columns_are_added_and_rows_kept(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    create_or_upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO workspaces (id, created_at) VALUES ('w1', '2026-01-01')"))
        connection.execute(text("INSERT INTO runs (workspace_id, model_name, graph_json, dataset_name, "
                                "dataset_folder, config_json, state, epochs_done, resume, created_at) "
                                "VALUES ('w1', 'Net', '{}', 'data', 'f', '{}', 'completed', 3, 0, '2026-01-01')"))
        for column in NEW_COLUMNS:  # as the runs table was before these columns existed
            connection.execute(text(f"ALTER TABLE runs DROP COLUMN {column}"))
    assert create_or_upgrade(engine) == [f"runs.{column}" for column in NEW_COLUMNS]
    with engine.connect() as connection:
        row = connection.execute(text(f"SELECT model_name, epochs_done, {', '.join(NEW_COLUMNS)} FROM runs")).one()
    assert tuple(row) == ("Net", 3, None, None, None, None)
    assert create_or_upgrade(engine) == []  # nothing left to add
