"""Events a consumer of the NATS stream handled, so that work done once is not done twice

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import biblioverse.db

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "handled_events",
        sa.Column("consumer", sa.String(length=80), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("handled_at", biblioverse.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_handled_events")),
    )


def downgrade() -> None:
    op.drop_table("handled_events")
