"""Holds and transits: the queue of a title, setting a returned copy aside for the next
reader in it, and copies travelling between member libraries.

Where a copy goes when it is scanned in at a library (:func:`route`):

1. If it is already set aside for a hold, to that hold's pickup library: on the hold shelf
   here, or in transit there.
2. Otherwise, if a waiting hold in its title's queue can be filled by it (the hold is for
   the title or for this copy, and the copy's rule lets the reader collect it at the hold's
   pickup library), it is set aside for the first such hold, in queue order: priority
   from the rule, then request time.
3. Otherwise home: it stays here if this is its owning library or its rule makes it float,
   and travels to its owner if not.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import ColumnElement, Select, bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from biblioverse import catalog, libraries, readers
from biblioverse.access import Actor, Permission
from biblioverse.circulation import checks, errors, notices, rules
from biblioverse.circulation.lifecycle import (
    ACTIVE_HOLD,
    HOLD,
    OPEN_TRANSIT,
    TRANSIT,
    HoldState,
    IllegalTransition,
    TransitState,
    move,
)
from biblioverse.circulation.matrix import Matrix
from biblioverse.circulation.models import Hold, Loan, Transit
from biblioverse.db import plain_rows, write_row
from biblioverse.errors import FieldError, PermissionDenied, ValidationFailed
from biblioverse.events import record as record_event
from biblioverse.i18n import N_

QUEUE_ORDER = (Hold.priority.desc(), Hold.placed_at, Hold.id)
# How many queued holds a check-in looks through for one this copy can fill; holds it
# cannot fill (pickup elsewhere under an owner-only rule, another copy) are rare.
QUEUE_LOOKAHEAD = 50
# Copies that cannot fill a hold whatever the rule says.
UNHOLDABLE = frozenset(
    {
        catalog.ItemStatus.LOST.value,
        catalog.ItemStatus.MISSING.value,
        catalog.ItemStatus.WITHDRAWN.value,
    }
)


def _event(session: Session, topic: str, hold: Hold, at: dt.datetime) -> None:
    record_event(
        session,
        topic,
        {"hold_id": hold.id, "reader_id": hold.reader_id, "record_id": hold.record_id},
        at=at,
    )


def _set(hold: Hold, target: HoldState) -> None:
    hold.status = move(HOLD, "hold", hold.status, target)


# --- placing and managing holds ---------------------------------------------------------


def _act_for(actor: Actor | None, reader_id: int) -> None:
    if actor is None:
        return
    checks.ensure_serves_readers(actor)
    if actor.is_reader and actor.id != reader_id:
        raise PermissionDenied("readers place holds for themselves only")
    if actor.is_staff and not actor.can(Permission.CIRCULATION_OPERATE):
        raise PermissionDenied("your roles do not include circulation")
    # A self-service machine acts for the reader whose card and PIN it checked.


def place(
    session: Session,
    actor: Actor | None,
    *,
    reader_id: int,
    record_id: int,
    pickup_unit_id: int,
    item_id: int | None = None,
    at: dt.datetime,
    override: str | None = None,
    not_needed_after: dt.date | None = None,
) -> Hold:
    """Put a reader in the queue for a title (any copy) or for one copy, to collect at a
    member library, until ``not_needed_after`` if given (unfilled after that day, the hold
    expires). Refused, by reason, when no copy may be lent to the reader, none may be
    collected at that library, the reader already has it or asked for it, or their holds
    are at the rule's limit."""
    _act_for(actor, reader_id)
    if not_needed_after is not None and not rules.wanted_long_enough(
        not_needed_after, readers.local_today(at)
    ):
        raise ValidationFailed(
            [
                FieldError(
                    "not_needed_after",
                    "invalid",
                    N_("A date from today to a year ahead, or leave it empty."),
                )
            ]
        )
    reader = readers.get(session, reader_id)
    record = catalog.get_record(session, record_id)
    pickup = libraries.get_unit(session, pickup_unit_id)
    if pickup.kind == libraries.OrgKind.CONSORTIUM.value:
        raise ValidationFailed(
            [FieldError("pickup_library_id", "invalid", N_("Choose a library or branch."))]
        )
    q = select(catalog.Item).where(catalog.Item.record_id == record.id)
    if item_id is not None:
        q = q.where(catalog.Item.id == item_id)
    copies = [i for i in session.scalars(q) if i.circulates and i.status not in UNHOLDABLE]
    if item_id is not None and not copies:
        catalog.get_item(session, item_id)  # not found, or of another record: say so
    m = Matrix(session)
    lendable = [(i, m.policy(i, reader)) for i in copies]
    lendable = [(i, p) for i, p in lendable if p.max_loans > 0]
    if not lendable:
        raise errors.HoldNotAllowed("no copy of this title can be lent to this reader")
    home = m.path(reader.home_library_id)
    collectable = [
        (i, p)
        for i, p in lendable
        if rules.pickup_allowed(p, pickup.path, home, m.path(i.org_unit_id))
    ]
    if not collectable:
        raise errors.PickupNotAllowed(f"no copy of this title can be collected at {pickup.code}")
    gate = checks.Gate(actor, override, pickup)
    policy = collectable[0][1]
    checks.reader_may_borrow(session, gate, reader, policy, at)
    if session.scalar(
        select(Hold.id).where(
            Hold.reader_id == reader.id,
            Hold.record_id == record.id,
            Hold.status.in_([s.value for s in ACTIVE_HOLD]),
        )
    ):
        raise errors.AlreadyRequested("this reader already has a hold on this title")
    if session.scalar(
        select(Loan.id)
        .join(catalog.Item, catalog.Item.id == Loan.item_id)
        .where(
            Loan.reader_id == reader.id,
            Loan.returned_at.is_(None),
            catalog.Item.record_id == record.id,
        )
    ):
        raise errors.AlreadyBorrowed("this reader has a copy of this title on loan")
    active = session.scalar(
        select(func.count())
        .select_from(Hold)
        .where(Hold.reader_id == reader.id, Hold.status.in_([s.value for s in ACTIVE_HOLD]))
    )
    if (active or 0) >= policy.max_holds:
        gate.refuse(
            errors.HoldLimitReached(f"the card has {active} holds ({policy.max_holds} allowed)")
        )
    hold = Hold(
        reader_id=reader.id,
        record_id=record.id,
        item_id=item_id,
        pickup_unit_id=pickup.id,
        status=HoldState.WAITING.value,
        priority=max(p.hold_priority for _i, p in collectable),
        placed_at=at,
        not_needed_after=not_needed_after,
    )
    try:
        with session.begin_nested():
            session.add(hold)
            session.flush()
    except IntegrityError:  # the same request, from a second tab, committed first
        raise errors.AlreadyRequested("this reader already has a hold on this title") from None
    gate.audit(session, "hold", "hold", hold.id, at)
    _event(session, "circulation.hold.placed", hold, at)
    return hold


