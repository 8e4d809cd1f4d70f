"""Creating the tables, and bringing a database made by an earlier version up to date, with Alembic.

The migrations live in `app/store/migrations/versions`; the first (0001) is the schema LayerLab had when it
moved to Alembic. A database made before then has no `alembic_version` table: its tables are first brought to
that schema the way those versions upgraded (missing tables created, missing nullable columns added, rows
kept), then stamped 0001, then upgraded like any other. The same migrations run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, inspect, text

from app.store.migrations.first_schema import first_schema

MIGRATIONS = Path(__file__).parent / "migrations"
FIRST_REVISION = "0001"


def upgrade_database(engine: Engine) -> list[str]:
    """Apply every migration the database lacks; returns what was done, in words (empty: it was up to date)."""
    done: list[str] = []
    with engine.begin() as connection:
        config = _config(connection)
        current = MigrationContext.configure(connection).get_current_revision()
        if current is None and inspect(connection).get_table_names():
            done += [f"added {column}" for column in _add_missing(connection, first_schema())]
            command.stamp(config, FIRST_REVISION)
            current = FIRST_REVISION
            done.append(f"stamped a database made before migrations as {FIRST_REVISION}")
        head = ScriptDirectory.from_config(config).get_current_head()
        if current != head:
            command.upgrade(config, "head")
            done.append(f"upgraded from {current or 'an empty database'} to {head}")
    return done


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _add_missing(connection: Connection, schema: MetaData) -> list[str]:
    """Create the schema's missing tables and add its missing nullable columns (`table.column` added)."""
    schema.create_all(connection)
    present = inspect(connection)
    added: list[str] = []
    for table in schema.sorted_tables:
        have = {column["name"] for column in present.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            if not column.nullable:
                raise RuntimeError(f"Cannot add the required column {table.name}.{column.name} to an existing "
                                   "database: columns added before migrations are nullable.")
            kind = column.type.compile(connection.dialect)
            connection.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))
            added.append(f"{table.name}.{column.name}")
    return added
