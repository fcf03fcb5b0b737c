"""A hold's "not needed after" date; a courier return's fee, charged when collected

Holds get ``not_needed_after``: unfilled after that day, the nightly job expires them.
Courier returns get ``fee_amount``, the logistics fee quoted at booking and charged when the
courier collects; requests booked before carry the fee they were charged then.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 23:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("holds") as batch:
        batch.add_column(sa.Column("not_needed_after", sa.Date(), nullable=True))
    with op.batch_alter_table("courier_returns") as batch:
        batch.add_column(
            sa.Column(
                "fee_amount", sa.Numeric(10, 2), nullable=False, server_default=sa.text("0.00")
            )
        )
    op.execute(
        "UPDATE courier_returns SET fee_amount = "
        "(SELECT amount FROM fees WHERE fees.id = courier_returns.fee_id) "
        "WHERE fee_id IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("courier_returns") as batch:
        batch.drop_column("fee_amount")
    with op.batch_alter_table("holds") as batch:
        batch.drop_column("not_needed_after")