def _own_hold(session: Session, actor: Actor | None, hold_id: int) -> Hold:
    hold = session.scalar(select(Hold).where(Hold.id == hold_id).with_for_update())
    if hold is None:
        raise errors.HoldNotFound(hold_id)
    checks.ensure_serves_readers(actor)
    if actor is not None and actor.is_reader and actor.id != hold.reader_id:
        raise errors.HoldNotFound(hold_id)  # another reader's hold does not exist for them
    if actor is not None and actor.is_staff and not actor.can(Permission.CIRCULATION_OPERATE):
        raise PermissionDenied("your roles do not include circulation")
    # a self-service machine acts for the reader whose card and PIN it checked
    if actor is not None and actor.is_staff and not _may_handle(session, actor, hold):
        raise PermissionDenied("only the reader's home library, or the library it is collected at")
    return hold


def _may_handle(session: Session, actor: Actor, hold: Hold) -> bool:
    """Staff of the reader's home library handle all their holds; another library's desk
    those to be collected there (docs/adr/0025)."""
    reader = readers.get(session, hold.reader_id)
    level = readers.access(session, actor, reader)
    if level is readers.ReaderAccess.FULL:
        return True
    pickup = libraries.unit_name(session, hold.pickup_unit_id).path
    return level is readers.ReaderAccess.DESK and _collects_here(actor, pickup)


