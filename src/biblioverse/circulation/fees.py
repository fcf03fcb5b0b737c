"""Fees: overdue fines that grow by the day up to the rule's cap, lost copies, logistics;
payments and waivers, audited.

The daily job (:func:`accrue`) is idempotent: a loan's fine is computed from its due date
and the day, never added to, so running the job twice in a day, or missing a day, gives the
same amounts. Fines stop growing when the copy comes back (or is deemed lost).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, Select, func, select
from sqlalchemy.orm import Session

from biblioverse import catalog, libraries, readers
from biblioverse.access import Actor, Permission
from biblioverse.audit import log_action
from biblioverse.circulation import errors, rules
from biblioverse.circulation.lifecycle import LOAN, CourierState, LoanState, move
from biblioverse.circulation.matrix import Matrix
from biblioverse.circulation.models import CourierLoan, CourierReturn, Fee, FeeTransaction, Loan
from biblioverse.errors import FieldError, PermissionDenied, ValidationFailed
from biblioverse.events import record as record_event
from biblioverse.i18n import N_

CENT = Decimal("0.01")


def owed_by(reader_id: int | ColumnElement[int]) -> ScalarSelect[Any]:
    """What a reader owes, all libraries together, as a scalar subquery (``reader_id`` may
    be a bound parameter, for a statement built once)."""
    return (
        select(func.coalesce(func.sum(Fee.amount - Fee.paid - Fee.waived), 0))
        .where(Fee.reader_id == reader_id)
        .scalar_subquery()
    )


def as_money(value: object) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


def balance(session: Session, reader_id: int) -> Decimal:
    """What a reader owes, all libraries together."""
    return as_money(session.scalar(select(owed_by(reader_id))))


@dataclass
class Batch:
    """A run over many loans (the daily job): the loans' fees read up front, and the
    "fee charged" events recorded after one flush of them all."""

    known: dict[tuple[int, str], Fee]
    charged: list[tuple[Fee, dt.datetime]] = dataclasses.field(default_factory=list)

    @classmethod
    def of(cls, session: Session, loans: Select[Any]) -> Batch:
        fees = session.scalars(select(Fee).where(Fee.loan_id.in_(loans)))
        return cls({(f.loan_id, f.kind): f for f in fees if f.loan_id is not None})

    def close(self, session: Session) -> None:
        session.flush()
        for fee, at in self.charged:
            _charged(session, fee, at)
        self.charged.clear()


def _charged(session: Session, fee: Fee, at: dt.datetime) -> None:
    record_event(
        session,
        "circulation.fee.charged",
        {
            "fee_id": fee.id,
            "reader_id": fee.reader_id,
            "kind": fee.kind,
            "amount": str(fee.amount),
        },
        at=at,
    )


def _charge(
    session: Session,
    loan: Loan,
    item: catalog.Item,
    kind: str,
    amount: Decimal,
    at: dt.datetime,
    note: str = "",
    *,
    batch: Batch | None = None,
) -> bool:
    """Set the loan's fee of ``kind`` to ``amount`` (never lower than it was); True if that
    changed anything."""
    assert loan.reader_id is not None
    amount = amount.quantize(CENT)
    if amount <= 0:
        return False  # a fee is never lowered, and none is made for nothing
    if batch is not None:
        fee = batch.known.get((loan.id, kind))
    else:
        fee = session.scalar(select(Fee).where(Fee.loan_id == loan.id, Fee.kind == kind))
    if fee is None:
        fee = Fee(
            reader_id=loan.reader_id,
            org_unit_id=item.org_unit_id,
            loan_id=loan.id,
            item_id=item.id,
            kind=kind,
            amount=amount,
            paid=Decimal("0.00"),
            waived=Decimal("0.00"),
            note=note,
            created_at=at,
            updated_at=at,
        )
        session.add(fee)
    elif amount > fee.amount:
        fee.amount, fee.updated_at = amount, at
    else:
        return False
    if batch is not None:
        batch.charged.append((fee, at))
    else:
        session.flush()
        _charged(session, fee, at)
    return True


def charge_logistics(
    session: Session, reader_id: int, unit_id: int, amount: Decimal, at: dt.datetime, note: str
) -> Fee:
    """A delivery or collection the reader asked for, owed to library ``unit_id``."""
    fee = Fee(
        reader_id=reader_id,
        org_unit_id=unit_id,
        kind="logistics",
        amount=amount.quantize(CENT),
        paid=Decimal("0.00"),
        waived=Decimal("0.00"),
        note=note[:200],
        created_at=at,
        updated_at=at,
    )
    session.add(fee)
    session.flush()
    record_event(
        session,
        "circulation.fee.charged",
        {"fee_id": fee.id, "reader_id": reader_id, "kind": "logistics", "amount": str(fee.amount)},
        at=at,
    )
    return fee


def charge_overdue(
    session: Session,
    loan: Loan,
    item: catalog.Item,
    policy: rules.Policy,
    until: dt.datetime,
    *,
    batch: Batch | None = None,
) -> bool:
    """The loan's overdue fine as of ``until`` (a return, or the day of the job); True if it
    changed."""
    tz = libraries.schedule(session, loan.org_unit_id).tz
    days = rules.overdue_days(loan.due_at, until, tz)
    fine = rules.overdue_fine(policy, days)
    return _charge(session, loan, item, "overdue", fine, until, batch=batch)


def declare_lost(
    session: Session,
    loan: Loan,
    item: catalog.Item,
    policy: rules.Policy,
    at: dt.datetime,
    *,
    batch: Batch | None = None,
) -> None:
    """Overdue past the rule's limit: the copy is lost and its fee charged (its price when
    the catalogue knows it, else the rule's lost-item fee). The loan stays open as lost so
    that the copy cannot be lent again; if it comes back the unpaid lost fee is waived."""
    loan.status = move(LOAN, "loan", loan.status, LoanState.LOST)
    loan.lost_at = at
    item.status = catalog.next_status(item, catalog.ItemStatus.LOST)
    _charge(session, loan, item, "lost", item.price or policy.lost_fee, at, batch=batch)
    catalog.availability_changed(session, [item.record_id], at)


def on_return(
    session: Session, loan: Loan, item: catalog.Item, policy: rules.Policy, at: dt.datetime
) -> None:
    """Final fine of a loan that ends now; a lost copy found again has its unpaid fee waived."""
    if loan.status == LoanState.LOST:
        lost = session.scalar(select(Fee).where(Fee.loan_id == loan.id, Fee.kind == "lost"))
        if lost is not None and lost.balance > 0:
            _transact(session, None, lost, "waiver", lost.balance, "copy returned", at)
        return
    charge_overdue(session, loan, item, policy, at)


def booked_for_courier_query() -> Select[int, dt.datetime]:
    """Loans booked for a courier and not yet collected, and the pickup time asked for:
    their fines stop there, and they are not called overdue (:mod:`.courier`)."""
    return (
        select(CourierLoan.loan_id, CourierReturn.pickup_at)
        .join(CourierReturn, CourierReturn.id == CourierLoan.courier_return_id)
        .where(CourierReturn.status == CourierState.REQUESTED.value)
    )


def booked_for_courier(session: Session) -> dict[int, dt.datetime]:
    return {
        loan_id: pickup_at for loan_id, pickup_at in session.execute(booked_for_courier_query())
    }


@dataclass
class AccrualReport:
    overdue_loans: int = 0
    fees_changed: int = 0
    lost: int = 0


def accrue(session: Session, at: dt.datetime) -> AccrualReport:
    """The daily job: bring every overdue loan's fine up to date, and declare lost those
    overdue past their rule's limit."""
    report = AccrualReport()
    m = Matrix(session)
    # Loans booked for a courier owe nothing after the pickup time and are not lost.
    booked = booked_for_courier(session)
    overdue = (Loan.status == LoanState.OPEN.value, Loan.due_at < at)
    batch = Batch.of(session, select(Loan.id).where(*overdue))
    rows = session.execute(
        select(Loan, catalog.Item, readers.Reader.category)
        .join(catalog.Item, catalog.Item.id == Loan.item_id)
        .join(readers.Reader, readers.Reader.id == Loan.reader_id)
        .where(*overdue)
        .order_by(Loan.id)
    ).all()
    for loan, item, category in rows:
        report.overdue_loans += 1
        policy = m.rule(item.org_unit_id, category, item.item_type).rule.policy
        pickup = booked.get(loan.id)
        until = at if pickup is None else min(at, pickup)
        report.fees_changed += charge_overdue(session, loan, item, policy, until, batch=batch)
        if pickup is None and at - loan.due_at >= dt.timedelta(days=policy.lost_after_days):
            declare_lost(session, loan, item, policy, at, batch=batch)
            report.lost += 1
    batch.close(session)
    return report


