"""Alembic's environment: migrations run on the connection `app.store.migrate` hands over."""

from __future__ import annotations

from alembic import context

from app.store.tables import Base

context.configure(connection=context.config.attributes["connection"], target_metadata=Base.metadata,
                  render_as_batch=True)  # SQLite alters a table by copying it; batch mode does that
with context.begin_transaction():
    context.run_migrations()
