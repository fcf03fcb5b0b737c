"""Courier returns: a reader asks for their loans to be collected at an address.

1. :func:`request`: the reader names the loans, the address and when the courier may come,
   within the courier's service hours: the opening hours of the library the parcel goes to
   (ADR 0037). The logistics fee is quoted (the highest ``courier_fee`` of the loans'
   rules: one trip) and not yet charged. Fines stop at the pickup time asked for: the
   courier's delay is not the reader's.
2. :func:`collect`: the courier has the parcel (staff of the reader's home library, where
   it goes, record it). The fee quoted is charged now; the loans end, their fines counted
   up to the pickup time; the copies are in transit to that library, with no sending
   library.
3. The library scans the copies in (:func:`biblioverse.circulation.checkin`), which
   receives the transits and routes each copy as any return; the reader gets a notice per
   copy, and the request is delivered when no copy is still on its way.

A request not yet collected can be cancelled, at no charge.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from biblioverse import catalog, libraries, readers
from biblioverse.access import Actor, Permission
from biblioverse.audit import log_action
from biblioverse.circulation import errors, fees, notices
from biblioverse.circulation.lifecycle import (
    COURIER,
    LOAN,
    OPEN_TRANSIT,
    CourierState,
    LoanState,
    TransitState,
    move,
)
from biblioverse.circulation.matrix import Matrix
from biblioverse.circulation.models import CourierLoan, CourierReturn, Loan, Transit
from biblioverse.errors import FieldError, PermissionDenied, ValidationFailed
from biblioverse.events import record as record_event
from biblioverse.i18n import N_

# How far ahead a pickup may be booked.
BOOKING_WINDOW = dt.timedelta(days=30)
ADDRESS_LENGTH = (5, 500)


def _event(session: Session, topic: str, row: CourierReturn, at: dt.datetime) -> None:
    record_event(session, topic, {"courier_return_id": row.id, "reader_id": row.reader_id}, at=at)


def _may_act(actor: Actor | None, reader_id: int, unit: libraries.OrgUnit) -> None:
    """The reader themselves, or staff who lend at the library the parcel goes to."""
    if actor is None:
        return
    if actor.is_reader:
        if actor.id != reader_id:
            raise PermissionDenied("readers send back their own loans only")
        return
    if not (actor.is_staff and actor.can(Permission.CIRCULATION_OPERATE, unit.path)):
        raise PermissionDenied("you may not arrange courier returns for this library")


def request(
    session: Session,
    actor: Actor | None,
    *,
    reader_id: int,
    loan_ids: list[int],
    address: str,
    pickup_at: dt.datetime,
    at: dt.datetime,
) -> CourierReturn:
    """Ask a courier to collect ``loan_ids`` at ``address`` at ``pickup_at`` and bring them
    to the reader's home library. Nothing is written if any loan is not the reader's open
    loan or is already in a courier return, or the address or time are not usable."""
    reader = readers.get(session, reader_id)
    home = libraries.get_unit(session, reader.home_library_id)
    _may_act(actor, reader.id, home)
    problems: list[FieldError] = []
    address = " ".join(address.split())
    if not ADDRESS_LENGTH[0] <= len(address) <= ADDRESS_LENGTH[1]:
        problems.append(
            FieldError(
                "address", "invalid", N_("The address to collect from, 5 to 500 characters.")
            )
        )
    if pickup_at.tzinfo is None:
        problems.append(FieldError("pickup_at", "invalid", N_("A time with its UTC offset.")))
    elif not at <= pickup_at <= at + BOOKING_WINDOW:
        problems.append(FieldError("pickup_at", "invalid", N_("A time from now to 30 days ahead.")))
    elif not libraries.is_open(home, pickup_at):
        problems.append(
            FieldError(
                "pickup_at",
                "outside_service_hours",
                N_("The courier comes only while your library is open: choose a time then."),
            )
        )
    ids = sorted(set(loan_ids))
    if not ids:
        problems.append(FieldError("loan_ids", "required", N_("Choose at least one loan.")))
    if problems:
        raise ValidationFailed(problems)
    loans = {
        loan.id: loan
        for loan in session.scalars(
            select(Loan).where(Loan.id.in_(ids)).order_by(Loan.id).with_for_update()
        )
    }
    for loan_id in ids:
        loan = loans.get(loan_id)
        if loan is None or loan.reader_id != reader.id or loan.status == LoanState.RETURNED:
            raise errors.LoanNotFound(loan_id)  # another reader's loan does not exist here
    taken = session.scalar(
        select(CourierLoan.loan_id)
        .join(CourierReturn, CourierReturn.id == CourierLoan.courier_return_id)
        .where(
            CourierLoan.loan_id.in_(ids),
            CourierReturn.status == CourierState.REQUESTED.value,
        )
        .limit(1)
    )
    if taken is not None:
        raise errors.CourierAlreadyRequested(f"loan {taken} is already booked for a courier")
    row = CourierReturn(
        reader_id=reader.id,
        to_unit_id=home.id,
        address=address,
        pickup_at=pickup_at.astimezone(dt.UTC),
        status=CourierState.REQUESTED.value,
        requested_at=at,
        fee_amount=quote(session, reader.id, ids),  # charged when the courier collects
    )
    session.add(row)
    session.flush()
    session.add_all(CourierLoan(courier_return_id=row.id, loan_id=i) for i in ids)
    session.flush()
    if actor is not None and actor.is_staff:
        _audit(session, actor, "request", row, at)
    _event(session, "circulation.courier.requested", row, at)
    return row


def _audit(session: Session, actor: Actor, what: str, row: CourierReturn, at: dt.datetime) -> None:
    log_action(
        session,
        actor,
        f"circulation.courier.{what}",
        entity="courier_return",
        entity_id=row.id,
        org_unit_id=row.to_unit_id,
        at=at,
        details={"reader_id": row.reader_id},
    )


def _locked(session: Session, courier_id: int) -> CourierReturn:
    row = session.scalar(
        select(CourierReturn).where(CourierReturn.id == courier_id).with_for_update()
    )
    if row is None:
        raise errors.CourierReturnNotFound(courier_id)
    return row


def _own(session: Session, actor: Actor | None, courier_id: int) -> CourierReturn:
    row = _locked(session, courier_id)
    if actor is not None and actor.is_reader and actor.id != row.reader_id:
        raise errors.CourierReturnNotFound(courier_id)  # not another reader's to see
    _may_act(actor, row.reader_id, libraries.get_unit(session, row.to_unit_id))
    return row


def cancel(
    session: Session, actor: Actor | None, courier_id: int, *, at: dt.datetime
) -> CourierReturn:
    """Call the courier off before the collection: nothing is charged (a fee charged at
    booking by an earlier version is waived if unpaid, refunded at the desk if paid)."""
    row = _own(session, actor, courier_id)
    row.status = move(COURIER, "courier return", row.status, CourierState.CANCELLED)
    row.closed_at = at
    if row.fee_id is not None:
        fees.waive_unpaid(session, row.fee_id, note="courier return cancelled", at=at)
    session.flush()
    if actor is not None and actor.is_staff:
        _audit(session, actor, "cancel", row, at)
    _event(session, "circulation.courier.cancelled", row, at)
    return row


def collect(session: Session, actor: Actor, courier_id: int, *, at: dt.datetime) -> CourierReturn:
    """The courier has the parcel: its loans end (fines counted to the pickup time asked
    for, or now if earlier) and the copies travel to the reader's home library. Loans
    brought back at a desk in the meantime are left as they are."""
    row = _locked(session, courier_id)
    unit = libraries.get_unit(session, row.to_unit_id)
    if not (actor.is_staff and actor.can(Permission.CIRCULATION_OPERATE, unit.path)):
        raise PermissionDenied("the library the parcel goes to records its collection")
    row.status = move(COURIER, "courier return", row.status, CourierState.COLLECTED)
    row.collected_at = at
    fines_until = min(row.pickup_at, at)
    loan_ids = select(CourierLoan.loan_id).where(CourierLoan.courier_return_id == row.id)
    pairs = session.execute(
        select(Loan, catalog.Item)
        .join(catalog.Item, catalog.Item.id == Loan.item_id)
        .where(Loan.id.in_(loan_ids), Loan.status != LoanState.RETURNED.value)
        .order_by(catalog.Item.id)
        .with_for_update()
    ).all()
    reader = readers.get(session, row.reader_id)
    m = Matrix(session)
    for loan, item in pairs:
        fees.on_return(session, loan, item, m.policy(item, reader), fines_until)
        loan.status = move(LOAN, "loan", loan.status, LoanState.RETURNED)
        loan.returned_at = at
        loan.returned_unit_id = unit.id
        item.status = catalog.next_status(item, catalog.ItemStatus.IN_TRANSIT)
        item.at_unit_id = None
        session.add(
            Transit(
                item_id=item.id,
                from_unit_id=None,
                to_unit_id=unit.id,
                reason="courier",
                courier_return_id=row.id,
                status=TransitState.SHIPPED.value,
                created_at=at,
                shipped_at=at,
            )
        )
        record_event(
            session, "circulation.loan.returned", {"loan_id": loan.id, "item_id": item.id}, at=at
        )
        catalog.availability_changed(session, [item.record_id], at)
    if not pairs:  # everything came back by other ways: nothing travels, nothing to pay
        row.status = move(COURIER, "courier return", row.status, CourierState.DELIVERED)
        row.closed_at = at
    elif row.fee_amount > 0 and row.fee_id is None:
        fee = fees.charge_logistics(
            session, row.reader_id, unit.id, row.fee_amount, at, note=f"courier return {row.id}"
        )
        row.fee_id = fee.id
    session.flush()
    _audit(session, actor, "collect", row, at)
    _event(session, "circulation.courier.collected", row, at)
    return row


def arrived(session: Session, transit: Transit, here: int, at: dt.datetime) -> None:
    """A copy sent back by courier was scanned in at a library (its transit has ended):
    tell the reader, and close the request when nothing of it is still on its way."""
    if transit.courier_return_id is None:
        return
    row = _locked(session, transit.courier_return_id)
    item = catalog.get_item(session, transit.item_id)
    notices.arrived(
        session,
        row.reader_id,
        transit.id,
        catalog.get_record(session, item.record_id).title,
        here,
        at,
    )
    travelling = session.scalar(
        select(Transit.id)
        .where(
            Transit.courier_return_id == row.id,
            Transit.status.in_([s.value for s in OPEN_TRANSIT]),
        )
        .limit(1)
    )
    if travelling is None and row.status == CourierState.COLLECTED:
        row.status = move(COURIER, "courier return", row.status, CourierState.DELIVERED)
        row.closed_at = at
        _event(session, "circulation.courier.delivered", row, at)


@dataclass
class CourierLine:
    """A courier return and the titles in it."""

    courier: CourierReturn
    titles: list[tuple[str, str]]  # (barcode, title)
    fee: Decimal  # the fee quoted at booking, charged when the courier collects

    @property
    def charged(self) -> bool:
        return self.courier.fee_id is not None


def lines(session: Session, rows: list[CourierReturn]) -> list[CourierLine]:
    if not rows:
        return []
    titles: dict[int, list[tuple[str, str]]] = {r.id: [] for r in rows}
    for cid, code, title in session.execute(
        select(CourierLoan.courier_return_id, catalog.Item.barcode, catalog.Record.title)
        .join(Loan, Loan.id == CourierLoan.loan_id)
        .join(catalog.Item, catalog.Item.id == Loan.item_id)
        .join(catalog.Record, catalog.Record.id == catalog.Item.record_id)
        .where(CourierLoan.courier_return_id.in_(titles))
        .order_by(catalog.Item.barcode)
    ):
        titles[cid].append((code, title))
    return [CourierLine(r, titles[r.id], fees.as_money(r.fee_amount)) for r in rows]


def booked_loans(session: Session, reader_id: int) -> set[int]:
    """The reader's loans in a request waiting for the courier."""
    return set(
        session.scalars(
            select(CourierLoan.loan_id)
            .join(CourierReturn, CourierReturn.id == CourierLoan.courier_return_id)
            .where(
                CourierReturn.reader_id == reader_id,
                CourierReturn.status == CourierState.REQUESTED.value,
            )
        )
    )


