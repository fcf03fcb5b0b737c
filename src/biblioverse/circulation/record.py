"""The reader record at a staff desk (issue 29): a reader's card with their loans, holds,
fees, history and notes, as one staff member may see them (ADR 0025, ADR 0036), renewing
all their loans at once and a payment's receipt. The page is :mod:`.record_pages`; the card's
own changes (renewal, block, contact, notes) are the readers context's."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import libraries, readers
from biblioverse.access import Actor, Permission
from biblioverse.audit import log_action
from biblioverse.circulation import fees, holds, rules, service
from biblioverse.circulation.errors import HoldNotFound
from biblioverse.circulation.lifecycle import IllegalTransition, LoanState
from biblioverse.circulation.models import Fee, FeeTransaction, Loan
from biblioverse.errors import DomainError, PermissionDenied


@dataclass
class LoanRow:
    line: service.LoanLine
    unit: libraries.UnitName  # the library that lent it, which renews it
    tz: str
    overdue_days: int
    may_renew: bool


@dataclass
class FeeRow:
    fee: Fee
    unit: libraries.UnitName  # owed to
    may_waive: bool


@dataclass
class ReaderRecord:
    """What ``actor`` sees of a reader at the desk."""

    reader: readers.Reader
    level: readers.ReaderAccess
    home: libraries.UnitName
    tz: str  # the home library's, for dates shown
    status: readers.Status  # as the reader sees it (an active card past its date: expired)
    owed: Decimal  # all libraries together: a desk must know it to take a payment
    loans: list[LoanRow]
    holds: list[holds.HoldLine]
    fees: list[FeeRow]
    history: list[service.LoanLine]
    notes: list[readers.ReaderNote]
    may_manage: bool  # renew the card, block, contact details, notes
    pickups: list[libraries.UnitName] = field(default_factory=list)
    # other cards with the same name and birth date: perhaps one person twice
    duplicates: list[readers.Reader] = field(default_factory=list)

    @property
    def full(self) -> bool:
        return self.level is readers.ReaderAccess.FULL


def _tz(session: Session, unit_id: int, kept: dict[int, str]) -> str:
    if unit_id not in kept:
        kept[unit_id] = libraries.get_unit(session, unit_id).timezone
    return kept[unit_id]


def reader_record(
    session: Session, actor: Actor, reader_id: int, *, at: dt.datetime
) -> ReaderRecord:
    """The record as ``actor`` may see it: the whole account for staff of the home library;
    for another library's desk the card's summary, the total owed, the loans its libraries
    lent, the holds to collect there and the fees they charged (ADR 0025, 0036)."""
    if not actor.is_staff:
        raise PermissionDenied("the reader record is for library staff")
    reader, level = readers.require_access(session, actor, reader_id, readers.ReaderAccess.DESK)
    units = libraries.unit_names(session)
    zones: dict[int, str] = {}
    home = units[reader.home_library_id]
    full = level is readers.ReaderAccess.FULL
    loans: list[LoanRow] = []
    for line in service.open_loans(session, reader.id):
        unit = units[line.loan.org_unit_id]
        ours = actor.can(Permission.CIRCULATION_OPERATE, unit.path)
        if not (full or ours):
            continue
        tz = _tz(session, unit.id, zones)
        late = rules.overdue_days(line.loan.due_at, at, ZoneInfo(tz))
        open_ = line.loan.status == LoanState.OPEN.value
        loans.append(LoanRow(line, unit, tz, late, ours and open_))
    fee_rows = [
        FeeRow(
            f,
            units[f.org_unit_id],
            actor.can(Permission.FEES_WAIVE, units[f.org_unit_id].path),
        )
        for f in fees.fees_for(session, actor, reader.id, open_only=True)
    ]
    today = readers.local_today(at)
    return ReaderRecord(
        reader=reader,
        level=level,
        home=home,
        tz=_tz(session, home.id, zones),
        status=readers.effective_status(readers.Status(reader.status), reader.expires_on, today),
        owed=fees.balance(session, reader.id),
        loans=loans,
        holds=holds.holds_for(session, actor, reader.id),
        fees=fee_rows,
        # a reading history only where the reader asked for one, and only for full access
        history=service.reading_history(session, reader.id, limit=50)
        if full and reader.keep_history
        else [],
        notes=readers.notes_of(session, actor, reader.id),
        may_manage=actor.can(Permission.READERS_MANAGE, home.path),
        pickups=[units[u.id] for u in libraries.service_points(session) if u.id in units],
        duplicates=[
            r
            for r in readers.possible_duplicates(session, reader.name, reader.birth_date)
            if r.id != reader.id
        ]
        if full
        else [],
    )


def hold_of(session: Session, actor: Actor, reader_id: int, hold_id: int) -> holds.HoldLine:
    """One of the reader's active holds as this desk sees them. Another reader's hold, or
    one this desk does not see, is not found; one already closed is a conflict (someone
    else, another desk or the reader, got there first)."""
    line = next(
        (h for h in holds.holds_for(session, actor, reader_id) if h.hold.id == hold_id), None
    )
    if line is not None:
        return line
    _, level = readers.require_access(session, actor, reader_id, readers.ReaderAccess.DESK)
    closed = next(
        (h for h in holds.holds_of(session, reader_id, active_only=False) if h.hold.id == hold_id),
        None,
    )
    if closed is not None and (
        level is readers.ReaderAccess.FULL
        or actor.can(Permission.CIRCULATION_OPERATE, closed.pickup.path)
    ):
        raise IllegalTransition("hold", closed.hold.status, "changed")
    raise HoldNotFound(hold_id)


@dataclass
class Renewals:
    renewed: list[Loan] = field(default_factory=list)
    refused: list[tuple[service.LoanLine, DomainError]] = field(default_factory=list)


def renew_loans(
    session: Session,
    actor: Actor,
    reader_id: int,
    *,
    at: dt.datetime,
    loan_id: int | None = None,
) -> Renewals:
    """Renew one of the reader's loans, or all those this desk's libraries lent; each
    stands alone (a refusal leaves the others renewed)."""
    record = reader_record(session, actor, reader_id, at=at)
    done = Renewals()
    rows = [r for r in record.loans if r.may_renew and loan_id in (None, r.line.loan.id)]
    if loan_id is not None and not rows:
        raise PermissionDenied("this loan is not one this desk may renew")
    for row in rows:
        try:
            with session.begin_nested():
                loan = service.renew(session, actor, row.line.loan.id, at=at)
            done.renewed.append(loan)
            # a renewal at the desk is a staff action like any other: audited
            log_action(
                session,
                actor,
                "loan.renew",
                entity="loan",
                entity_id=loan.id,
                org_unit_id=loan.org_unit_id,
                at=at,
                details={"reader_id": reader_id, "due_at": loan.due_at.isoformat()},
            )
        except DomainError as exc:
            done.refused.append((row.line, exc))
    return done


@dataclass
class ReceiptLine:
    at: dt.datetime
    kind: str  # the fee's kind: overdue, lost, logistics, manual
    unit: libraries.UnitName
    amount: Decimal
    note: str


def receipt(
    session: Session, actor: Actor, reader_id: int, first: int, last: int
) -> list[ReceiptLine]:
    """The payments with ids ``first`` to ``last`` on a reader's fees that ``actor`` took
    (staff of the home library may print any of them again)."""
    reader, level = readers.require_access(session, actor, reader_id, readers.ReaderAccess.DESK)
    if last < first or last - first > 500:
        return []
    q = (
        select(FeeTransaction, Fee)
        .join(Fee, Fee.id == FeeTransaction.fee_id)
        .where(
            Fee.reader_id == reader.id,
            FeeTransaction.kind == "payment",
            FeeTransaction.id.between(first, last),
        )
        .order_by(FeeTransaction.id)
    )
    if level is not readers.ReaderAccess.FULL:
        q = q.where(FeeTransaction.staff_id == actor.id)
    units = libraries.unit_names(session)
    return [
        ReceiptLine(tx.at, fee.kind, units[fee.org_unit_id], fees.as_money(tx.amount), tx.note)
        for tx, fee in session.execute(q)
    ]
