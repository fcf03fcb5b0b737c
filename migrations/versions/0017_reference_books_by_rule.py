"""Reference books are lent as the rule matrix says; precious books never leave the building

Until now every reference copy was imported with ``circulates`` false, so no rule could lend
one. The flag now only keeps one copy in; the matrix decides for the type. So that nothing
changes for a library until a librarian says so, each consortium whose matrix has a default
row gets a reference row that lends nothing (``max_loans`` and ``max_holds`` 0), copied from
that default row, unless it already has a reference row of its own. Precious copies cannot
circulate, and the database now says so.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    rules = sa.Table("circulation_rules", sa.MetaData(), autoload_with=bind)
    units = sa.Table("org_units", sa.MetaData(), autoload_with=bind)
    items = sa.Table("items", sa.MetaData(), autoload_with=bind)
    roots = sa.select(units.c.id).where(units.c.parent_id.is_(None))
    defaults = bind.execute(
        sa.select(rules).where(
            rules.c.org_unit_id.in_(roots),
            rules.c.reader_category == "*",
            rules.c.item_type == "*",
        )
    ).mappings()
    for row in list(defaults):
        has_own = bind.scalar(
            sa.select(sa.func.count())
            .select_from(rules)
            .where(
                rules.c.org_unit_id == row["org_unit_id"],
                rules.c.reader_category == "*",
                rules.c.item_type == "reference",
            )
        )
        if has_own:
            continue
        values = {k: v for k, v in row.items() if k != "id"}
        values.update(
            item_type="reference", name="Reference books: not lent", max_loans=0, max_holds=0
        )
        bind.execute(rules.insert().values(**values))
    bind.execute(
        items.update()
        .where(items.c.item_type == "reference", items.c.circulates.is_(False))
        .values(circulates=True)
    )
    bind.execute(items.update().where(items.c.item_type == "precious").values(circulates=False))
    with op.batch_alter_table("items") as batch:
        batch.create_check_constraint(
            op.f("ck_items_precious_stays_in"), "item_type <> 'precious' OR NOT circulates"
        )


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_constraint(op.f("ck_items_precious_stays_in"), type_="check")
    bind = op.get_bind()
    items = sa.Table("items", sa.MetaData(), autoload_with=bind)
    bind.execute(items.update().where(items.c.item_type == "reference").values(circulates=False))