def fees_of(session: Session, reader_id: int, *, open_only: bool = True) -> list[Fee]:
    q = select(Fee).where(Fee.reader_id == reader_id).order_by(Fee.created_at, Fee.id)
    if open_only:
        q = q.where(Fee.amount > Fee.paid + Fee.waived)
    return list(session.scalars(q))


def fees_for(session: Session, actor: Actor, reader_id: int, *, open_only: bool) -> list[Fee]:
    """A reader's fees as ``actor`` may see them: all for the reader and their home
    library's staff; another library's desk sees those its libraries charged (the total
    owed it sees anyway, to take a payment; docs/adr/0025)."""
    _, level = readers.require_access(session, actor, reader_id, readers.ReaderAccess.DESK)
    rows = fees_of(session, reader_id, open_only=open_only)
    if level is readers.ReaderAccess.FULL:
        return rows
    return [
        f
        for f in rows
        # unit_name reads a library this process has not seen yet (one just created)
        if actor.can(
            Permission.CIRCULATION_OPERATE, libraries.unit_name(session, f.org_unit_id).path
        )
    ]


def _amount(value: Decimal) -> Decimal:
    if not value.is_finite() or value <= 0:
        raise ValidationFailed([FieldError("amount", "invalid", N_("An amount above 0."))])
    if value != value.quantize(CENT):
        raise ValidationFailed([FieldError("amount", "invalid", N_("At most two decimals."))])
    return value


