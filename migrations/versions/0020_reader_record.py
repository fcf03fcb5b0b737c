"""The reader record at the desk: staff notes on a reader; birth dates indexed for the
duplicate-person check

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 23:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import biblioverse.db

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reader_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reader_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", biblioverse.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_unit_id"], ["org_units.id"], name=op.f("fk_reader_notes_org_unit_id_org_units")
        ),
        sa.ForeignKeyConstraint(
            ["reader_id"], ["readers.id"], name=op.f("fk_reader_notes_reader_id_readers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reader_notes")),
    )
    with op.batch_alter_table("reader_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reader_notes_reader_id"), ["reader_id"], unique=False)
    with op.batch_alter_table("readers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_readers_birth_date"), ["birth_date"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("readers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_readers_birth_date"))
    with op.batch_alter_table("reader_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reader_notes_reader_id"))
    op.drop_table("reader_notes")
