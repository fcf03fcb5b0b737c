"""Tables of circulation: the rule matrix, loans, holds, transits and fees."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
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

from biblioverse import reference
from biblioverse.circulation.lifecycle import CourierState, HoldState, LoanState, TransitState
from biblioverse.circulation.rules import PickupPolicy
from biblioverse.db import Base, UTCDateTime, one_of


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
        one_of("hold_pickup", PickupPolicy),
        CheckConstraint(
            "fine_per_day >= 0 AND fine_cap >= 0 AND lost_fee >= 0 AND block_threshold >= 0 "
            "AND courier_fee >= 0",
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
    hold_priority: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    hold_shelf_days: Mapped[int] = mapped_column(SmallInteger, default=7, server_default="7")
    courier_fee: Mapped[Decimal] = mapped_column(
        Numeric(10, 2), default=Decimal("5.00"), server_default="5.00"
    )
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


reference.watch(CirculationRule)


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
        one_of("status", LoanState),
        CheckConstraint("(status = 'returned') = (returned_at IS NOT NULL)", name="returned"),
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
    status: Mapped[str] = mapped_column(String(8), default="open", server_default="open")
    lost_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


ACTIVE_HOLD_SQL = "status IN ('waiting', 'suspended', 'in_transit', 'ready')"


class Hold(Base):
    """A reader's request for a title (any copy) or one copy, picked up at a library.

    The queue of a title is its waiting holds by priority (from the rule), then request
    time. A reader has at most one active hold per title: a partial unique index."""

    __tablename__ = "holds"
    __table_args__ = (
        one_of("status", HoldState),
        Index(
            "uq_holds_active_reader_record",
            "reader_id",
            "record_id",
            unique=True,
            sqlite_where=text(ACTIVE_HOLD_SQL),
            postgresql_where=text(ACTIVE_HOLD_SQL),
        ),
        # The queue: which waiting hold an arriving copy fills, in one index range.
        Index("ix_holds_queue", "record_id", "status", "priority", "placed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id"), index=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))  # a copy-level hold
    pickup_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    status: Mapped[str] = mapped_column(String(12))
    priority: Mapped[int] = mapped_column(SmallInteger, default=0)
    placed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    suspended_until: Mapped[dt.date | None] = mapped_column(Date)
    # The reader's last day of wanting it: unfilled after that day, the hold expires.
    not_needed_after: Mapped[dt.date | None] = mapped_column(Date)
    # The copy set aside for it (in transit to the pickup library or on its hold shelf).
    trapped_item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), index=True)
    ready_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


OPEN_TRANSIT_SQL = "status IN ('created', 'shipped')"


class Transit(Base):
    """A copy travelling between member libraries: home after a return elsewhere, or to
    the pickup library of the hold it was set aside for; or from a reader's door to their
    library, collected by courier (no sending library). One open transit per copy."""

    __tablename__ = "transits"
    __table_args__ = (
        one_of("status", TransitState),
        CheckConstraint("reason IN ('home', 'hold', 'courier')", name="reason"),
        CheckConstraint("(reason = 'courier') = (from_unit_id IS NULL)", name="from_unit"),
        Index(
            "uq_transits_open_item",
            "item_id",
            unique=True,
            sqlite_where=text(OPEN_TRANSIT_SQL),
            postgresql_where=text(OPEN_TRANSIT_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    from_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    to_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    reason: Mapped[str] = mapped_column(String(8))
    hold_id: Mapped[int | None] = mapped_column(ForeignKey("holds.id"))
    courier_return_id: Mapped[int | None] = mapped_column(ForeignKey("courier_returns.id"))
    status: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    shipped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CourierReturn(Base):
    """A reader's request that a courier collect loans at an address and bring them to
    their home library. The reader pays the logistics fee quoted at booking (``fee_amount``)
    when the courier collects (``fee_id``, the fee charged then); fines stop at the pickup time
    asked for; once collected the loans end and the copies are in transit until the
    library scans them in."""

    __tablename__ = "courier_returns"
    __table_args__ = (one_of("status", CourierState),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id"), index=True)
    to_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    # Blanked when the request is anonymised, like a returned loan's reader.
    address: Mapped[str] = mapped_column(String(500))
    pickup_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), index=True)
    fee_id: Mapped[int | None] = mapped_column(ForeignKey("fees.id"))
    fee_amount: Mapped[Decimal] = mapped_column(
        Numeric(10, 2), default=Decimal("0.00"), server_default="0.00"
    )
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    collected_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CourierLoan(Base):
    """A loan in a courier return."""

    __tablename__ = "courier_return_loans"

    courier_return_id: Mapped[int] = mapped_column(
        ForeignKey("courier_returns.id"), primary_key=True
    )
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), primary_key=True, index=True)


class Fee(Base):
    """Money a reader owes a library: overdue fines (one growing row per loan, capped),
    lost copies, logistics. Paid and waived amounts are kept beside the amount."""

    __tablename__ = "fees"
    __table_args__ = (
        CheckConstraint("kind IN ('overdue', 'lost', 'logistics', 'manual')", name="kind"),
        CheckConstraint(
            "amount >= 0 AND paid >= 0 AND waived >= 0 AND paid + waived <= amount",
            name="amounts",
        ),
        UniqueConstraint("loan_id", "kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id"), index=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))  # owed to
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    kind: Mapped[str] = mapped_column(String(10))
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    paid: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0.00"))
    waived: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0.00"))
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    @property
    def balance(self) -> Decimal:
        return self.amount - self.paid - self.waived


class FeeTransaction(Base):
    """A payment or a waiver against a fee; who took it, when and why."""

    __tablename__ = "fee_transactions"
    __table_args__ = (
        CheckConstraint("kind IN ('payment', 'waiver')", name="kind"),
        CheckConstraint("amount > 0", name="amount"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fee_id: Mapped[int] = mapped_column(ForeignKey("fees.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    note: Mapped[str] = mapped_column(String(200), default="")
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Notice(Base):
    """A message to a reader: a loan due soon or overdue, a hold ready to collect. Shown in
    their account; e-mailed when the library has an SMTP server (``sent_at`` set), kept here
    otherwise. ``key`` makes each notice once: the daily job may run twice."""

    __tablename__ = "notices"
    __table_args__ = (
        CheckConstraint("kind IN ('due_soon', 'overdue', 'hold_ready', 'arrived')", name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    key: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    # When it is due, or until when it waits on the hold shelf; where to collect it.
    at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
