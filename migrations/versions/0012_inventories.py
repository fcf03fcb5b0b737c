"""inventories

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-21 21:10:55.989472
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import biblioverse.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "inventories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("floor", sa.SmallInteger(), nullable=True),
        sa.Column("location_id", sa.Integer(), nullable=True),
        sa.Column("first_shelf", sa.String(length=32), nullable=True),
        sa.Column("last_shelf", sa.String(length=32), nullable=True),
        sa.Column(
            "shelf_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("started_at", biblioverse.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.Integer(), nullable=True),
        sa.Column("closed_at", biblioverse.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.Column(
            "summary",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("marked_missing", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "scope IN ('library', 'floor', 'zone', 'shelves')", name=op.f("ck_inventories_scope")
        ),
        sa.CheckConstraint("state IN ('open', 'closed')", name=op.f("ck_inventories_state")),
        sa.ForeignKeyConstraint(
            ["closed_by"], ["staff_users.id"], name=op.f("fk_inventories_closed_by_staff_users")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_inventories_location_id_locations")
        ),
        sa.ForeignKeyConstraint(
            ["org_unit_id"], ["org_units.id"], name=op.f("fk_inventories_org_unit_id_org_units")
        ),
        sa.ForeignKeyConstraint(
            ["started_by"], ["staff_users.id"], name=op.f("fk_inventories_started_by_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventories")),
    )
    with op.batch_alter_table("inventories", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inventories_org_unit_id"), ["org_unit_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_inventories_state"), ["state"], unique=False)

    op.create_table(
        "inventory_reads",
        sa.Column("inventory_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("shelf_id", sa.Integer(), nullable=True),
        sa.Column("at", biblioverse.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.CheckConstraint(
            "source IN ('shelf', 'handheld')", name=op.f("ck_inventory_reads_source")
        ),
        sa.ForeignKeyConstraint(
            ["inventory_id"],
            ["inventories.id"],
            name=op.f("fk_inventory_reads_inventory_id_inventories"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_inventory_reads_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["shelf_id"], ["shelves.id"], name=op.f("fk_inventory_reads_shelf_id_shelves")
        ),
        sa.PrimaryKeyConstraint("inventory_id", "item_id", name=op.f("pk_inventory_reads")),
    )
    op.create_table(
        "inventory_unknown",
        sa.Column("inventory_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("shelf_id", sa.Integer(), nullable=True),
        sa.Column("at", biblioverse.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inventory_id"],
            ["inventories.id"],
            name=op.f("fk_inventory_unknown_inventory_id_inventories"),
        ),
        sa.ForeignKeyConstraint(
            ["shelf_id"], ["shelves.id"], name=op.f("fk_inventory_unknown_shelf_id_shelves")
        ),
        sa.PrimaryKeyConstraint("inventory_id", "tag", name=op.f("pk_inventory_unknown")),
    )


def downgrade() -> None:

    op.drop_table("inventory_unknown")
    op.drop_table("inventory_reads")
    with op.batch_alter_table("inventories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inventories_state"))
        batch_op.drop_index(batch_op.f("ix_inventories_org_unit_id"))

    op.drop_table("inventories")