def _collects_here(actor: Actor, pickup_path: str) -> bool:
    return actor.can(Permission.CIRCULATION_OPERATE, pickup_path)


def holds_for(session: Session, actor: Actor, reader_id: int) -> list[HoldLine]:
    """A reader's active holds as ``actor`` may see them: all of them for the reader and
    their home library's staff; for another library's desk, those collected there."""
    _, level = readers.require_access(session, actor, reader_id, readers.ReaderAccess.DESK)
    lines = holds_of(session, reader_id)
    if level is readers.ReaderAccess.FULL:
        return lines
    return [x for x in lines if _collects_here(actor, x.pickup.path)]


def cancel(session: Session, actor: Actor | None, hold_id: int, *, at: dt.datetime) -> Hold:
    """Leave the queue. A copy already set aside goes on to the next reader when it is next
    scanned (the hold shelf list shows it to clear)."""
    hold = _own_hold(session, actor, hold_id)
    _set(hold, HoldState.CANCELLED)
    hold.closed_at = at
    session.flush()
    _event(session, "circulation.hold.cancelled", hold, at)
    return hold


def suspend(
    session: Session, actor: Actor | None, hold_id: int, *, until: dt.date | None, at: dt.datetime
) -> Hold:
    """Keep the place in the queue but let others go first (a reader on holiday), until a
    date or until resumed."""
    hold = _own_hold(session, actor, hold_id)
    if until is not None and until <= readers.local_today(at):
        raise ValidationFailed([FieldError("until", "invalid", N_("A date after today."))])
    _set(hold, HoldState.SUSPENDED)
    hold.suspended_until = until
    session.flush()
    return hold


def resume(session: Session, actor: Actor | None, hold_id: int, *, at: dt.datetime) -> Hold:
    hold = _own_hold(session, actor, hold_id)
    _set(hold, HoldState.WAITING)
    hold.suspended_until = None
    session.flush()
    return hold


def change_pickup(
    session: Session, actor: Actor | None, hold_id: int, pickup_unit_id: int, at: dt.datetime
) -> Hold:
    """Collect at another library, while no copy has been set aside yet."""
    hold = _own_hold(session, actor, hold_id)
    if hold.status not in (HoldState.WAITING, HoldState.SUSPENDED):
        raise errors.PickupNotAllowed("a copy is already on its way; cancel instead")
    reader = readers.get(session, hold.reader_id)
    pickup = libraries.get_unit(session, pickup_unit_id)
    m = Matrix(session)
    home = m.path(reader.home_library_id)
    copies = session.scalars(select(catalog.Item).where(catalog.Item.record_id == hold.record_id))
    if not any(
        rules.pickup_allowed(m.policy(i, reader), pickup.path, home, m.path(i.org_unit_id))
        for i in copies
        if hold.item_id in (None, i.id)
    ):
        raise errors.PickupNotAllowed(f"no copy of this title can be collected at {pickup.code}")
    hold.pickup_unit_id = pickup.id
    session.flush()
    return hold


def queue_length_query(record_id: int) -> Select[int]:
    """How many readers wait for a title (suspended holds keep their place)."""
    queued = (HoldState.WAITING.value, HoldState.SUSPENDED.value)
    return (
        select(func.count())
        .select_from(Hold)
        .where(Hold.record_id == record_id, Hold.status.in_(queued))
    )