def _transact(
    session: Session,
    actor: Actor | None,
    fee: Fee,
    kind: str,
    amount: Decimal,
    note: str,
    at: dt.datetime,
) -> FeeTransaction:
    if kind == "payment":
        fee.paid += amount
    else:
        fee.waived += amount
    fee.updated_at = at
    row = FeeTransaction(
        fee_id=fee.id,
        kind=kind,
        amount=amount,
        staff_id=actor.id if actor is not None and actor.is_staff else None,
        note=note,
        at=at,
    )
    session.add(row)
    session.flush()
    if actor is not None:
        log_action(
            session,
            actor,
            f"fee.{kind}",
            entity="fee",
            entity_id=fee.id,
            org_unit_id=fee.org_unit_id,
            at=at,
            details={"amount": str(amount), "reader_id": fee.reader_id, "note": note},
        )
    return row


def pay(
    session: Session,
    actor: Actor,
    reader_id: int,
    amount: Decimal,
    *,
    at: dt.datetime,
    note: str = "",
    fee_id: int | None = None,
) -> list[FeeTransaction]:
    """Take a payment at a desk or a self-service machine; it settles the reader's oldest
    fees first, or only the fee named. More than is owed is refused, so no money is left
    unaccounted for."""
    if (
        actor.is_reader
        or not actor.acts_for_readers()
        or (actor.is_staff and not actor.can(Permission.CIRCULATION_OPERATE))
    ):
        raise PermissionDenied("payments are taken at a circulation desk or a kiosk")
    amount = _amount(amount)
    readers.get(session, reader_id)
    q = select(Fee).where(Fee.reader_id == reader_id, Fee.amount > Fee.paid + Fee.waived)
    if fee_id is not None:
        q = q.where(Fee.id == fee_id)
    open_fees = session.scalars(q.order_by(Fee.created_at, Fee.id).with_for_update()).all()
    if fee_id is not None and not open_fees:
        raise errors.FeeNotFound(fee_id)
    owed = sum((f.balance for f in open_fees), Decimal("0.00"))
    if amount > owed:
        raise ValidationFailed(
            [
                FieldError(
                    "amount",
                    "too_much",
                    N_("The reader owes %(owed)s; take at most that."),
                    {"owed": owed},
                )
            ]
        )
    out: list[FeeTransaction] = []
    left = amount
    for fee in open_fees:
        if left <= 0:
            break
        part = min(left, fee.balance)
        out.append(_transact(session, actor, fee, "payment", part, note, at))
        left -= part
    return out


def waive_unpaid(session: Session, fee_id: int, *, note: str, at: dt.datetime) -> None:
    """The system forgives what is unpaid of a fee whose service did not happen."""
    fee = session.scalar(select(Fee).where(Fee.id == fee_id).with_for_update())
    if fee is not None and fee.balance > 0:
        _transact(session, None, fee, "waiver", fee.balance, note, at)


def waive(
    session: Session,
    actor: Actor,
    fee_id: int,
    amount: Decimal | None,
    *,
    note: str,
    at: dt.datetime,
) -> FeeTransaction:
    """Forgive a fee or part of it (all that is unpaid when ``amount`` is None). Staff whose
    role allows waivers at the library the fee is owed to; a reason is required."""
    fee = session.scalar(select(Fee).where(Fee.id == fee_id).with_for_update())
    if fee is None:
        raise errors.FeeNotFound(fee_id)
    unit = libraries.get_unit(session, fee.org_unit_id)
    if not actor.is_staff or not actor.can(Permission.FEES_WAIVE, unit.path):
        raise PermissionDenied("you may not waive fees of this library")
    if not note.strip():
        raise ValidationFailed([FieldError("note", "required", N_("Say why the fee is waived."))])
    amount = _amount(amount) if amount is not None else fee.balance
    if amount <= 0 or amount > fee.balance:
        raise ValidationFailed(
            [
                FieldError(
                    "amount",
                    "too_much",
                    N_("%(left)s is left unpaid on this fee."),
                    {"left": fee.balance},
                )
            ]
        )
    return _transact(session, actor, fee, "waiver", amount, note.strip(), at)