def quote(session: Session, reader_id: int, loan_ids: list[int]) -> Decimal:
    """The logistics fee of sending back these loans (one trip: the highest of their rules)."""
    if not loan_ids:
        return Decimal("0.00")
    reader = readers.get(session, reader_id)
    m = Matrix(session)
    items = session.scalars(
        select(catalog.Item)
        .join(Loan, Loan.item_id == catalog.Item.id)
        .where(Loan.id.in_(loan_ids))
    )
    return max((m.policy(i, reader).courier_fee for i in items), default=Decimal("0.00"))


def of_reader(session: Session, reader_id: int, *, limit: int = 20) -> list[CourierLine]:
    """A reader's courier returns, the latest first."""
    rows = session.scalars(
        select(CourierReturn)
        .where(CourierReturn.reader_id == reader_id)
        .order_by(CourierReturn.requested_at.desc(), CourierReturn.id.desc())
        .limit(limit)
    ).all()
    return lines(session, list(rows))


def to_collect(session: Session, unit_ids: list[int], *, limit: int = 500) -> list[CourierLine]:
    """Requests waiting for the courier whose parcels go to these libraries, by pickup time."""
    rows = session.scalars(
        select(CourierReturn)
        .where(
            CourierReturn.to_unit_id.in_(unit_ids),
            CourierReturn.status == CourierState.REQUESTED.value,
        )
        .order_by(CourierReturn.pickup_at, CourierReturn.id)
        .limit(limit)
    ).all()
    return lines(session, list(rows))


def anonymise(session: Session, at: dt.datetime, *, after_days: int) -> int:
    """Requests closed more than ``after_days`` ago forget the address."""
    done = session.execute(
        update(CourierReturn)
        .where(
            CourierReturn.closed_at < at - dt.timedelta(days=after_days),
            CourierReturn.address != "",
        )
        .values(address="")
        .execution_options(synchronize_session=False)
    )
    return int(getattr(done, "rowcount", 0) or 0)