def active_hold(session: Session, reader_id: int, record_id: int) -> Hold | None:
    """The reader's hold on a title that is not yet collected, cancelled or expired."""
    return session.scalar(
        select(Hold).where(
            Hold.reader_id == reader_id,
            Hold.record_id == record_id,
            Hold.status.in_([s.value for s in ACTIVE_HOLD]),
        )
    )


def queue_position(session: Session, hold: Hold) -> int | None:
    """1 for the next reader to be served; None for a hold no longer in the queue. Suspended
    holds keep their place and are counted."""
    if hold.status not in (HoldState.WAITING, HoldState.SUSPENDED):
        return None
    queued = (HoldState.WAITING.value, HoldState.SUSPENDED.value)
    ahead = session.scalar(
        select(func.count())
        .select_from(Hold)
        .where(
            Hold.record_id == hold.record_id,
            Hold.status.in_(queued),
            (Hold.priority > hold.priority)
            | (
                (Hold.priority == hold.priority)
                & (
                    (Hold.placed_at < hold.placed_at)
                    | ((Hold.placed_at == hold.placed_at) & (Hold.id < hold.id))
                )
            ),
        )
    )
    return (ahead or 0) + 1


@dataclass
class HoldLine:
    """A reader's hold as their account shows it."""

    hold: Hold
    title: str
    pickup: libraries.UnitName
    position: int | None


def holds_of(session: Session, reader_id: int, *, active_only: bool = True) -> list[HoldLine]:
    units = libraries.unit_names(session)
    q = (
        select(Hold, catalog.Record.title)
        .join(catalog.Record, catalog.Record.id == Hold.record_id)
        .where(Hold.reader_id == reader_id)
        .order_by(Hold.placed_at, Hold.id)
    )
    if active_only:
        q = q.where(Hold.status.in_([s.value for s in ACTIVE_HOLD]))
    return [
        HoldLine(h, title, units[h.pickup_unit_id], queue_position(session, h))
        for h, title in session.execute(q)
    ]


# --- where a scanned copy goes -------------------------------------------------------------


class Action(StrEnum):
    SHELVE = "shelve"  # back on the open shelf here
    HOLD_SHELF = "hold_shelf"  # on the hold shelf here, for a reader
    TRANSIT = "transit"  # send to another library


@dataclass
class Routing:
    action: Action
    unit_id: int  # where the copy stays, or where to send it
    hold: Hold | None = None
    transit: Transit | None = None


# Built once: every check-in asks.
_QUEUE_HEAD = (
    select(
        Hold.id,
        Hold.item_id,
        Hold.pickup_unit_id,
        readers.Reader.category,
        readers.Reader.home_library_id,
    )
    .join(readers.Reader, readers.Reader.id == Hold.reader_id)
    .where(Hold.record_id == bindparam("record_id"), Hold.status == HoldState.WAITING.value)
    .order_by(*QUEUE_ORDER)
    .limit(QUEUE_LOOKAHEAD)
    # Two desks scanning two copies of one title at once must not set both aside for the
    # same hold: the second skips the hold the first has locked and takes the next.
    .with_for_update(of=Hold, skip_locked=True)
)


def _next_hold(session: Session, item: catalog.Item, m: Matrix) -> Hold | None:
    """The first waiting hold in the copy's title queue that this copy can fill."""
    # Plain rows (most titles have no queue); the hold chosen is loaded, already locked.
    rows = plain_rows(session, _QUEUE_HEAD, {"record_id": item.record_id})
    owner = m.path(item.org_unit_id)
    for hold_id, hold_item_id, pickup_unit_id, category, home in rows:
        if hold_item_id not in (None, item.id):
            continue
        policy = m.rule(item.org_unit_id, category, item.item_type).rule.policy
        if policy.max_loans > 0 and rules.pickup_allowed(
            policy, m.path(pickup_unit_id), m.path(home), owner
        ):
            rows.close()
            return session.get_one(Hold, hold_id)
    return None


def _stands_at(unit_id: int) -> ColumnElement[bool]:
    """Copies standing at the library ``unit_id``: left there (floating, on its hold shelf)
    or owned by it and not left elsewhere."""
    return func.coalesce(catalog.Item.at_unit_id, catalog.Item.org_unit_id) == unit_id


