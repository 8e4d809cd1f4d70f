"""Creating the tables, and bringing a database made by an earlier version up to date.

New versions only ever add tables and nullable columns, so an upgrade is `create_all` for
the tables plus `ALTER TABLE … ADD COLUMN` for the columns an older database lacks: work
saved before an upgrade stays where it is.
"""

from __future__ import annotations

from sqlalchemy import Engine, inspect, text

from app.store.tables import Base


def create_or_upgrade(engine: Engine) -> list[str]:
    """Create missing tables and add missing columns; returns the columns added (`table.column`)."""
    Base.metadata.create_all(engine)
    present = inspect(engine)
    added: list[str] = []
    with engine.begin() as connection:
        for table in Base.metadata.sorted_tables:
            have = {column["name"] for column in present.get_columns(table.name)}
            for column in table.columns:
                if column.name in have:
                    continue
                if not column.nullable:
                    raise RuntimeError(f"Cannot add the required column {table.name}.{column.name} to an "
                                       "existing database: new columns must be nullable.")
                kind = column.type.compile(engine.dialect)
                connection.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))
                added.append(f"{table.name}.{column.name}")
    return added
