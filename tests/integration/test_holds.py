"""Holds, transits and fees across the consortium: borrow in one library, return in another,
reserve a copy held elsewhere and collect it at home; queues in order; fines and blocks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import accounts, audit, circulation, libraries, readers
from biblioverse.circulation import errors, fees, holds
from biblioverse.circulation.holds import Action
from biblioverse.errors import PermissionDenied, ValidationFailed
from tests import factories
from tests.factories import World

NOW = factories.NOW  # Wednesday 18 November 2026, 14:00 in Beijing
DAY = dt.timedelta(days=1)


def scan_in(
    session: Session, w: World, barcode: str, where: libraries.OrgUnit, at: dt.datetime = NOW
):
    return circulation.checkin(
        session,
        w.actor(session, w.admin),
        barcode=barcode,
        at_unit_id=where.id,
        at=at,
    )


def lend(
    session: Session,
    w: World,
    reader: readers.Reader,
    barcode: str,
    where: libraries.OrgUnit,
    at: dt.datetime = NOW,
) -> circulation.Loan:
    return circulation.checkout(
        session,
        w.actor(session, w.admin),
        reader_id=reader.id,
        barcode=barcode,
        at_unit_id=where.id,
        at=at,
    )


def test_borrow_by_phone_return_elsewhere_reserve_from_another_library_collect_at_home(
    session: Session,
) -> None:
    w = factories.world(session)
    factories.rule(session, w, loan_days=14)
    reader = w.reader_community  # lives near the community branch
    phone = accounts.actor_for_reader(reader)
    (mine,) = factories.copies(session, w, "Borrowed by phone", ["P-1"], library=w.central)
    (far,) = factories.copies(session, w, "Held at the airport", ["A-1"], library=w.airport)
    session.commit()

    # Borrow by phone in the central library, return at the airport: it travels home.
    loan = circulation.checkout(
        session,
        phone,
        reader_id=reader.id,
        barcode="P-1",
        at_unit_id=w.central.id,
        channel="mobile",
        at=NOW,
        present_at=w.central.id,
    )
    assert loan.channel == "mobile" and mine.status == "on_loan"
    back = scan_in(session, w, "P-1", w.airport, NOW + DAY)
    assert back.routing.action is Action.TRANSIT and back.routing.unit_id == w.central.id
    assert back.routing.transit is not None and back.routing.transit.reason == "home"

    # Reserve the airport's copy, to collect at the community branch.
    hold = holds.place(
        session,
        phone,
        reader_id=reader.id,
        record_id=far.record_id,
        pickup_unit_id=w.community.id,
        at=NOW + DAY,
    )
    assert hold.status == "waiting" and holds.queue_position(session, hold) == 1
    pull = holds.pull_list(session, w.airport.id)
    assert [(p.hold.id, p.item.barcode) for p in pull] == [(hold.id, "A-1")]
    # The airport fetches it from the shelf and scans it: it is sent to the community branch.
    sent = scan_in(session, w, "A-1", w.airport, NOW + DAY)
    assert sent.routing.action is Action.TRANSIT and sent.routing.unit_id == w.community.id
    assert hold.status == "in_transit" and far.status == "in_transit"
    assert holds.pull_list(session, w.airport.id) == []
    # The airport's list of copies to send: the returned P-1 home, A-1 to the hold.
    outgoing = holds.transits_at(session, [w.airport.id], incoming=False)
    assert [(t.barcode, t.transit.reason) for t in outgoing] == [("P-1", "home"), ("A-1", "hold")]
    transit = sent.routing.transit
    assert transit is not None
    with pytest.raises(PermissionDenied):  # only the sender ships
        holds.ship(session, w.actor(session, w.community_librarian), transit.id, at=NOW + DAY)
    holds.ship(session, w.actor(session, w.airport_librarian), transit.id, at=NOW + DAY)
    incoming = holds.transits_at(session, [w.community.id], incoming=True)
    assert [(t.barcode, t.transit.status) for t in incoming] == [("A-1", "shipped")]

    # It arrives at the community branch: on the hold shelf for the reader.
    arrived = scan_in(session, w, "A-1", w.community, NOW + 2 * DAY)
    assert arrived.routing.action is Action.HOLD_SHELF and hold.status == "ready"
    assert transit.status == "received" and far.status == "on_hold_shelf"
    assert far.at_unit_id == w.community.id and hold.expires_at is not None
    shelf = holds.hold_shelf(session, w.community.id)
    assert [(s.item.barcode, s.hold.id if s.hold else None) for s in shelf] == [("A-1", hold.id)]
    # Nobody else may take it; the reader borrows it and the hold is filled.
    with pytest.raises(errors.ItemHeldForAnother):
        lend(session, w, w.reader_central, "A-1", w.community)
    collected = lend(session, w, reader, "A-1", w.community, at=NOW + 2 * DAY)
    assert hold.status == "fulfilled" and far.status == "on_loan" and far.at_unit_id is None
    assert collected.org_unit_id == w.community.id


def test_the_queue_goes_by_priority_then_request_time_and_skips_suspended(
    session: Session,
) -> None:
    w = factories.world(session)
    factories.rule(session, w)
    circulation.save_rule(
        session,
        None,
        circulation.RuleInput(
            w.consortium.id,
            reader_category="staff",
            name="staff first",
            policy=circulation.Policy(hold_priority=10),
        ),
        at=NOW,
    )
    (copy,) = factories.copies(session, w, "Popular", ["Q-1"])
    first = w.reader_central
    second = w.reader_community
    colleague = factories.reader(session, w.central, 3, category="staff")
    lend(session, w, factories.reader(session, w.central, 4), "Q-1", w.central)
    h1 = holds.place(
        session,
        None,
        reader_id=first.id,
        record_id=copy.record_id,
        pickup_unit_id=w.central.id,
        at=NOW,
    )
    h2 = holds.place(
        session,
        None,
        reader_id=second.id,
        record_id=copy.record_id,
        pickup_unit_id=w.community.id,
        at=NOW + dt.timedelta(minutes=1),
    )
    h3 = holds.place(
        session,
        None,
        reader_id=colleague.id,
        record_id=copy.record_id,
        pickup_unit_id=w.central.id,
        at=NOW + dt.timedelta(minutes=2),
    )
    assert h3.priority == 10
    assert [holds.queue_position(session, h) for h in (h1, h2, h3)] == [2, 3, 1]
    holds.suspend(session, None, h3.id, until=None, at=NOW)
    assert holds.queue_position(session, h3) == 1  # keeps its place while suspended
    # The copy comes back: the colleague is suspended, so the first reader gets it.
    done = scan_in(session, w, "Q-1", w.central, NOW + DAY)
    assert done.routing.hold is h1 and h1.status == "ready"
    assert h2.status == "waiting" and holds.queue_position(session, h2) == 2
    # The renewal rule: someone waiting and no copy on the shelf means no renewal.
    lend(session, w, first, "Q-1", w.central, at=NOW + DAY)
    loan = circulation.open_loans(session, first.id)[0].loan
    with pytest.raises(errors.RenewalHeld):
        circulation.renew(session, None, loan.id, at=NOW + 2 * DAY)
    holds.resume(session, None, h3.id, at=NOW)
    back = scan_in(session, w, "Q-1", w.community, NOW + 3 * DAY)
    assert back.routing.hold is h3 and back.routing.action is Action.TRANSIT  # to central


def test_hold_refusals_name_their_reason_and_write_nothing(session: Session) -> None:
    w = factories.world(session)
    factories.rule(session, w, max_holds=1)
    factories.rule(session, w, w.central, hold_pickup="owner", max_holds=1)
    (copy,) = factories.copies(session, w, "Owner only", ["R-1"])
    (other,) = factories.copies(session, w, "Another", ["R-2"], library=w.airport)
    (ref,) = factories.copies(session, w, "Reference", ["R-3"])
    ref.circulates = False
    reader = w.reader_community
    outside = factories.unit(session, libraries.OrgKind.LIBRARY, "elsewhere", w.consortium)

    def place(record_id: int, pickup: int) -> circulation.Hold:
        return holds.place(
            session, None, reader_id=reader.id, record_id=record_id, pickup_unit_id=pickup, at=NOW
        )

    with pytest.raises(errors.PickupNotAllowed):
        place(copy.record_id, outside.id)  # the central library lends its copies at home
    with pytest.raises(errors.HoldNotAllowed):
        place(ref.record_id, w.central.id)
    with pytest.raises(ValidationFailed):
        place(copy.record_id, w.consortium.id)
    place(copy.record_id, w.community.id)  # a branch of the owner
    with pytest.raises(errors.AlreadyRequested):
        place(copy.record_id, w.community.id)
    with pytest.raises(errors.HoldLimitReached):
        place(other.record_id, w.airport.id)
    lend(session, w, w.reader_central, "R-2", w.airport)
    with pytest.raises(errors.AlreadyBorrowed):
        holds.place(
            session,
            None,
            reader_id=w.reader_central.id,
            record_id=other.record_id,
            pickup_unit_id=w.airport.id,
            at=NOW,
        )
    assert (
        session.scalar(
            select(circulation.Hold.id).where(circulation.Hold.reader_id == w.reader_central.id)
        )
        is None
    )
    # Readers act for themselves only; another reader's hold does not exist for them.
    mine = holds.holds_of(session, reader.id)[0].hold
    stranger = accounts.actor_for_reader(w.reader_central)
    with pytest.raises(errors.HoldNotFound):
        holds.cancel(session, stranger, mine.id, at=NOW)
    with pytest.raises(PermissionDenied):
        holds.place(
            session,
            stranger,
            reader_id=reader.id,
            record_id=other.record_id,
            pickup_unit_id=w.airport.id,
            at=NOW,
        )


def test_a_hold_not_collected_expires_and_the_copy_goes_to_the_next_reader(
    session: Session,
) -> None:
    w = factories.world(session)
    factories.rule(session, w, hold_shelf_days=3)
    (copy,) = factories.copies(session, w, "Uncollected", ["E-1"])
    late = holds.place(
        session,
        None,
        reader_id=w.reader_central.id,
        record_id=copy.record_id,
        pickup_unit_id=w.central.id,
        at=NOW,
    )
    nxt = holds.place(
        session,
        None,
        reader_id=w.reader_community.id,
        record_id=copy.record_id,
        pickup_unit_id=w.central.id,
        at=NOW + dt.timedelta(minutes=5),
    )
    scan_in(session, w, "E-1", w.central, NOW)  # pulled from the shelf for the first hold
    assert late.status == "ready" and late.expires_at is not None
    assert late.expires_at.astimezone(dt.UTC) == dt.datetime(2026, 11, 21, 13, 0, tzinfo=dt.UTC)
    assert holds.expire_and_resume(session, NOW + DAY).expired == 0
    assert holds.expire_and_resume(session, NOW + 4 * DAY).expired == 1
    assert late.status == "expired"
    # The copy waits on the hold shelf to be cleared, then goes to the next reader.
    (line,) = holds.hold_shelf(session, w.central.id)
    assert line.hold is None
    again = scan_in(session, w, "E-1", w.central, NOW + 4 * DAY)
    assert again.routing.hold is nxt and nxt.status == "ready"
    holds.cancel(session, None, nxt.id, at=NOW + 4 * DAY)
    shelved = scan_in(session, w, "E-1", w.central, NOW + 4 * DAY)
    assert shelved.routing.action is Action.SHELVE and copy.status == "available"


def test_a_floating_collection_stays_where_it_is_returned(session: Session) -> None:
    w = factories.world(session)
    factories.rule(session, w)
    factories.rule(session, w, w.airport, floating=True)
    (copy,) = factories.copies(session, w, "Travel guide", ["F-1"], library=w.airport)
    lend(session, w, w.reader_central, "F-1", w.airport)
    back = scan_in(session, w, "F-1", w.community)
    assert back.routing.action is Action.SHELVE and copy.status == "available"
    assert copy.at_unit_id == w.community.id and copy.org_unit_id == w.airport.id


def test_fines_grow_daily_to_the_cap_block_lending_and_are_paid_or_waived(
    session: Session,
) -> None:
    w = factories.world(session)
    factories.rule(
        session,
        w,
        loan_days=7,
        fine_per_day=Decimal("0.50"),
        fine_cap=Decimal("4.00"),
        block_threshold=Decimal("3.00"),
        lost_after_days=30,
        lost_fee=Decimal("40.00"),
    )
    a, b, c = factories.copies(session, w, "Late", ["F-1", "F-2", "F-3"])
    reader = w.reader_central
    loan = lend(session, w, reader, "F-1", w.central)
    due = loan.due_at
    assert fees.accrue(session, due + dt.timedelta(hours=1)).fees_changed == 0  # same day
    report = fees.accrue(session, due + 3 * DAY)
    assert report.overdue_loans == 1 and fees.balance(session, reader.id) == Decimal("1.50")
    # Idempotent: the same day again, or a day missed, gives the same amounts.
    fees.accrue(session, due + 3 * DAY)
    assert fees.balance(session, reader.id) == Decimal("1.50")
    fees.accrue(session, due + 20 * DAY)
    assert fees.balance(session, reader.id) == Decimal("4.00")  # the cap
    # Above the block threshold: no more loans, unless a librarian overrides with a reason.
    with pytest.raises(errors.FeeLimitReached):
        lend(session, w, reader, "F-2", w.central, at=due + 20 * DAY)
    desk = w.actor(session, w.airport_desk)
    with pytest.raises(errors.FeeLimitReached):  # the desk role may not override
        circulation.checkout(
            session,
            desk,
            reader_id=reader.id,
            barcode="F-2",
            at_unit_id=w.airport.id,
            at=due + 20 * DAY,
            override="trust me",
        )
    boss = w.actor(session, w.central_librarian)
    forced = circulation.checkout(
        session,
        boss,
        reader_id=reader.id,
        barcode="F-2",
        at_unit_id=w.central.id,
        at=due + 20 * DAY,
        override="exam next week",
    )
    entry = session.scalars(
        select(audit.AuditEntry).where(audit.AuditEntry.action == "circulation.override")
    ).one()
    assert entry.details == {
        "action": "checkout",
        "refusals": ["fee_limit"],
        "reason": "exam next week",
    }
    assert forced.reader_id == reader.id
    scan_in(session, w, "F-2", w.central, due + 20 * DAY)
    # Fines stop at the return.
    scan_in(session, w, "F-1", w.central, due + 22 * DAY)
    fees.accrue(session, due + 25 * DAY)
    assert fees.balance(session, reader.id) == Decimal("4.00")
    # Payments: positive, at most what is owed, oldest fee first; waivers need a reason.
    with pytest.raises(ValidationFailed):
        fees.pay(session, boss, reader.id, Decimal("-1"), at=NOW)
    with pytest.raises(ValidationFailed):
        fees.pay(session, boss, reader.id, Decimal("9.00"), at=NOW)
    fees.pay(session, desk, reader.id, Decimal("2.50"), at=NOW)
    assert fees.balance(session, reader.id) == Decimal("1.50")
    (fee,) = fees.fees_of(session, reader.id)
    with pytest.raises(PermissionDenied):
        fees.waive(session, desk, fee.id, None, note="kind", at=NOW)
    with pytest.raises(ValidationFailed):
        fees.waive(session, boss, fee.id, None, note=" ", at=NOW)
    fees.waive(session, boss, fee.id, None, note="first time", at=NOW)
    assert (
        fees.balance(session, reader.id) == Decimal("0.00")
        and fees.fees_of(session, reader.id) == []
    )
    # Lost: overdue past 30 days, the copy's price is charged; found again, it is waived.
    c.price = Decimal("25.00")
    lost_loan = lend(session, w, reader, "F-3", w.central, at=NOW)
    fees.accrue(session, lost_loan.due_at + 31 * DAY)
    assert lost_loan.status == "lost" and c.status == "lost"
    assert fees.balance(session, reader.id) == Decimal("29.00")  # 4.00 fine + 25.00 price
    scan_in(session, w, "F-3", w.central, lost_loan.due_at + 40 * DAY)
    assert lost_loan.status == "returned" and c.status == "available"
    assert fees.balance(session, reader.id) == Decimal("4.00")
    assert a.status == "available" and b.status == "available"


def test_returned_loans_forget_their_reader_unless_the_reader_keeps_a_history(
    session: Session,
) -> None:
    w = factories.world(session)
    factories.rule(session, w)
    factories.copies(session, w, "Private reading", ["H-1", "H-2"])
    keeper = w.reader_community
    keeper.keep_history = True
    quiet = lend(session, w, w.reader_central, "H-1", w.central)
    kept = lend(session, w, keeper, "H-2", w.central)
    scan_in(session, w, "H-1", w.central, NOW + DAY)
    scan_in(session, w, "H-2", w.central, NOW + DAY)
    assert circulation.anonymise(session, NOW + 20 * DAY, after_days=30) == 0
    assert circulation.anonymise(session, NOW + 32 * DAY, after_days=30) == 1
    session.expire_all()
    assert quiet.reader_id is None and kept.reader_id == keeper.id
    assert [x.title for x in circulation.reading_history(session, keeper.id)] == ["Private reading"]
    assert circulation.reading_history(session, w.reader_central.id) == []


def test_a_hold_not_needed_after_a_day_expires_unfilled_after_it(session: Session) -> None:
    w = factories.world(session)
    factories.rule(session, w)
    (copy,) = factories.copies(session, w, "Wanted for a week", ["N-1"])
    lend(session, w, w.reader_central, "N-1", w.central)
    today = dt.date(2026, 11, 18)  # NOW in Beijing

    def place(reader: readers.Reader, until: dt.date | None) -> circulation.Hold:
        return holds.place(
            session,
            None,
            reader_id=reader.id,
            record_id=copy.record_id,
            pickup_unit_id=w.central.id,
            at=NOW,
            not_needed_after=until,
        )

    for bad in (today - DAY, today + 400 * DAY):
        with pytest.raises(ValidationFailed) as refused:
            place(w.reader_community, bad)
        assert [e.field for e in refused.value.errors] == ["not_needed_after"]
    week = place(w.reader_community, today + 7 * DAY)
    third = factories.reader(session, w.central, 3)
    whenever = place(third, None)
    holds.suspend(session, None, whenever.id, until=None, at=NOW)
    # It lives through its last day, and ends the day after, even suspended.
    assert holds.expire_and_resume(session, NOW + 7 * DAY).expired == 0
    assert holds.expire_and_resume(session, NOW + 8 * DAY).expired == 1
    assert week.status == "expired" and week.closed_at == NOW + 8 * DAY
    assert whenever.status == "suspended"
    # The copy, back, is not set aside for a hold that is no longer wanted.
    holds.resume(session, None, whenever.id, at=NOW + 8 * DAY)
    back = scan_in(session, w, "N-1", w.central, NOW + 8 * DAY)
    assert back.routing.hold is whenever