def _stand(item: catalog.Item, here: int) -> None:
    """Record that the copy stands at library ``here`` (None when that is its own)."""
    item.at_unit_id = None if here == item.org_unit_id else here


def _start_transit(
    session: Session,
    item: catalog.Item,
    here: int,
    to: int,
    hold: Hold | None,
    at: dt.datetime,
) -> Transit:
    transit = Transit(
        item_id=item.id,
        from_unit_id=here,
        to_unit_id=to,
        reason="hold" if hold is not None else "home",
        hold_id=hold.id if hold is not None else None,
        status=TransitState.CREATED.value,
        created_at=at,
    )
    session.add(transit)
    item.status = catalog.next_status(item, catalog.ItemStatus.IN_TRANSIT)
    _stand(item, here)
    session.flush()
    return transit


def _to_hold(
    session: Session, item: catalog.Item, hold: Hold, here: int, m: Matrix, at: dt.datetime
) -> Routing:
    """Set the copy aside for ``hold``: on the hold shelf here, or in transit to the pickup."""
    hold.trapped_item_id = item.id
    if hold.pickup_unit_id == here:
        if hold.status != HoldState.READY:
            _set(hold, HoldState.READY)
            reader = readers.get(session, hold.reader_id)
            hold.ready_at = at
            hold.expires_at = rules.hold_expires_at(
                m.policy(item, reader), at, libraries.schedule(session, here)
            ).astimezone(dt.UTC)
            _event(session, "circulation.hold.ready", hold, at)
            notices.hold_ready(session, hold, catalog.get_record(session, hold.record_id).title, at)
        item.status = catalog.next_status(item, catalog.ItemStatus.ON_HOLD_SHELF)
        _stand(item, here)
        session.flush()
        return Routing(Action.HOLD_SHELF, here, hold)
    if hold.status != HoldState.IN_TRANSIT:
        _set(hold, HoldState.IN_TRANSIT)
    transit = _start_transit(session, item, here, hold.pickup_unit_id, hold, at)
    _event(session, "circulation.hold.trapped", hold, at)
    return Routing(Action.TRANSIT, hold.pickup_unit_id, hold, transit)


def route(
    session: Session,
    item: catalog.Item,
    here: int,
    at: dt.datetime,
    m: Matrix | None = None,
    *,
    from_loan: bool = False,
) -> Routing:
    """Where a copy just scanned in at library ``here`` goes (see the module's docstring).
    The copy's row must be locked by the caller; ``m`` is the rule matrix if it was read.
    ``from_loan``: the copy was on loan until now, so no hold has it set aside (a loan
    fills the hold its copy was set aside for, and a copy set aside for another is not
    lent)."""
    m = m or Matrix(session)
    held = (
        None
        if from_loan
        else session.scalar(
            select(Hold).where(
                Hold.trapped_item_id == item.id,
                Hold.status.in_([HoldState.IN_TRANSIT.value, HoldState.READY.value]),
            )
        )
    )
    if held is not None:
        return _to_hold(session, item, held, here, m, at)
    # A copy that was on loan (or lost on loan) is back: it may fill a hold like one on the
    # shelf. Its row still says on loan until the way it goes is written below.
    status = catalog.ItemStatus.AVAILABLE.value if from_loan else item.status
    if status not in UNHOLDABLE and item.circulates:
        nxt = _next_hold(session, item, m)
        if nxt is not None:
            return _to_hold(session, item, nxt, here, m, at)
    # Floating is a property of the collection: ask the rule for any reader ("" matches
    # only rows that name no reader category).
    policy = m.rule(item.org_unit_id, "", item.item_type).rule.policy
    if here == item.org_unit_id or policy.floating:
        # the way of most returns: written without the unit of work (ADR 0021)
        at_unit = None if here == item.org_unit_id else here
        status = catalog.next_status(item, catalog.ItemStatus.AVAILABLE)
        write_row(session, item, status=status, at_unit_id=at_unit)
        return Routing(Action.SHELVE, here)
    transit = _start_transit(session, item, here, item.org_unit_id, None, at)
    return Routing(Action.TRANSIT, item.org_unit_id, None, transit)


