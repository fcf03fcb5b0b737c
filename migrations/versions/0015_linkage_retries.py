"""Linkage actions that failed are tried again: how many attempts, and when the next is due

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-22 02:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import biblioverse.db

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alarm_actions", schema=None) as batch_op:
        # actions taken before this revision were tried once, and are not tried again
        batch_op.add_column(
            sa.Column("attempts", sa.SmallInteger(), nullable=False, server_default="1")
        )
        batch_op.add_column(
            sa.Column("next_at", biblioverse.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_alarm_actions_next_at"), ["next_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alarm_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alarm_actions_next_at"))
        batch_op.drop_column("next_at")
        batch_op.drop_column("attempts")
