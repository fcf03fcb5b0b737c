"""Each library's "you are here" code: printed on its signs, it shows that a phone is in the
library (borrowing by phone); a new one makes the old signs prove nothing

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 23:50:00
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Added in place, not through a batch copy: on SQLite a copy of org_units (which every
    # table refers to) would be dropped with foreign keys on, and fail on any real library.
    op.add_column(
        "org_units",
        sa.Column("here_code", sa.String(length=32), nullable=False, server_default=""),
    )
    units = sa.table("org_units", sa.column("id", sa.Integer), sa.column("here_code", sa.String))
    conn = op.get_bind()
    for (unit_id,) in conn.execute(sa.select(units.c.id)).all():
        conn.execute(
            units.update().where(units.c.id == unit_id).values(here_code=secrets.token_urlsafe(12))
        )


def downgrade() -> None:
    op.drop_column("org_units", "here_code")  # SQLite 3.35+ drops a column in place