def set_aside_for(session: Session, item_id: int) -> int | None:
    """The hold this copy is set aside for (on its way or on the hold shelf), if any."""
    return session.scalar(
        select(Hold.id).where(
            Hold.trapped_item_id == item_id,
            Hold.status.in_([HoldState.IN_TRANSIT.value, HoldState.READY.value]),
        )
    )


def open_transit(session: Session, item_id: int) -> Transit | None:
    return session.scalar(
        select(Transit).where(
            Transit.item_id == item_id, Transit.status.in_([s.value for s in OPEN_TRANSIT])
        )
    )


def arrive(session: Session, transit: Transit, here: int, at: dt.datetime) -> bool:
    """A copy in transit scanned at ``here``: received if this is where it was going
    (True), otherwise that transit ends and the copy is routed afresh from here."""
    if transit.to_unit_id == here:
        transit.status = move(TRANSIT, "transit", transit.status, TransitState.RECEIVED)
        transit.received_at = at
        record_event(
            session,
            "circulation.transit.received",
            {"transit_id": transit.id, "item_id": transit.item_id, "to": here},
            at=at,
        )
        return True
    transit.status = move(TRANSIT, "transit", transit.status, TransitState.CANCELLED)
    return False


def ship(session: Session, actor: Actor, transit_id: int, *, at: dt.datetime) -> Transit:
    """The sending library has packed the copy for logistics."""
    transit = session.scalar(select(Transit).where(Transit.id == transit_id).with_for_update())
    if transit is None:
        raise errors.TransitNotFound(transit_id)
    if transit.from_unit_id is None:
        raise IllegalTransition("transit", transit.status, TransitState.SHIPPED.value)
    sender = libraries.get_unit(session, transit.from_unit_id)
    if not actor.is_staff or not actor.can(Permission.CIRCULATION_OPERATE, sender.path):
        raise PermissionDenied("only the sending library ships a transit")
    transit.status = move(TRANSIT, "transit", transit.status, TransitState.SHIPPED)
    transit.shipped_at = at
    session.flush()
    record_event(
        session,
        "circulation.transit.shipped",
        {"transit_id": transit.id, "item_id": transit.item_id, "to": transit.to_unit_id},
        at=at,
    )
    return transit


# --- the daily job --------------------------------------------------------------------------


@dataclass
class HoldJobReport:
    expired: int = 0
    resumed: int = 0


def expire_and_resume(session: Session, at: dt.datetime) -> HoldJobReport:
    """Holds not collected in time expire (their copies wait on the hold shelf to be
    scanned on to the next reader), and so do holds still unfilled after the reader's "not
    needed after" date; suspensions that have run out end."""
    report = HoldJobReport()
    for hold in session.scalars(
        select(Hold).where(Hold.status == HoldState.READY.value, Hold.expires_at < at)
    ):
        _set(hold, HoldState.EXPIRED)
        hold.closed_at = at
        report.expired += 1
        _event(session, "circulation.hold.expired", hold, at)
    today = readers.local_today(at)
    for hold in session.scalars(
        select(Hold).where(
            Hold.status.in_([HoldState.WAITING.value, HoldState.SUSPENDED.value]),
            Hold.not_needed_after < today,
        )
    ):
        _set(hold, HoldState.EXPIRED)
        hold.closed_at = at
        report.expired += 1
        _event(session, "circulation.hold.expired", hold, at)
    for hold in session.scalars(
        select(Hold).where(Hold.status == HoldState.SUSPENDED.value, Hold.suspended_until <= today)
    ):
        _set(hold, HoldState.WAITING)
        hold.suspended_until = None
        report.resumed += 1
    session.flush()
    return report


