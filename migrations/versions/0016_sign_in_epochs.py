"""A person's sign-in epoch: a password change or a sign-out ends every older page session

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import biblioverse.db

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_epochs",
        sa.Column("principal_kind", sa.String(length=16), nullable=False),
        sa.Column("principal_id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("changed_at", biblioverse.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "principal_kind IN ('staff', 'reader')",
            name=op.f("ck_sign_in_epochs_principal_kind"),
        ),
        sa.PrimaryKeyConstraint("principal_kind", "principal_id", name=op.f("pk_sign_in_epochs")),
    )


def downgrade() -> None:
    op.drop_table("sign_in_epochs")
