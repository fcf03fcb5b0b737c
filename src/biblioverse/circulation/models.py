"""The circulation rule matrix: one row per org unit, reader category and item type."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from biblioverse.db import Base, UTCDateTime


class CirculationRule(Base):
    """A row of the matrix. Reader category and item type NULL mean "any"; the org unit's
    rows cover its branches. Only one row per (unit, category, type): a second would tie."""

    __tablename__ = "circulation_rules"
    __table_args__ = (
        # NULLs never collide in a unique index, so "any" is stored as '*' here.
        UniqueConstraint("org_unit_id", "reader_category", "item_type"),
        CheckConstraint(
            "(loan_hours IS NULL AND loan_days BETWEEN 1 AND 366) OR loan_hours BETWEEN 1 AND 72",
            name="loan_period",
        ),
        CheckConstraint("hold_pickup IN ('any', 'home', 'owner')", name="hold_pickup"),
        CheckConstraint(
            "fine_per_day >= 0 AND fine_cap >= 0 AND lost_fee >= 0 AND block_threshold >= 0",
            name="amounts",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    reader_category: Mapped[str] = mapped_column(String(16), default="*")
    item_type: Mapped[str] = mapped_column(String(16), default="*")
    name: Mapped[str] = mapped_column(String(200), default="")
    loan_days: Mapped[int] = mapped_column(SmallInteger, default=28)
    loan_hours: Mapped[int | None] = mapped_column(SmallInteger)
    renewals: Mapped[int] = mapped_column(SmallInteger, default=2)
    max_loans: Mapped[int] = mapped_column(SmallInteger, default=20)
    max_holds: Mapped[int] = mapped_column(SmallInteger, default=10)
    self_service: Mapped[bool] = mapped_column(Boolean, default=True)
    mobile_checkout: Mapped[bool] = mapped_column(Boolean, default=True)
    hold_pickup: Mapped[str] = mapped_column(String(8), default="any")
    fine_per_day: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0.10"))
    fine_cap: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("10.00"))
    lost_after_days: Mapped[int] = mapped_column(SmallInteger, default=60)
    lost_fee: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("50.00"))
    block_threshold: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("10.00"))
    floating: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Loan(Base):
    """A copy lent to a reader. At most one open loan per copy: a partial unique index, so
    two desks racing for one copy cannot both win."""

    __tablename__ = "loans"
    __table_args__ = (
        Index(
            "uq_loans_open_item",
            "item_id",
            unique=True,
            sqlite_where=text("returned_at IS NULL"),
            postgresql_where=text("returned_at IS NULL"),
        ),
        CheckConstraint("channel IN ('desk', 'api', 'mobile', 'kiosk')", name="channel"),
        CheckConstraint("renewals >= 0", name="renewals"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    # NULL once a closed loan is anonymised (a reader's history is private by default).
    reader_id: Mapped[int | None] = mapped_column(ForeignKey("readers.id"), index=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))  # where it was lent
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("circulation_rules.id"))
    channel: Mapped[str] = mapped_column(String(8))
    loaned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    renewals: Mapped[int] = mapped_column(SmallInteger, default=0)
    returned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    returned_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