# --- staff lists ----------------------------------------------------------------------------


@dataclass
class PullLine:
    """A waiting hold that a copy on this library's open shelf can fill: fetch it and scan
    it in to set it aside."""

    hold: Hold
    item: catalog.Item
    title: str


def pull_list(session: Session, unit_id: int, *, limit: int = 200) -> list[PullLine]:
    rows = session.execute(
        select(Hold, catalog.Item, catalog.Record.title, readers.Reader)
        .join(catalog.Item, catalog.Item.record_id == Hold.record_id)
        .join(catalog.Record, catalog.Record.id == Hold.record_id)
        .join(readers.Reader, readers.Reader.id == Hold.reader_id)
        .where(
            Hold.status == HoldState.WAITING.value,
            (Hold.item_id.is_(None)) | (Hold.item_id == catalog.Item.id),
            catalog.Item.status == catalog.ItemStatus.AVAILABLE.value,
            catalog.Item.circulates.is_(True),
            _stands_at(unit_id),
        )
        .order_by(*QUEUE_ORDER, catalog.Item.id)
        .limit(limit * 4)
    )
    m = Matrix(session)
    out: list[PullLine] = []
    taken_holds: set[int] = set()
    taken_items: set[int] = set()
    for hold, item, title, reader in rows:
        if hold.id in taken_holds or item.id in taken_items:
            continue
        policy = m.policy(item, reader)
        if policy.max_loans > 0 and rules.pickup_allowed(
            policy,
            m.path(hold.pickup_unit_id),
            m.path(reader.home_library_id),
            m.path(item.org_unit_id),
        ):
            out.append(PullLine(hold, item, title))
            taken_holds.add(hold.id)
            taken_items.add(item.id)
        if len(out) >= limit:
            break
    return out


@dataclass
class TransitLine:
    transit: Transit
    barcode: str
    title: str


def transits_at(
    session: Session, unit_ids: list[int], *, incoming: bool, limit: int = 500
) -> list[TransitLine]:
    """Open transits to send from these libraries (created, not shipped), or on their way
    to them (incoming: created or shipped)."""
    where: tuple[ColumnElement[bool], ...]
    if incoming:
        where = (
            Transit.to_unit_id.in_(unit_ids),
            Transit.status.in_([s.value for s in OPEN_TRANSIT]),
        )
    else:
        where = (Transit.from_unit_id.in_(unit_ids), Transit.status == TransitState.CREATED.value)
    rows = session.execute(
        select(Transit, catalog.Item.barcode, catalog.Record.title)
        .join(catalog.Item, catalog.Item.id == Transit.item_id)
        .join(catalog.Record, catalog.Record.id == catalog.Item.record_id)
        .where(*where)
        .order_by(Transit.created_at, Transit.id)
        .limit(limit)
    )
    return [TransitLine(t, code, title) for t, code, title in rows]


@dataclass
class ShelfLine:
    """A copy on this library's hold shelf: waiting for its reader, or to clear (its hold
    expired or was cancelled; scan it in to send it on)."""

    item: catalog.Item
    title: str
    hold: Hold | None  # None: to clear


def hold_shelf(session: Session, unit_id: int) -> list[ShelfLine]:
    items = session.execute(
        select(catalog.Item, catalog.Record.title)
        .join(catalog.Record, catalog.Record.id == catalog.Item.record_id)
        .where(
            catalog.Item.status == catalog.ItemStatus.ON_HOLD_SHELF.value,
            _stands_at(unit_id),
        )
        .order_by(catalog.Item.barcode)
    ).all()
    ready = {
        h.trapped_item_id: h
        for h in session.scalars(
            select(Hold).where(
                Hold.status == HoldState.READY.value,
                Hold.trapped_item_id.in_([i.id for i, _t in items]),
            )
        )
    }
    return [ShelfLine(i, title, ready.get(i.id)) for i, title in items]
