"""The first revision: every table LayerLab had when it moved to Alembic migrations."""

from __future__ import annotations

from alembic import op

from app.store.migrations.first_schema import first_schema

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    first_schema().create_all(op.get_bind())


def downgrade() -> None:
    first_schema().drop_all(op.get_bind())
