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
    with op.batch_alter_table("org_units") as batch:
        batch.add_column(sa.Column("here_code", sa.String(length=32), nullable=True))
    units = sa.table("org_units", sa.column("id", sa.Integer), sa.column("here_code", sa.String))
    conn = op.get_bind()
    for (unit_id,) in conn.execute(sa.select(units.c.id)).all():
        conn.execute(
            units.update()
            .where(units.c.id == unit_id)
            .values(here_code=secrets.token_urlsafe(12))
        )
    with op.batch_alter_table("org_units") as batch:
        batch.alter_column("here_code", existing_type=sa.String(length=32), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("org_units") as batch:
        batch.drop_column("here_code")
