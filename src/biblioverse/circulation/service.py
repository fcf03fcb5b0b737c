"""Use cases of circulation: the rule matrix, which rule applies, and loans (lend, take
back, renew). Holds and transits are in :mod:`.holds`, fees in :mod:`.fees`."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from biblioverse import catalog, libraries, readers
from biblioverse.access import Actor, Permission
from biblioverse.audit import log_action
from biblioverse.circulation import checks, courier, errors, fees, holds, rules
from biblioverse.circulation.errors import RuleNotFound
from biblioverse.circulation.lifecycle import HOLD, LOAN, HoldState, LoanState, TransitState, move
from biblioverse.circulation.matrix import ANY, POLICY_FIELDS, Matrix, matrix
from biblioverse.circulation.models import CirculationRule, Fee, Hold, Loan
from biblioverse.db import insert_row, plain_rows, write_row
from biblioverse.errors import DuplicateValue, FieldError, PermissionDenied, ValidationFailed
from biblioverse.events import record as record_event
from biblioverse.i18n import N_


@dataclass
class Applied:
    """The rule for a reader and a copy, why, when a loan made now would be due, and what
    would refuse that loan at the desk (None: nothing, it may be lent)."""

    explanation: rules.Explanation
    due: dt.datetime
    lending_library: libraries.UnitName
    at_library: libraries.UnitName
    refusal: errors.Refused | None = None

    def reasons(self) -> list[str]:
        refused = [f"checkout would refuse: {self.refusal.message}"] if self.refusal else []
        return self.explanation.reasons() + refused


def explain(
    session: Session, reader_id: int, item_id: int, *, at_unit_id: int | None, at: dt.datetime
) -> Applied:
    """Which rule applies to this reader borrowing this copy. The copy's owning library sets
    the terms (it lends); the due date follows the calendar of the library where the loan is
    made (``at_unit_id``, the owning library if None), where the reader will most likely
    bring it back. What would refuse the loan is asked of the checks checkout makes, at a
    desk without an override."""
    reader = readers.get(session, reader_id)
    item = catalog.get_item(session, item_id)
    owner = libraries.unit_name(session, item.org_unit_id)
    why = rules.resolve(matrix(session), owner.path, reader.category, item.item_type)
    where = libraries.unit_name(session, at_unit_id or item.org_unit_id)
    due = rules.due_at(why.rule.policy, at, libraries.schedule(session, where.id))
    refusal = None
    try:
        gate = checks.Gate(None, None, None)
        _may_lend(session, gate, item, reader.id, "desk", at, lock=False)  # only asking
    except errors.Refused as exc:
        refusal = exc
    return Applied(why, due, owner, where, refusal)


STAYS_IN = N_("Not lent: precious and ancient books never leave the building.")
KEPT_IN = N_("Not lent: the library keeps this copy for use in the library.")
# Why a copy that is not on loan cannot be lent now, by its status.
NOT_ON_SHELF = {
    catalog.ItemStatus.IN_TRANSIT.value: N_("Not lent now: the copy is in transit."),
    catalog.ItemStatus.MISSING.value: N_("Not lent: the copy is missing."),
    catalog.ItemStatus.LOST.value: N_("Not lent: the copy is lost."),
    catalog.ItemStatus.WITHDRAWN.value: N_("Not lent: the copy is withdrawn."),
    catalog.ItemStatus.IN_PROCESSING.value: N_("Not lent yet: the copy is being processed."),
}


def _kept_in(item: catalog.Item) -> str:
    return STAYS_IN if not catalog.may_leave_building(item.item_type) else KEPT_IN


@dataclass
class RuleInput:
    org_unit_id: int
    reader_category: str | None = None
    item_type: str | None = None
    name: str = ""
    policy: rules.Policy = dataclasses.field(default_factory=rules.Policy)


def save_rule(
    session: Session,
    actor: Actor | None,
    data: RuleInput,
    *,
    rule_id: int | None = None,
    at: dt.datetime,
) -> CirculationRule:
    """Create a row of the matrix or change one; ``actor`` None is the system (the demo).
    Staff set rules for the units their role covers."""
    unit = libraries.get_unit(session, data.org_unit_id)
    found: CirculationRule | None = None
    if rule_id is not None:
        found = session.get(CirculationRule, rule_id)
        if found is None:
            raise RuleNotFound(rule_id)
    # Both the row as stored and the row as it would be must be within the actor's scope:
    # a branch librarian may neither change the consortium's rows nor move one to a branch.
    scopes = [unit] if found is None else [libraries.get_unit(session, found.org_unit_id), unit]
    if actor is not None and not all(
        actor.can(Permission.CIRCULATION_RULES, u.path) for u in scopes
    ):
        raise PermissionDenied("you may not set circulation rules here")
    problems = [FieldError(f, "invalid", m) for f, m in rules.policy_errors(data.policy)]
    if data.reader_category not in (None, *(c.value for c in readers.Category)):
        problems.append(FieldError("reader_category", "invalid", N_("Not a reader category.")))
    if data.item_type not in (None, *(t.value for t in catalog.ItemType)):
        problems.append(FieldError("item_type", "invalid", N_("Not an item type.")))
    elif (
        data.item_type and not catalog.may_leave_building(data.item_type) and data.policy.max_loans
    ):
        problems.append(
            FieldError(
                "item_type",
                "stays_in_building",
                N_("Precious and ancient books never leave the building: lend 0."),
            )
        )
    cell = (data.org_unit_id, data.reader_category or ANY, data.item_type or ANY)
    was_default = found is not None and rules.is_default_cell(
        scopes[0].path,
        None if found.reader_category == ANY else found.reader_category,
        None if found.item_type == ANY else found.item_type,
    )
    if was_default and found is not None and cell != (found.org_unit_id, ANY, ANY):
        problems.append(
            FieldError(
                "org_unit_id",
                "default_rule",
                N_(
                    "The consortium's default rule covers every reader and every copy; "
                    "change its loan terms, not where it applies."
                ),
            )
        )
    if problems:
        raise ValidationFailed(problems)
    clash = session.scalar(
        select(CirculationRule.id).where(
            CirculationRule.org_unit_id == cell[0],
            CirculationRule.reader_category == cell[1],
            CirculationRule.item_type == cell[2],
        )
    )
    if clash is not None and clash != rule_id:
        raise DuplicateValue("circulation rule", "cell", "/".join(map(str, cell)))
    if found is None:
        row = CirculationRule()
        session.add(row)
    else:
        row = found
    row.org_unit_id, row.reader_category, row.item_type = cell
    row.name = data.name
    for name in POLICY_FIELDS:
        value = getattr(data.policy, name)
        setattr(row, name, value.value if isinstance(value, rules.PickupPolicy) else value)
    row.updated_at = at
    session.flush()
    if actor is not None:
        log_action(
            session,
            actor,
            "circulation.rule.save",
            entity="circulation_rule",
            entity_id=row.id,
            org_unit_id=unit.id,
            at=at,
            details={"cell": list(cell), "name": data.name},
        )
    return row


# --- loans ----------------------------------------------------------------------------


def _ensure_desk(actor: Actor | None, unit: libraries.UnitName) -> None:
    checks.ensure_serves_readers(actor)
    if (
        actor is not None
        and actor.is_staff
        and not actor.can(Permission.CIRCULATION_OPERATE, unit.path)
    ):
        raise PermissionDenied("you may not lend or take back copies here")


def _changed(session: Session, item: catalog.Item, topic: str, loan: Loan, at: dt.datetime) -> None:
    record_event(session, topic, {"loan_id": loan.id, "item_id": item.id}, at=at)
    # Availability shows in search results: the index refreshes the record after commit.
    catalog.availability_changed(session, [item.record_id], at)


# The statements of every check-out and check-in are built once: building them per call
# (their clauses and cache keys) was a large share of a loan's time.
_BORROWER = select(
    readers.Reader,
    select(func.count())
    .select_from(Loan)
    .where(Loan.reader_id == bindparam("reader_id"), Loan.returned_at.is_(None))
    .scalar_subquery(),
    fees.owed_by(bindparam("reader_id")),
).where(readers.Reader.id == bindparam("reader_id"))


def _borrower(session: Session, reader_id: int) -> tuple[readers.Reader, int, Decimal]:
    """The reader, their open loans and what they owe, in one statement."""
    row = session.execute(_BORROWER, {"reader_id": reader_id}).one_or_none()
    if row is None:
        raise readers.ReaderNotFound(reader_id)
    reader, open_loans, owed = row
    return reader, int(open_loans or 0), fees.as_money(owed)


_HOLDS_OF_LOAN_SEEN = (
    select(Hold.id, Hold.status, Hold.trapped_item_id, Hold.reader_id)
    .where(
        (
            (Hold.trapped_item_id == bindparam("item_id"))
            & Hold.status.in_([HoldState.READY.value, HoldState.IN_TRANSIT.value])
        )
        | (
            (Hold.reader_id == bindparam("reader_id"))
            & (Hold.record_id == bindparam("record_id"))
            & (Hold.status == HoldState.WAITING.value)
        )
    )
    .order_by(Hold.id)
)
_HOLDS_OF_LOAN = _HOLDS_OF_LOAN_SEEN.with_for_update()  # the loan may fill one
_OPEN_LOAN_OF_ITEM = (
    select(Loan, readers.Reader.category)
    .join(readers.Reader, readers.Reader.id == Loan.reader_id)
    .where(Loan.item_id == bindparam("item_id"), Loan.returned_at.is_(None))
)

LENDABLE = frozenset({catalog.ItemStatus.AVAILABLE.value, catalog.ItemStatus.ON_HOLD_SHELF.value})


@dataclass
class _Lending:
    """What a loan that may be made rests on: the reader, the rule, and the holds it fills."""

    reader: readers.Reader
    why: rules.Explanation
    set_aside: Any  # the hold this copy is set aside for (this reader's), as a plain row
    waiting: Any  # this reader's waiting hold on the title, as a plain row


def _may_lend(
    session: Session,
    gate: checks.Gate,
    item: catalog.Item,
    reader_id: int,
    channel: str,
    at: dt.datetime,
    at_unit_id: int | None = None,
    *,
    lock: bool = True,
) -> _Lending:
    """Every refusal of a loan, in the order checkout meets them. Checkout and explain both
    ask here, so "Which rule applies?" never promises a loan that checkout refuses."""
    reader, open_loans, owed = _borrower(session, reader_id)
    if item.status == catalog.ItemStatus.ON_LOAN.value:
        raise errors.ItemOnLoan(f"copy {item.barcode} is already on loan")
    stands_at = item.at_unit_id or item.org_unit_id
    if channel == "mobile" and at_unit_id is not None and stands_at != at_unit_id:
        # a phone lends what the reader holds in their hand, in the library they are in
        raise errors.ItemElsewhere(
            f"copy {item.barcode} is in another library", details={"library_id": stands_at}
        )
    if not item.circulates or item.status not in LENDABLE:
        why_not = _kept_in(item) if not item.circulates else NOT_ON_SHELF[item.status]
        raise errors.ItemNotLoanable(
            f"copy {item.barcode} cannot be lent ({why_not})", details={"why": why_not}
        )
    # One look at the holds this loan concerns: the copy's, if it is set aside for someone,
    # and this reader's waiting hold on the title (filled by the loan).
    # Read as plain rows (most loans concern no hold); the one filled is loaded below.
    set_aside, waiting = None, None
    for hold in plain_rows(
        session,
        _HOLDS_OF_LOAN if lock else _HOLDS_OF_LOAN_SEEN,
        {"item_id": item.id, "reader_id": reader.id, "record_id": item.record_id},
    ):
        if hold.status == HoldState.WAITING.value:
            waiting = waiting or hold
        elif hold.trapped_item_id == item.id:
            set_aside = hold
    if set_aside is not None and set_aside.reader_id != reader.id:
        raise errors.ItemHeldForAnother(f"copy {item.barcode} is held for another reader")
    m = Matrix(session)
    why = m.rule(item.org_unit_id, reader.category, item.item_type)
    policy = why.rule.policy
    checks.reader_may_borrow(session, gate, reader, policy, at, owed=owed)
    if policy.max_loans == 0:
        owner = m.units[item.org_unit_id]
        gate.refuse(
            errors.NotLentToReader(
                f"{owner.code} does not lend {item.item_type} copies to {reader.category} readers"
            )
        )
    if channel == "mobile" and not policy.mobile_checkout:
        raise errors.ChannelNotAllowed("this copy is lent at a desk, not by phone")
    if channel == "kiosk" and not policy.self_service:
        raise errors.ChannelNotAllowed("this copy is lent at a desk, not at a kiosk")
    if policy.max_loans and open_loans >= policy.max_loans:
        gate.refuse(
            errors.LoanLimitReached(
                f"the card already has {open_loans} loans ({policy.max_loans} allowed)"
            )
        )
    return _Lending(reader, why, set_aside, waiting)


def checkout(
    session: Session,
    actor: Actor | None,
    *,
    reader_id: int,
    barcode: str | None = None,
    rfid_tag: str | None = None,
    at_unit_id: int,
    channel: str = "desk",
    at: dt.datetime,
    override: str | None = None,
    locked: catalog.Item | None = None,
    present_at: int | None = None,
) -> Loan:
    """Lend a copy. The copy's row is locked first, so of two desks racing for one copy the
    second sees it on loan; the database's one-open-loan index guards the rest. A refusal
    names its reason; staff allowed to override may lend past the overridable ones by
    giving a reason, which is audited. A copy set aside for this reader fills their hold;
    one set aside for another reader is refused. ``locked``: the copy, when the caller has
    already read it with its row locked in this transaction (then it is not read again).
    ``present_at``: by phone, the library the phone has shown it is in (a "you are here"
    sign scanned, the library's network; :mod:`.presence`): the loan is made there only."""
    unit = libraries.unit_name(session, at_unit_id)
    _ensure_desk(actor, unit)
    if actor is not None and actor.is_reader and actor.id != reader_id:
        raise PermissionDenied("readers borrow on their own card only")
    if channel == "mobile" and present_at != unit.id:
        raise errors.NotInLibrary(f"the phone has not shown it is in {unit.code}")
    item = locked or catalog.item_for_update(session, barcode=barcode, rfid_tag=rfid_tag)
    gate = checks.Gate(actor, override, unit)
    lending = _may_lend(session, gate, item, reader_id, channel, at, unit.id)
    reader, why = lending.reader, lending.why
    set_aside, waiting = lending.set_aside, lending.waiting
    policy = why.rule.policy
    # The loan and the copy are written without the unit of work (db.insert_row, ADR 0021).
    loan = insert_row(
        session,
        Loan,
        item_id=item.id,
        reader_id=reader.id,
        org_unit_id=unit.id,
        rule_id=why.rule.id,
        channel=channel,
        loaned_at=at,
        due_at=rules.due_at(policy, at, libraries.schedule(session, unit.id)).astimezone(dt.UTC),
        renewals=0,
        returned_at=None,
        returned_unit_id=None,
        status=LoanState.OPEN.value,
        lost_at=None,
    )
    write_row(
        session,
        item,
        status=catalog.next_status(item, catalog.ItemStatus.ON_LOAN),
        at_unit_id=None,
    )
    # The reader's hold on this title is filled: the copy set aside for them, or one they
    # took from the open shelf while waiting.
    filled_row = set_aside or waiting
    if filled_row is not None:
        filled = session.get_one(Hold, filled_row.id)
        filled.status = move(HOLD, "hold", filled.status, HoldState.FULFILLED)
        filled.closed_at = at
        filled.trapped_item_id = item.id
        session.flush()
    gate.audit(session, "checkout", "loan", loan.id, at)
    _changed(session, item, "circulation.loan.created", loan, at)
    return loan


@dataclass
class Checkin:
    """What a check-in did: the loan it closed (None when the copy was not on loan: a
    transit arriving, a copy pulled for a hold) and where the copy goes now. ``again``: the
    copy was scanned in here before and nothing changed (a second scan of one return)."""

    loan: Loan | None
    item: catalog.Item
    routing: holds.Routing
    again: bool = False


def checkin(
    session: Session,
    actor: Actor | None,
    *,
    barcode: str | None = None,
    rfid_tag: str | None = None,
    at_unit_id: int,
    at: dt.datetime,
    returned: dt.datetime | None = None,
    locked: catalog.Item | None = None,
) -> Checkin:
    """Take a copy back at any member library, or receive one arriving in transit, or set
    one from the shelf aside for a hold; then route it (hold shelf, transit, or shelf).
    Fines stop when the loan ends: now, or at ``returned``, the time a machine that was
    offline took the copy in, as :func:`rules.returned_at` bounds it. Scanning a copy that
    is on its shelf with nothing to do is refused as not on loan. ``locked`` as for
    :func:`checkout`."""
    unit = libraries.unit_name(session, at_unit_id)
    _ensure_desk(actor, unit)
    item = locked or catalog.item_for_update(session, barcode=barcode, rfid_tag=rfid_tag)
    before = (item.status, item.at_unit_id)
    m = Matrix(session)  # read once for the fine and the routing
    found = session.execute(_OPEN_LOAN_OF_ITEM, {"item_id": item.id}).one_or_none()
    loan: Loan | None = None
    if found is not None:
        loan = found[0]
        ended = rules.returned_at(returned, loaned_at=loan.loaned_at, now=at)
        policy = m.rule(item.org_unit_id, found.category, item.item_type).rule.policy
        fees.on_return(session, loan, item, policy, ended)
        write_row(
            session,
            loan,
            status=move(LOAN, "loan", loan.status, LoanState.RETURNED),
            returned_at=ended,
            returned_unit_id=unit.id,
        )
        # The copy's new status is written by the routing, which every way sets one.
    # A copy on loan is not travelling: transits start when loans end (here, or when a
    # courier collects).
    transit = holds.open_transit(session, item.id) if loan is None else None
    if (
        transit is not None
        and transit.from_unit_id == unit.id
        and transit.status == TransitState.CREATED
    ):
        # Scanned again where it was just routed, before it left: the same transit stands.
        hold = session.get(Hold, transit.hold_id) if transit.hold_id is not None else None
        routing = holds.Routing(holds.Action.TRANSIT, transit.to_unit_id, hold, transit)
        return Checkin(None, item, routing, again=True)
    if transit is not None:
        holds.arrive(session, transit, unit.id, at)
        courier.arrived(session, transit, unit.id, at)
    # A copy neither on loan nor travelling: on its shelf, or on the hold shelf for a hold.
    set_aside = holds.set_aside_for(session, item.id) if loan is None and transit is None else None
    routing = holds.route(session, item, unit.id, at, m, from_loan=loan is not None)
    unchanged = (
        loan is None
        and transit is None
        and before == (item.status, item.at_unit_id)
        and set_aside == (routing.hold.id if routing.hold is not None else None)
    )
    if unchanged and routing.action is holds.Action.SHELVE:
        raise errors.NotOnLoan(f"copy {item.barcode} is not on loan")
    session.flush()
    if loan is not None:
        _changed(session, item, "circulation.loan.returned", loan, at)
    else:
        catalog.availability_changed(session, [item.record_id], at)
    return Checkin(loan, item, routing, again=unchanged)


@dataclass
class CopyAtDesk:
    """What the desk says about a copy it scanned: its title, its open loan and borrower,
    or its last return, and the fine a loan's return charged."""

    item: catalog.Item
    title: str
    loan: Loan | None  # the open loan, else the last one
    reader: readers.Reader | None  # that loan's reader (None once anonymised)


def copy_at_desk(session: Session, barcode: str) -> CopyAtDesk | None:
    """The copy with this barcode, its title and its latest loan, for the desk's words."""
    row = session.execute(
        select(catalog.Item, catalog.Record.title)
        .join(catalog.Record, catalog.Record.id == catalog.Item.record_id)
        .where(catalog.Item.barcode == barcode.strip())
    ).one_or_none()
    if row is None:
        return None
    item, title = row
    loan = session.scalar(
        select(Loan).where(Loan.item_id == item.id).order_by(Loan.loaned_at.desc(), Loan.id.desc())
    )
    reader = readers.get(session, loan.reader_id) if loan and loan.reader_id else None
    return CopyAtDesk(item, title, loan, reader)


def fine_of(session: Session, loan_id: int) -> Decimal:
    """What the return of a loan charged for lateness (0.00 if on time)."""
    return fees.as_money(
        session.scalar(
            select(func.sum(Fee.amount)).where(Fee.loan_id == loan_id, Fee.kind == "overdue")
        )
    )


def renew(
    session: Session,
    actor: Actor | None,
    loan_id: int,
    *,
    at: dt.datetime,
    override: str | None = None,
) -> Loan:
    """Renew a loan for another loan period, from now, as its rule allows, unless another
    reader waits for the title and no copy on the shelf can serve them."""
    loan = session.scalar(
        select(Loan)
        .where(Loan.id == loan_id)
        .with_for_update()
        .execution_options(populate_existing=True)  # fresh, if read before the lock
    )
    if loan is None or loan.status != LoanState.OPEN:
        raise errors.LoanNotFound(loan_id)
    if actor is not None and actor.is_reader and actor.id != loan.reader_id:
        raise errors.LoanNotFound(loan_id)  # another reader's loan does not exist for them
    unit = libraries.unit_name(session, loan.org_unit_id)
    _ensure_desk(actor, unit)
    gate = checks.Gate(actor, override, unit)
    assert loan.reader_id is not None
    reader = readers.get(session, loan.reader_id)
    item = catalog.get_item(session, loan.item_id)
    policy = Matrix(session).policy(item, reader)
    checks.reader_may_borrow(session, gate, reader, policy, at)
    if loan.renewals >= policy.renewals:
        gate.refuse(
            errors.RenewalLimitReached(f"renewed {loan.renewals} times of {policy.renewals}")
        )
    if _others_wait(session, item, reader.id):
        gate.refuse(errors.RenewalHeld("another reader is waiting for this title"))
    fees.charge_overdue(session, loan, item, policy, at)  # a late renewal still owes its days
    loan.renewals += 1
    loan.due_at = rules.due_at(policy, at, libraries.schedule(session, unit.id)).astimezone(dt.UTC)
    session.flush()
    gate.audit(session, "renew", "loan", loan.id, at)
    _changed(session, item, "circulation.loan.renewed", loan, at)
    return loan


def _others_wait(session: Session, item: catalog.Item, reader_id: int) -> bool:
    """Whether a waiting hold on the title could not be filled by a copy on the shelf."""
    waiting = session.scalar(
        select(func.count())
        .select_from(Hold)
        .where(
            Hold.record_id == item.record_id,
            Hold.status == HoldState.WAITING.value,
            Hold.reader_id != reader_id,
            (Hold.item_id.is_(None)) | (Hold.item_id == item.id),
        )
    )
    if not waiting:
        return False
    on_shelf = session.scalar(
        select(func.count())
        .select_from(catalog.Item)
        .where(
            catalog.Item.record_id == item.record_id,
            catalog.Item.status == catalog.ItemStatus.AVAILABLE.value,
            catalog.Item.circulates.is_(True),
        )
    )
    return waiting > (on_shelf or 0)


@dataclass
class LoanLine:
    """A reader's open loan as their account shows it."""

    loan: Loan
    barcode: str
    record_id: int
    title: str


def open_loans(session: Session, reader_id: int) -> list[LoanLine]:
    """A reader's open loans, due soonest first."""
    rows = session.execute(
        select(Loan, catalog.Item.barcode, catalog.Record.id, catalog.Record.title)
        .join(catalog.Item, catalog.Item.id == Loan.item_id)
        .join(catalog.Record, catalog.Record.id == catalog.Item.record_id)
        .where(Loan.reader_id == reader_id, Loan.returned_at.is_(None))
        .order_by(Loan.due_at, Loan.id)
    )
    return [LoanLine(loan, code, rid, title) for loan, code, rid, title in rows]


def reading_history(session: Session, reader_id: int, *, limit: int = 500) -> list[LoanLine]:
    """A reader's returned loans, the latest first (kept only for readers who opted in)."""
    rows = session.execute(
        select(Loan, catalog.Item.barcode, catalog.Record.id, catalog.Record.title)
        .join(catalog.Item, catalog.Item.id == Loan.item_id)
        .join(catalog.Record, catalog.Record.id == catalog.Item.record_id)
        .where(Loan.reader_id == reader_id, Loan.returned_at.is_not(None))
        .order_by(Loan.returned_at.desc(), Loan.id.desc())
        .limit(limit)
    )
    return [LoanLine(loan, code, rid, title) for loan, code, rid, title in rows]


def reader_data(session: Session, reader_id: int) -> dict[str, list[dict[str, Any]]]:
    """Circulation's sections of a reader's data export (``readers.export_data``): loans,
    the reading history, holds, fees and courier returns, libraries by their codes."""
    units = libraries.unit_names(session)

    def loan(line: LoanLine) -> dict[str, Any]:
        x = line.loan
        return {
            "title": line.title,
            "barcode": line.barcode,
            "library": units[x.org_unit_id].code,
            "loaned_at": x.loaned_at.isoformat(),
            "due_at": x.due_at.isoformat(),
            "returned_at": x.returned_at.isoformat() if x.returned_at else None,
            "renewals": x.renewals,
        }

    return {
        "loans": [loan(x) for x in open_loans(session, reader_id)],
        "reading_history": [loan(x) for x in reading_history(session, reader_id)],
        "holds": [
            {
                "title": h.title,
                "pickup_library": h.pickup.code,
                "status": h.hold.status,
                "placed_at": h.hold.placed_at.isoformat(),
                "not_needed_after": (
                    h.hold.not_needed_after.isoformat() if h.hold.not_needed_after else None
                ),
                "position": h.position,
            }
            for h in holds.holds_of(session, reader_id, active_only=False)
        ],
        "fees": [
            {
                "kind": f.kind,
                "library": units[f.org_unit_id].code,
                "amount": str(f.amount),
                "paid": str(f.paid),
                "waived": str(f.waived),
                "created_at": f.created_at.isoformat(),
            }
            for f in fees.fees_of(session, reader_id, open_only=False)
        ],
        "courier_returns": [
            {
                "status": c.courier.status,
                "address": c.courier.address,
                "pickup_at": c.courier.pickup_at.isoformat(),
                "requested_at": c.courier.requested_at.isoformat(),
                "fee": str(c.fee),
                "titles": [t for _b, t in c.titles],
            }
            for c in courier.of_reader(session, reader_id, limit=1000)
        ],
    }


def anonymise(session: Session, at: dt.datetime, *, after_days: int) -> int:
    """Loans returned more than ``after_days`` ago forget their reader, unless the reader
    keeps a reading history. Fees keep their reader (money owed is not history). Courier
    returns closed as long ago forget their address."""
    courier.anonymise(session, at, after_days=after_days)
    keepers = select(readers.Reader.id).where(readers.Reader.keep_history.is_(True))
    done = session.execute(
        update(Loan)
        .where(
            Loan.returned_at.is_not(None),
            Loan.returned_at < at - dt.timedelta(days=after_days),
            Loan.reader_id.is_not(None),
            Loan.reader_id.not_in(keepers),
        )
        .values(reader_id=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(done, "rowcount", 0) or 0)
