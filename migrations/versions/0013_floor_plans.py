"""Floor plans of the digital twin

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-21 21:55:54.844540
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import biblioverse.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "floor_plans",
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "document",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("updated_at", biblioverse.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_unit_id"], ["org_units.id"], name=op.f("fk_floor_plans_org_unit_id_org_units")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["staff_users.id"], name=op.f("fk_floor_plans_updated_by_staff_users")
        ),
        sa.PrimaryKeyConstraint("org_unit_id", name=op.f("pk_floor_plans")),
    )


def downgrade() -> None:
    op.drop_table("floor_plans")
